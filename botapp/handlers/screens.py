"""`ScreenCb` buttons: open a screen of the main menu as a NEW message.

A broadcast's "bot screen" button (botapp/services/broadcasts.py) packs `ScreenCb`: the menu's own
`MenuCb` buttons edit their message in place, which would replace the broadcast's text with the
screen. Here the broadcast stays as it is and the screen comes below it, drawn by the same functions
as the menu's buttons (they send a new message when given a message instead of a callback).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiogram import Bot, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from botapp.bridge import UserContext
from botapp.callbacks import MenuAction, ScreenCb
from botapp.handlers.balance import show_balance
from botapp.handlers.common import answer, outdated
from botapp.handlers.generation import start_flow
from botapp.handlers.menu import show_main_menu
from botapp.handlers.payment import show_topup
from botapp.handlers.promo import open_promo
from botapp.handlers.referral import show_invite
from botapp.models import AIModel

router = Router(name=__name__)

Target = CallbackQuery | Message
Screen = Callable[[Target, FSMContext, UserContext, str, Bot], Awaitable[None]]


async def _main(target: Target, state: FSMContext, user: UserContext, lang: str, bot: Bot) -> None:
    await state.clear()
    await show_main_menu(target, user, lang)


async def _image(target: Target, state: FSMContext, user: UserContext, lang: str, bot: Bot) -> None:
    await state.clear()
    await start_flow(target, state, user, lang, AIModel.Kind.IMAGE)


async def _video(target: Target, state: FSMContext, user: UserContext, lang: str, bot: Bot) -> None:
    await state.clear()
    await start_flow(target, state, user, lang, AIModel.Kind.VIDEO)


async def _topup(target: Target, state: FSMContext, user: UserContext, lang: str, bot: Bot) -> None:
    await show_topup(target, user, lang)  # a generation flow in progress is kept, as from the menu


async def _balance(target: Target, state: FSMContext, user: UserContext, lang: str, bot: Bot) -> None:
    await show_balance(target, user, lang)


async def _promo(target: Target, state: FSMContext, user: UserContext, lang: str, bot: Bot) -> None:
    await open_promo(target, state, lang)


async def _invite(target: Target, state: FSMContext, user: UserContext, lang: str, bot: Bot) -> None:
    await show_invite(target, state, user, lang, bot)


# The screens a ScreenCb button can open (every `Broadcast.Screen`).
SCREENS: dict[MenuAction, Screen] = {
    MenuAction.MAIN: _main,
    MenuAction.IMAGE: _image,
    MenuAction.VIDEO: _video,
    MenuAction.TOPUP: _topup,
    MenuAction.BALANCE: _balance,
    MenuAction.PROMO: _promo,
    MenuAction.INVITE: _invite,
}


@router.callback_query(ScreenCb.filter())
async def on_screen(
    query: CallbackQuery, callback_data: ScreenCb, state: FSMContext, user: UserContext, lang: str, bot: Bot
) -> None:
    screen = SCREENS.get(callback_data.screen)
    if screen is None:
        await outdated(query, lang)
        return
    # A message target makes the screen a new message in the same chat; when the pressed message is no
    # longer accessible, the callback target sends a new one too (there is nothing to edit).
    target: Target = query.message if isinstance(query.message, Message) else query
    await screen(target, state, user, lang, bot)
    await answer(query)
