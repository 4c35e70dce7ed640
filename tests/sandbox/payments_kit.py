"""Shared pieces of the Stars tests: a real aiogram bot on the emulator, polling, and a bot that accepts payments."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import BotSubscriptionUpdated, Message, PreCheckoutQuery

from sandbox.telegram import BotAPIEmulator


def make_bot(emu: BotAPIEmulator) -> Bot:
    """A real aiogram Bot pointed at the emulator."""
    return Bot(emu.token, session=AiohttpSession(api=TelegramAPIServer.from_base(emu.base_url)))


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Poll ``condition`` until it holds (for what the bot's handlers do)."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class Polling:
    """Runs ``Dispatcher.start_polling`` in a task and stops it cleanly."""

    def __init__(self, dp: Dispatcher, bot: Bot) -> None:
        self.dp, self.bot = dp, bot
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Polling:
        self.task = asyncio.create_task(
            self.dp.start_polling(self.bot, handle_signals=False, close_bot_session=False, polling_timeout=1)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.dp.stop_polling()
        assert self.task is not None
        await asyncio.wait_for(self.task, 5)


@dataclass
class Shop:
    """What a paying bot saw: successful payments, refunds and subscription updates, in order."""

    paid: list[Message] = field(default_factory=list)
    refunded: list[Message] = field(default_factory=list)
    subscription_updates: list[BotSubscriptionUpdated] = field(default_factory=list)

    def dispatcher(self) -> Dispatcher:
        """A dispatcher that accepts every pre-checkout query and records what arrives."""
        dp = Dispatcher()

        @dp.pre_checkout_query()
        async def checkout(query: PreCheckoutQuery) -> None:
            await query.answer(ok=True)

        @dp.message(F.successful_payment)
        async def paid(message: Message) -> None:
            self.paid.append(message)

        @dp.message(F.refunded_payment)
        async def refunded(message: Message) -> None:
            self.refunded.append(message)

        @dp.subscription()
        async def subscription(update: BotSubscriptionUpdated) -> None:
            self.subscription_updates.append(update)

        return dp
