"""/paysupport: help with payments (Telegram requires it of bots that sell digital goods).

The screen: the introduction (an operator may edit it: `bot_text(key="paysupport")`), the user's recent
payments (date, method, amount, tokens, status and the code support
finds a payment by), the support contact (SUPPORT_USERNAME) and the terms (/terms), then waits for one
text message describing the problem (SupportFlow.problem, with a cancel button). The text reaches the
operators through `botapp.services.paysupport` (stored as a SupportRequest; at most
SUPPORT_REQUESTS_PER_HOUR requests a user an hour, told politely); anything but text is refused
politely; the button or /cancel leaves the flow.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from django.conf import settings

from botapp import bridge, keyboards
from botapp.bridge import UserContext
from botapp.callbacks import SupportAction, SupportCb
from botapp.handlers.common import answer, esc, retire_keyboard
from botapp.handlers.menu import show_main_menu
from botapp.i18n import t
from botapp.paylines import payment_lines
from botapp.services.paysupport import SupportLimitReached, SupportTextEmpty, SupportTextTooLong
from botapp.states import SupportFlow

router = Router(name=__name__)

RECENT_PAYMENTS = 10


def support_username() -> str:
    return (getattr(settings, "SUPPORT_USERNAME", "") or "").lstrip("@")


def requests_per_hour() -> int:
    return int(getattr(settings, "SUPPORT_REQUESTS_PER_HOUR", 0) or 0)


async def paysupport_text(user: UserContext, lang: str, *, limited: bool) -> str:
    """The screen: the introduction, payments with their codes, the contact, the terms, then the question
    (or the limit)."""
    payments = await bridge.user_payments(user.id, 1, RECENT_PAYMENTS)
    parts = [await bridge.bot_text("paysupport", lang)]
    if payments.items:
        parts.append(t("paysupport.payments", lang) + "\n" + payment_lines(payments.items, lang, with_code=True))
    else:
        parts.append(t("paysupport.no_payments", lang))
    username = support_username()
    if username:
        parts.append(t("paysupport.contact", lang, username=esc(username)))
    parts.append(t("paysupport.terms", lang))
    parts.append(t("paysupport.limit", lang, limit=requests_per_hour()) if limited else t("paysupport.ask", lang))
    return "\n\n".join(parts)


@router.message(Command("paysupport"))
async def cmd_paysupport(message: Message, state: FSMContext, user: UserContext, lang: str) -> None:
    """Starts the support flow (leaving any other flow), unless the hourly limit is used up: then the
    screen says so and the flow in progress, if any, is kept."""
    limited = await bridge.support_limit_reached(user.id)
    text = await paysupport_text(user, lang, limited=limited)
    if limited:
        await message.answer(text, reply_markup=keyboards.menu_only(lang))
        return
    await state.clear()
    card = await message.answer(text, reply_markup=keyboards.support_keyboard(lang))
    await state.set_state(SupportFlow.problem)
    await state.update_data(card=card.message_id)


@router.message(SupportFlow.problem, F.text, ~F.text.startswith("/"))
async def on_problem(message: Message, state: FSMContext, user: UserContext, lang: str, bot: Bot) -> None:
    try:
        await bridge.submit_support_request(user.id, message.text or "")
    except SupportTextEmpty:
        await message.answer(t("paysupport.empty", lang), reply_markup=keyboards.support_keyboard(lang))
        return
    except SupportTextTooLong as exc:
        text = t("paysupport.too_long", lang, length=exc.params["length"], limit=exc.params["limit"])
        await message.answer(text, reply_markup=keyboards.support_keyboard(lang))
        return
    except SupportLimitReached as exc:
        await _leave(state, bot, message.chat.id)
        await message.answer(
            t("paysupport.limit", lang, limit=exc.params["limit"]), reply_markup=keyboards.menu_only(lang)
        )
        return
    await _leave(state, bot, message.chat.id)
    await message.answer(t("paysupport.sent", lang), reply_markup=keyboards.menu_only(lang))


@router.message(SupportFlow.problem, ~F.text.startswith("/"))
async def on_not_text(message: Message, lang: str) -> None:
    """A photo, a sticker, a voice message...: only text is passed on."""
    text = t("paysupport.text_only", lang)
    username = support_username()
    if username:
        text += "\n" + t("paysupport.screenshots", lang, username=esc(username))
    await message.answer(text, reply_markup=keyboards.support_keyboard(lang))


@router.callback_query(SupportCb.filter(F.action == SupportAction.CANCEL))
async def on_cancel(query: CallbackQuery, state: FSMContext, user: UserContext, lang: str) -> None:
    """Leaves the support flow (another flow started since is not touched) and shows the menu in place."""
    if await state.get_state() == SupportFlow.problem.state:
        await state.clear()
    await show_main_menu(query, user, lang, header=t("common.cancelled", lang))
    await answer(query)


async def _leave(state: FSMContext, bot: Bot, chat_id: int) -> None:
    """End the flow and take the cancel button off its card."""
    data = await state.get_data()
    await state.clear()
    await retire_keyboard(bot, chat_id, data.get("card"))
