"""/terms: the terms of service (Telegram expects them of bots that sell digital goods).

The text comes from `botapp.selectors.texts.bot_text(key="terms")`, the one place an operator's edited
version is to be read from. Works in the middle of a flow too: the flow's state is kept.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from botapp import bridge, keyboards

router = Router(name=__name__)


@router.message(Command("terms"))
async def cmd_terms(message: Message, lang: str) -> None:
    await message.answer(await bridge.bot_text("terms", lang), reply_markup=keyboards.menu_only(lang))
