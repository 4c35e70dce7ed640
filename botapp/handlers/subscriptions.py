"""Star subscriptions in the bot (rules: botapp/services/subscriptions.py).

- The top-up screen gets a "Monthly subscription" button (`with_plans_button`) -> the plans -> a plan:
  its perks and a URL button, the subscription's invoice link (createInvoiceLink with
  subscription_period; made once per pending subscription and kept).
- Pre-checkout of a subscription payload (the first charge) and every `successful_payment` that is
  recurring (the first charge and each renewal) are handled here, before the one-off top-ups' handlers
  (this router comes first); the user is told about each credited month.
- The profile shows the subscription (`profile_section`) with a cancel / re-enable button
  (editUserStarSubscription); Telegram's `subscription` update (the user changed it in Telegram, or
  a renewal failed) updates our status.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    BotSubscriptionUpdated,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LabeledPrice,
    Message,
    PreCheckoutQuery,
)
from aiogram.utils.keyboard import InlineKeyboardBuilder

from botapp import bridge, keyboards
from botapp.bridge import UserContext
from botapp.callbacks import MenuAction, MenuCb, SubAction, SubCb
from botapp.handlers.common import answer, answer_pre_checkout, error_text, esc, fmt_date, show
from botapp.i18n import t
from botapp.keyboards import fmt_tokens
from botapp.models import Language, StarSubscription, SubscriptionPlan
from botapp.services.exceptions import DomainError
from botapp.services.subscriptions import PAYLOAD_PREFIX, PERIOD_SECONDS, STARS, is_running
from botapp.states import GenerationFlow

router = Router(name=__name__)
log = logging.getLogger(__name__)
Status = StarSubscription.Status


def plan_name(plan: SubscriptionPlan, lang: str) -> str:
    return (plan.name_en or plan.name) if lang == Language.EN else plan.name


def _perks(plan: SubscriptionPlan, lang: str) -> str:
    return (plan.description_en or plan.description) if lang == Language.EN else plan.description


def _until(sub: StarSubscription) -> str:
    return fmt_date(sub.period_end, with_time=False) if sub.period_end else "-"


# --- the top-up screen's button, the plans, a plan ---------------------------------------------------
async def with_plans_button(markup: InlineKeyboardMarkup, lang: str) -> InlineKeyboardMarkup:
    """The package list's keyboard with a "Monthly subscription" row above its last row (back / menu),
    when a plan is on sale; a new markup (the given one may be cached)."""
    if not await bridge.has_subscription_plans():
        return markup
    rows = list(markup.inline_keyboard)
    button = InlineKeyboardButton(text=t("sub.button_plans", lang), callback_data=SubCb(action=SubAction.PLANS).pack())
    return InlineKeyboardMarkup(inline_keyboard=[*rows[:-1], [button], *rows[-1:]])


@router.callback_query(SubCb.filter(F.action == SubAction.PLANS))
async def on_plans(query: CallbackQuery, lang: str) -> None:
    plans = await bridge.subscription_plans()
    builder = InlineKeyboardBuilder()
    lines = []
    for plan in plans:
        name = plan_name(plan, lang)
        bonus = t("sub.plan_bonus", lang, bonus=fmt_tokens(plan.bonus_tokens)) if plan.bonus_tokens else ""
        lines.append(
            t(
                "sub.plan_line",
                lang,
                name=esc(name),
                tokens=fmt_tokens(plan.tokens),
                bonus=bonus,
                stars=plan.price_stars,
            )
        )
        builder.button(
            text=t("sub.plan_button", lang, name=name, stars=plan.price_stars),
            callback_data=SubCb(action=SubAction.PLAN, id=plan.pk),
        )
    builder.adjust(1)
    builder.row(InlineKeyboardButton(text=t("btn.back", lang), callback_data=MenuCb(action=MenuAction.TOPUP).pack()))
    text = t("sub.plans", lang) + "\n\n" + "\n".join(lines) if lines else t("sub.plans_empty", lang)
    await show(query, text, builder.as_markup())
    await answer(query)


@router.callback_query(SubCb.filter(F.action == SubAction.PLAN))
async def on_plan(query: CallbackQuery, callback_data: SubCb, user: UserContext, lang: str, bot: Bot) -> None:
    """A plan's perks and its "Subscribe" link: the user's pending subscription to it (made now, or the
    one made before), or a note when a subscription already runs (one at a time)."""
    plan, current = await bridge.subscription_plan(user.id, callback_data.id)
    if plan is None:
        await answer(query, t("errors.plan_unavailable", lang), alert=True)
        return
    name = plan_name(plan, lang)
    bonus = t("sub.plan_bonus", lang, bonus=fmt_tokens(plan.bonus_tokens)) if plan.bonus_tokens else ""
    parts = [t("sub.plan", lang, name=esc(name), tokens=fmt_tokens(plan.tokens), bonus=bonus, stars=plan.price_stars)]
    if perks := _perks(plan, lang):
        parts.append(esc(perks))
    back = [InlineKeyboardButton(text=t("btn.back", lang), callback_data=SubCb(action=SubAction.PLANS).pack())]
    if current is not None:
        if current.plan_id == plan.pk:
            parts.append(t("sub.plan_current", lang, until=_until(current)))
        else:
            parts.append(t("sub.plan_other", lang, plan=esc(plan_name(current.plan, lang)), until=_until(current)))
        await show(query, "\n\n".join(parts), InlineKeyboardMarkup(inline_keyboard=[back]))
        await answer(query)
        return
    try:
        subscription = await bridge.subscribe(user.id, plan.pk)
    except DomainError as exc:
        await answer(query, error_text(exc, lang), alert=True)
        return
    link = subscription.invoice_link or await _make_link(bot, subscription, plan, lang)
    if not link:
        await answer(query, t("sub.link_failed", lang), alert=True)
        return
    parts.append(t("sub.plan_hint", lang))
    pay = InlineKeyboardButton(text=t("sub.subscribe_button", lang, stars=subscription.price_stars), url=link)
    await show(query, "\n\n".join(parts), InlineKeyboardMarkup(inline_keyboard=[[pay], back]))
    await answer(query)


async def _make_link(bot: Bot, subscription: StarSubscription, plan: SubscriptionPlan, lang: str) -> str | None:
    """createInvoiceLink for the subscription (30 days, its price), stored on it; None if Telegram refused."""
    name = plan_name(plan, lang)
    bonus = t("sub.invoice_description_bonus", lang, bonus=fmt_tokens(plan.bonus_tokens)) if plan.bonus_tokens else ""
    try:
        link = await bot.create_invoice_link(
            title=t("sub.invoice_title", lang, name=name)[:32],
            description=t("sub.invoice_description", lang, tokens=fmt_tokens(plan.tokens), bonus=bonus)[:255],
            payload=subscription.invoice_payload,
            currency=STARS,
            prices=[LabeledPrice(label=t("sub.invoice_label", lang, name=name), amount=subscription.price_stars)],
            subscription_period=PERIOD_SECONDS,
        )
    except TelegramAPIError as exc:
        log.warning("createInvoiceLink for subscription #%s failed: %s", subscription.pk, exc)
        return None
    return await bridge.attach_subscription_link(subscription.pk, link)


# --- paying ----------------------------------------------------------------------------------------
@router.pre_checkout_query(F.invoice_payload.startswith(PAYLOAD_PREFIX))
async def on_pre_checkout(query: PreCheckoutQuery, lang: str) -> None:
    await answer_pre_checkout(query, lang, bridge.validate_subscription_precheckout, what="subscription pre-checkout")


@router.message(F.successful_payment.is_recurring | F.successful_payment.invoice_payload.startswith(PAYLOAD_PREFIX))
async def on_recurring_payment(message: Message, state: FSMContext, lang: str) -> None:
    """A subscription's charge (the first or a renewal): credited once per charge id; the user is told."""
    paid = message.successful_payment
    assert paid is not None  # the filter guarantees it
    telegram_id = message.from_user.id if message.from_user else message.chat.id
    expiration = (
        datetime.fromtimestamp(paid.subscription_expiration_date, tz=UTC) if paid.subscription_expiration_date else None
    )
    try:
        outcome, balance = await bridge.credit_subscription_period(
            charge_id=paid.telegram_payment_charge_id,
            invoice_payload=paid.invoice_payload,
            telegram_id=telegram_id,
            total_amount=paid.total_amount,
            currency=paid.currency,
            expiration=expiration,
            is_first=bool(paid.is_first_recurring),
            raw=paid.model_dump(mode="json", exclude_none=True),
        )
    except DomainError as exc:
        # The Stars were taken: an operator must resolve it (the charge id lets them credit or refund).
        log.error(
            "subscription payment not credited: payload=%s charge=%s: %s",
            paid.invoice_payload,
            paid.telegram_payment_charge_id,
            exc.message,
        )
        await bridge.alert_operators(
            key="payment_not_credited",
            telegram_id=telegram_id,
            amount=paid.total_amount,
            currency=paid.currency,
            charge_id=paid.telegram_payment_charge_id,
            payload=paid.invoice_payload,
            reason=exc.message,
        )
        await message.answer(t("pay.not_credited", lang, charge_id=esc(paid.telegram_payment_charge_id)))
        return
    if not outcome.credited:
        log.info("subscription charge %s replayed: already credited", paid.telegram_payment_charge_id)
        return
    payment, sub = outcome.payment, outcome.subscription
    bonus = t("sub.credited_bonus", lang, bonus=fmt_tokens(payment.bonus_tokens)) if payment.bonus_tokens else ""
    text = t(
        "sub.started" if outcome.first else "sub.renewed",
        lang,
        plan=esc(plan_name(sub.plan, lang)),
        tokens=fmt_tokens(payment.tokens),
        bonus=bonus,
        until=_until(sub),
        balance=fmt_tokens(balance.total),
    )
    resume = await state.get_state() == GenerationFlow.confirm.state
    await message.answer(text, reply_markup=keyboards.paid_keyboard(lang, resume=resume))


# --- the profile: status, cancel, re-enable ------------------------------------------------------
def profile_section(sub: StarSubscription | None, lang: str) -> tuple[str, list[InlineKeyboardButton]]:
    """The profile's subscription line and its button row (cancel / re-enable), or ("", [])."""
    if sub is None:
        return "", []
    name = esc(plan_name(sub.plan, lang))
    if sub.status == Status.ACTIVE:
        button = InlineKeyboardButton(
            text=t("sub.cancel_button", lang), callback_data=SubCb(action=SubAction.CANCEL, id=sub.pk).pack()
        )
        return t("sub.profile_active", lang, plan=name, until=_until(sub)), [button]
    if is_running(sub):  # cancelled, within its paid period
        button = InlineKeyboardButton(
            text=t("sub.resume_button", lang), callback_data=SubCb(action=SubAction.RESUME, id=sub.pk).pack()
        )
        return t("sub.profile_cancelled", lang, plan=name, until=_until(sub)), [button]
    return t("sub.profile_lapsed", lang, plan=name), []


@router.callback_query(SubCb.filter(F.action.in_({SubAction.CANCEL, SubAction.RESUME})))
async def on_edit(query: CallbackQuery, callback_data: SubCb, user: UserContext, lang: str, bot: Bot) -> None:
    """Cancel (runs to the end of the paid period) or re-enable, in Telegram first, then here."""
    cancel = callback_data.action == SubAction.CANCEL
    try:
        target = await bridge.subscription_edit_target(user.id, callback_data.id, cancel=cancel)
    except DomainError as exc:
        await answer(query, error_text(exc, lang), alert=True)
        return
    try:
        await bot.edit_user_star_subscription(
            user_id=target.telegram_id, telegram_payment_charge_id=target.charge_id, is_canceled=cancel
        )
    except TelegramAPIError as exc:
        log.warning("editUserStarSubscription(%s, cancel=%s) failed: %s", target.subscription_id, cancel, exc)
        await answer(query, t("sub.edit_failed", lang), alert=True)
        return
    sub = await bridge.set_subscription_cancelled(user.id, target.subscription_id, cancelled=cancel)
    await answer(query, t("sub.cancelled" if cancel else "sub.resumed", lang, until=_until(sub)), alert=True)
    from botapp.handlers.profile import profile_screen  # the profile imports this module

    text, markup = await profile_screen(user, lang)
    await show(query, text, markup)


@router.subscription()
async def on_subscription_update(update: BotSubscriptionUpdated, lang: str, bot: Bot) -> None:
    """The user cancelled or re-enabled the subscription in Telegram, or its renewal failed."""
    sub = await bridge.apply_subscription_update(
        telegram_id=update.user.id, invoice_payload=update.invoice_payload, state=update.state
    )
    if sub is None or sub.status == Status.LAPSED:  # nothing changed; a lapse is told by its own notice
        return
    key = "sub.telegram_cancelled" if sub.status == Status.CANCELLED else "sub.telegram_resumed"
    try:
        await bot.send_message(update.user.id, t(key, lang, plan=esc(plan_name(sub.plan, lang)), until=_until(sub)))
    except TelegramAPIError as exc:
        log.info("subscription notice to %s not delivered: %s", update.user.id, exc)
