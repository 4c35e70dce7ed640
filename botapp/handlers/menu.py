"""/start (with the deep-link payloads ref_<code> and promo_<code>), /menu, /cancel and the main menu."""

from __future__ import annotations

import logging
from contextlib import suppress

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from botapp import bridge, keyboards
from botapp.bridge import UserContext
from botapp.callbacks import MenuAction, MenuCb
from botapp.handlers.common import answer, error_text, esc, show
from botapp.handlers.promo import promo_outcome
from botapp.i18n import t
from botapp.keyboards import fmt_tokens
from botapp.services.exceptions import DomainError, ReferralNotAllowed

router = Router(name=__name__)
log = logging.getLogger(__name__)

REF_PREFIX = "ref_"
PROMO_PREFIX = "promo_"


async def main_menu_text(user: UserContext, lang: str, *, header: str = "", fresh: bool = False) -> str:
    """The main menu's text with the balance: as read with the user at the start of this update, or read
    again with `fresh` (after something in this update may have moved money: a promo code at /start)."""
    balance = user.balance if user.balance is not None and not fresh else await bridge.get_balance(user.id)
    body = t("menu.text", lang, name=esc(user.display_name), balance=fmt_tokens(balance.total))
    return f"{header}\n\n{body}" if header else body


async def show_main_menu(
    target: CallbackQuery | Message, user: UserContext, lang: str, *, header: str = "", fresh: bool = False
) -> None:
    await show(target, await main_menu_text(user, lang, header=header, fresh=fresh), keyboards.main_menu(lang))


@router.message(CommandStart())
async def cmd_start(
    message: Message, command: CommandObject, state: FSMContext, user: UserContext, lang: str, bot: Bot
) -> None:
    await state.clear()
    payload = (command.args or "").strip()
    notes: list[str] = []
    if payload.lower().startswith(REF_PREFIX):
        notes.append(await _apply_referral(bot, user, lang, payload[len(REF_PREFIX) :]))
    elif payload.lower().startswith(PROMO_PREFIX):
        try:
            result, balance = await bridge.redeem_promo(user.id, payload[len(PROMO_PREFIX) :])
            notes.append(promo_outcome(result, balance, lang))
        except DomainError as exc:
            notes.append("⚠️ " + error_text(exc, lang))
    greeting = t("start.welcome_new" if user.is_new else "start.welcome_back", lang, name=esc(user.display_name))
    header = "\n\n".join([greeting, *notes])
    await show_main_menu(message, user, lang, header=header, fresh=bool(notes))


async def _apply_referral(bot: Bot, user: UserContext, lang: str, code: str) -> str:
    if not user.is_new:
        return t("start.referral_not_new", lang)
    try:
        referrer = await bridge.attach_referral(user.id, code, is_new_user=True)
    except ReferralNotAllowed:
        return "⚠️ " + t("errors.referral_not_allowed", lang)
    if referrer.notifications:
        with suppress(TelegramAPIError):  # the friend may have blocked the bot: not our user's problem
            await bot.send_message(
                referrer.telegram_id, t("referral.new_friend", referrer.language, name=esc(user.display_name))
            )
    return t("start.referred", lang, name=esc(referrer.name))


@router.message(Command("menu"))
async def cmd_menu(message: Message, state: FSMContext, user: UserContext, lang: str) -> None:
    await state.clear()
    await show_main_menu(message, user, lang)


@router.message(Command("cancel"))
async def cmd_cancel(message: Message, state: FSMContext, user: UserContext, lang: str) -> None:
    had_flow = await state.get_state() is not None
    await state.clear()
    header = t("common.cancelled" if had_flow else "common.nothing_to_cancel", lang)
    await show_main_menu(message, user, lang, header=header)


@router.callback_query(MenuCb.filter(F.action == MenuAction.MAIN))
async def on_main(query: CallbackQuery, state: FSMContext, user: UserContext, lang: str) -> None:
    await state.clear()
    await show_main_menu(query, user, lang)
    await answer(query)
