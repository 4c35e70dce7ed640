"""Top-up screens and Telegram Stars payments: packages -> quote and method -> invoice ->
pre-checkout (answered within Telegram's 10 s) -> successful payment (credited once by the service)."""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, LabeledPrice, Message, PreCheckoutQuery
from django.conf import settings

from botapp import bridge, keyboards
from botapp.bridge import UserContext
from botapp.callbacks import MenuAction, MenuCb, PayAction, PayCb, PayMethod
from botapp.handlers.common import answer, answer_pre_checkout, error_text, esc, show
from botapp.handlers.subscriptions import with_plans_button
from botapp.i18n import t
from botapp.keyboards import fmt_tokens
from botapp.models import Promocode
from botapp.services import yookassa_api
from botapp.services.exceptions import DomainError
from botapp.services.payments import STARS
from botapp.states import GenerationFlow

router = Router(name=__name__)
log = logging.getLogger(__name__)


def card_enabled() -> bool:
    """The card button: PAYMENT_CARD_ENABLED when set, else whether YooKassa is configured."""
    flag = getattr(settings, "PAYMENT_CARD_ENABLED", None)
    return yookassa_api.configured() if flag is None else bool(flag)


@router.callback_query(MenuCb.filter(F.action == MenuAction.TOPUP))
async def on_topup(query: CallbackQuery, user: UserContext, lang: str) -> None:
    """The package list. A generation flow in progress is kept (the user can resume after paying)."""
    await show_topup(query, user, lang)
    await answer(query)


async def show_topup(target: CallbackQuery | Message, user: UserContext, lang: str) -> None:
    """The package list: in place of the pressed message (a callback), or as a new one (a message)."""
    packages, pending = await bridge.topup_packages(user.id)
    if not packages:
        await show(target, t("pay.no_packages", lang), keyboards.back_to(lang, MenuAction.BALANCE))
        return
    lines = []
    for package in packages:
        bonus = t("pay.package_bonus", lang, percent=fmt_tokens(package.bonus_percent)) if package.bonus_percent else ""
        lines.append(
            t(
                "pay.package_line",
                lang,
                name=esc(package.name or fmt_tokens(package.tokens)),
                tokens=fmt_tokens(package.tokens),
                stars=package.price_stars,
                bonus=bonus,
            )
        )
    text = t("pay.packages", lang) + "\n\n" + "\n".join(lines)
    if pending is not None:
        key = "pay.pending_discount" if pending.kind == Promocode.Kind.TOPUP_DISCOUNT else "pay.pending_bonus"
        text += "\n\n" + t(key, lang, code=esc(pending.code), percent=fmt_tokens(pending.value))
    await show(target, text, await with_plans_button(keyboards.packages_keyboard(lang, packages), lang))


@router.callback_query(PayCb.filter(F.action == PayAction.PACKAGE))
async def on_package(query: CallbackQuery, callback_data: PayCb, user: UserContext, lang: str) -> None:
    try:
        package, quote = await bridge.quote(user.id, callback_data.package_id)
    except DomainError as exc:
        await answer(query, error_text(exc, lang), alert=True)
        return
    parts = [
        t(
            "pay.quote",
            lang,
            name=esc(package.name or fmt_tokens(package.tokens)),
            tokens=fmt_tokens(quote.tokens),
            stars=quote.price_stars,
        )
    ]
    if quote.bonus_tokens:
        parts.append(
            t("pay.quote_bonus", lang, bonus=fmt_tokens(quote.bonus_tokens), percent=fmt_tokens(quote.bonus_percent))
        )
    if quote.discount_percent:
        parts.append(
            t(
                "pay.quote_discount",
                lang,
                code=esc(quote.promocode or ""),
                percent=fmt_tokens(quote.discount_percent),
                base=quote.base_price_stars,
            )
        )
    parts.append("\n" + t("pay.choose_method", lang))
    await show(query, "\n".join(parts), keyboards.methods_keyboard(lang, package.pk, card_enabled=card_enabled()))
    await answer(query)


@router.callback_query(PayCb.filter(F.action == PayAction.METHOD))
async def on_method(query: CallbackQuery, callback_data: PayCb, user: UserContext, lang: str, bot: Bot) -> None:
    if callback_data.method != PayMethod.STARS:
        # Card payments (YooKassa) are the payments issue's: the button appears only when enabled.
        await answer(query, t("pay.card_unavailable", lang), alert=True)
        return
    try:
        payment = await bridge.create_invoice(user.id, callback_data.package_id)
    except DomainError as exc:
        await answer(query, error_text(exc, lang), alert=True)
        return
    tokens = fmt_tokens(payment.tokens)
    description = t("pay.invoice_description", lang, tokens=tokens)
    if payment.bonus_tokens:
        description += " " + t("pay.invoice_description_bonus", lang, bonus=fmt_tokens(payment.bonus_tokens))
    chat_id = query.message.chat.id if query.message else user.telegram_id
    await bot.send_invoice(
        chat_id=chat_id,
        title=t("pay.invoice_title", lang, tokens=tokens)[:32],
        description=description[:255],
        payload=payment.invoice_payload,
        currency=STARS,
        prices=[LabeledPrice(label=t("pay.invoice_label", lang, tokens=tokens), amount=int(payment.amount))],
        provider_token="",
    )
    await answer(query, t("pay.invoice_sent", lang))


@router.pre_checkout_query()
async def on_pre_checkout(query: PreCheckoutQuery, lang: str) -> None:
    await answer_pre_checkout(query, lang, bridge.validate_precheckout, what="pre-checkout")


@router.message(F.successful_payment)
async def on_successful_payment(message: Message, state: FSMContext, lang: str) -> None:
    paid = message.successful_payment
    assert paid is not None  # the filter guarantees it
    try:
        outcome, balance = await bridge.complete_payment(
            invoice_payload=paid.invoice_payload,
            provider_charge_id=paid.telegram_payment_charge_id,
            total_amount=paid.total_amount,
            currency=paid.currency,
            raw=paid.model_dump(mode="json", exclude_none=True),
        )
    except DomainError as exc:
        # The money was taken: this must reach an operator (the charge id lets them refund or credit).
        log.error(
            "successful payment not credited: payload=%s charge=%s: %s",
            paid.invoice_payload,
            paid.telegram_payment_charge_id,
            exc.message,
        )
        await bridge.alert_operators(
            key="payment_not_credited",
            telegram_id=message.from_user.id if message.from_user else message.chat.id,
            amount=paid.total_amount,
            currency=paid.currency,
            charge_id=paid.telegram_payment_charge_id,
            payload=paid.invoice_payload,
            reason=exc.message,
        )
        await message.answer(t("pay.not_credited", lang, charge_id=esc(paid.telegram_payment_charge_id)))
        return
    if not outcome.credited:
        log.info("successful payment %s replayed: already credited", paid.telegram_payment_charge_id)
        return
    payment = outcome.payment
    text = t("pay.success", lang, tokens=fmt_tokens(payment.tokens), balance=fmt_tokens(balance.total))
    if payment.bonus_tokens:
        text += "\n" + t("pay.success_bonus", lang, bonus=fmt_tokens(payment.bonus_tokens))
    if outcome.promocode_not_applied:
        text += "\n" + t("pay.promo_not_applied", lang, code=esc(outcome.promocode_not_applied))
    resume = await state.get_state() == GenerationFlow.confirm.state
    await message.answer(text, reply_markup=keyboards.paid_keyboard(lang, resume=resume))
