"""Promocodes: the "enter a code" state with every outcome explained (and /start promo_<code>)."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from botapp import bridge, keyboards
from botapp.bridge import BalanceView, UserContext
from botapp.callbacks import MenuAction, MenuCb
from botapp.handlers.common import answer, error_text, esc, show
from botapp.i18n import t
from botapp.keyboards import fmt_tokens
from botapp.models import Promocode
from botapp.services.exceptions import DomainError
from botapp.services.promo import RedeemResult
from botapp.states import PromoFlow

router = Router(name=__name__)

MAX_CODE_LENGTH = 64


def promo_outcome(result: RedeemResult, balance: BalanceView, lang: str) -> str:
    code = esc(result.code)
    if result.bonus_granted is not None:
        return t(
            "promo.bonus", lang, code=code, amount=fmt_tokens(result.bonus_granted), balance=fmt_tokens(balance.total)
        )
    if result.kind == Promocode.Kind.TOPUP_DISCOUNT:
        return t("promo.discount", lang, code=code, percent=fmt_tokens(result.value))
    return t("promo.topup_bonus", lang, code=code, percent=fmt_tokens(result.value))


async def open_promo(target: CallbackQuery | Message, state: FSMContext, lang: str) -> None:
    """Ask for a code (in place of the pressed message, or as a new message) and wait for it."""
    await state.clear()
    await state.set_state(PromoFlow.code)
    await show(target, t("promo.ask", lang), keyboards.promo_keyboard(lang))


@router.callback_query(MenuCb.filter(F.action == MenuAction.PROMO))
async def on_promo(query: CallbackQuery, state: FSMContext, lang: str) -> None:
    await open_promo(query, state, lang)
    await answer(query)


@router.message(PromoFlow.code, F.text, ~F.text.startswith("/"))
async def on_code(message: Message, state: FSMContext, user: UserContext, lang: str) -> None:
    code = (message.text or "").strip()
    if not code or len(code) > MAX_CODE_LENGTH or len(code.split()) > 1:
        await message.answer(t("promo.bad_format", lang), reply_markup=keyboards.promo_keyboard(lang))
        return
    try:
        result, balance = await bridge.redeem_promo(user.id, code)
    except DomainError as exc:
        text = "⚠️ " + error_text(exc, lang) + "\n\n" + t("promo.try_again", lang)
        await message.answer(text, reply_markup=keyboards.promo_keyboard(lang))
        return
    await state.clear()
    await message.answer(
        promo_outcome(result, balance, lang),
        reply_markup=keyboards.promo_done_keyboard(lang, topup=result.awaiting_topup),
    )


@router.message(PromoFlow.code, ~F.text.startswith("/"))
async def on_not_text(message: Message, lang: str) -> None:
    await message.answer(t("promo.text_only", lang), reply_markup=keyboards.promo_keyboard(lang))
