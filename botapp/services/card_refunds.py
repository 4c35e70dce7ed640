"""Refunds of card payments (YooKassa), whoever makes them, through the one take-back of
botapp.services.refunds.

Three ways a card payment gets refunded:

- **an operator** in the admin ("Refund card payment…"): `refund_card_payment` checks the payment and
  the shortfall rule (as for Stars), notes the request on the payment, asks YooKassa for a refund of the
  whole amount (`Refund.create`, idempotence key = the form's one-time key, so a lost answer is asked
  again safely), and records it once YooKassa says it succeeded;
- **the shop outside the bot** (YooKassa's dashboard, a dispute): YooKassa sends `refund.succeeded`;
  the webhook re-reads the refund from the API (the body is only a hint, as for payments) and records
  it, and the operators are alerted;
- **the reconciliation** (beat, daily: `reconcile_card`) lists the API's payments and refunds of the
  last CARD_RECONCILE_DAYS days: a succeeded payment not credited here is credited, a refund not
  recorded here is recorded (the webhook was lost).

`record_card_refund` is the one place that records: under the payment's row lock, once per YooKassa
refund id (`raw["card_refunds"]`), it takes back the share of what the payment credited that this
refund gives back (a refund of part of the amount takes back that part of the tokens, of the bonus and
of the referral reward; successive parts add up to the whole), from the buckets they went to, never
below zero (the rest is the shortfall, recorded). When the refunds reach the payment's amount, the
payment is `refunded` and the user is told, as for Stars.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from botapp.models import ZERO, Payment
from botapp.services import alerts, yookassa_api
from botapp.services.refunds import (
    SOURCE_ADMIN,
    SOURCE_PROVIDER,
    SOURCE_RECONCILE,
    AlreadyRefunded,
    RefundError,
    RefundNotAllowed,
    RefundPlan,
    RefundResult,
    _mark_requested,
    _plan,
    _take_back,
    check_shortfall,
    enqueue_refund_notice,
    flag_spent_refund,
    operator_payment,
    requested_by_operator,
)
from botapp.services.yookassa_api import GatewayError, RemoteRefund

log = logging.getLogger(__name__)

YOOKASSA = Payment.Provider.YOOKASSA
REFUNDS = "card_refunds"  # Payment.raw: {refund id: what it took back}


class CardRefundRefused(RefundError):
    code = "card_refund_refused"
    default_message = "YooKassa refused the refund: {reason}. Nothing changed."


class CardRefundOutcomeUnknown(RefundError):
    code = "card_refund_outcome_unknown"
    default_message = (
        "YooKassa did not confirm the refund ({reason}): it may or may not have been made. Nothing was taken "
        "back yet; YooKassa's notification records it when it succeeds, or submit this form again (the same "
        "request: it refunds once)."
    )


def recorded_refunds(payment: Payment) -> dict[str, dict]:
    found = (payment.raw or {}).get(REFUNDS)
    return found if isinstance(found, dict) else {}


def refunded_amount(payment: Payment) -> Decimal:
    """The money recorded as refunded so far (the sum of its YooKassa refunds)."""
    return sum((Decimal(entry["amount"]) for entry in recorded_refunds(payment).values()), ZERO)


# --- the one place that records a card refund ------------------------------------------------------------
def record_card_refund(
    *, payment_id: int, refund: RemoteRefund, by: str, source: str, key: str = "", notify: bool = True
) -> RefundResult:
    """Record YooKassa's (succeeded) refund `refund` of the card payment: take back its share of what
    the payment credited, once per refund id. `applied=False` when it was recorded before (`replayed`
    when `key` is the one that recorded it); RefundNotAllowed for a payment that was never credited."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        prior = recorded_refunds(payment)
        if refund.id in prior:
            return RefundResult(
                payment=payment, applied=False, replayed=bool(key) and prior[refund.id].get("key") == key
            )
        if payment.provider != YOOKASSA or payment.status != Payment.Status.SUCCEEDED:
            raise RefundNotAllowed(
                f"Payment #{payment.pk} is a {payment.provider} payment in status {payment.status}: "
                "only a credited card payment's refund is recorded."
            )
        if refund.currency != payment.currency or refund.amount <= 0:
            raise RefundNotAllowed(
                f"Refund {refund.id}: {refund.amount} {refund.currency} does not fit payment #{payment.pk}."
            )
        before = refunded_amount(payment)
        after = min(payment.amount, before + refund.amount)
        share = (before / payment.amount, after / payment.amount)
        plan = _plan(payment, lock=True, share=share)
        moved = _take_back(payment, plan, by=by, what=f"{refund.amount} {refund.currency}", part=refund.id)
        now = timezone.now()
        entry = {**moved.record(by=by, at=now, source=source, key=key), "amount": str(refund.amount)}
        raw = {**payment.raw, REFUNDS: {**prior, refund.id: entry}}
        fields = ["raw"]
        if after >= payment.amount:  # refunded in full: the payment is refunded, as a Stars payment is
            entries = raw[REFUNDS].values()
            raw["refund"] = {
                **entry,
                "shortfall": str(sum((Decimal(e["shortfall"]) for e in entries), ZERO)),
                "taken": str(sum((Decimal(e["taken"]) for e in entries), ZERO)),
                "referral_taken": str(sum((Decimal(e["referral_taken"]) for e in entries), ZERO)),
            }
            payment.status = Payment.Status.REFUNDED
            payment.refunded_at = now
            fields += ["status", "refunded_at"]
            if notify:
                transaction.on_commit(lambda: enqueue_refund_notice(payment_id=payment_id))
        payment.raw = raw
        payment.save(update_fields=fields)
        flag_spent_refund(payment, moved, by=by)
    moved.log_shortfall(payment_id, source=source, by=by)
    return RefundResult(payment=payment, applied=True, plan=plan)


# --- YooKassa's notification, and what the reconciliation finds ----------------------------------------------
@dataclass(frozen=True)
class CardRefundOutcome:
    status: str  # "recorded", "already", "pending" (not succeeded yet), "unknown" (not ours / not creditable)
    payment_id: int | None = None


def apply_remote_refund(refund: RemoteRefund, *, source: str = SOURCE_PROVIDER) -> CardRefundOutcome:
    """A refund as YooKassa's API shows it: recorded once if it succeeded. An operator's own refund
    (noted on the payment before YooKassa was asked) is recorded as theirs; any other is alerted."""
    if refund.status != "succeeded":
        return CardRefundOutcome("pending")
    payment = Payment.objects.filter(provider=YOOKASSA, provider_charge_id=refund.payment_id).first()
    if payment is None:
        log.warning("YooKassa refund %s of an unknown payment %s: ignored", refund.id, refund.payment_id)
        return CardRefundOutcome("unknown")
    requested = requested_by_operator(payment)
    by, how = (requested["by"], SOURCE_ADMIN) if requested else ("YooKassa", source)
    try:
        result = record_card_refund(
            payment_id=payment.pk, refund=refund, by=by, source=how, key=(requested or {}).get("key") or ""
        )
    except RefundNotAllowed as exc:
        log.error("YooKassa refund %s of payment #%s not recorded: %s", refund.id, payment.pk, exc.message)
        alerts.alert_operators(
            key="card_refund_not_recorded",
            payment_id=payment.pk,
            amount=refund.amount,
            currency=refund.currency,
            refund_id=refund.id,
            reason=exc.message,
        )
        return CardRefundOutcome("unknown", payment.pk)
    if not result.applied:
        return CardRefundOutcome("already", payment.pk)
    if not requested:
        entry = recorded_refunds(result.payment)[refund.id]
        alerts.alert_operators(
            key="card_refunded_externally",
            payment_id=payment.pk,
            telegram_id=payment.user.telegram_id,
            amount=refund.amount,
            currency=refund.currency,
            taken=entry["taken"],
            shortfall=entry["shortfall"],
            refund_id=refund.id,
        )
    return CardRefundOutcome("recorded", payment.pk)


def handle_refund_notification(*, refund_id: str) -> CardRefundOutcome:
    """The webhook's `refund.*`: re-read the refund from the API, then record it. Raises GatewayError
    when the API cannot be asked now (the webhook answers 5xx: YooKassa retries)."""
    try:
        refund = yookassa_api.get_refund(refund_id)
    except GatewayError as exc:
        if exc.not_found:
            log.warning("YooKassa webhook: the API does not know refund %s: ignored", refund_id)
            return CardRefundOutcome("unknown")
        raise
    if refund.id != refund_id:
        log.error("YooKassa answered refund %s when asked for %s: ignored", refund.id, refund_id)
        return CardRefundOutcome("unknown")
    return apply_remote_refund(refund)


def reconcile_card(*, days: int) -> dict[str, int]:
    """Beat (daily): YooKassa's last `days` days against ours. Every payment it shows succeeded is
    credited here (a lost webhook, missed by the expiry sweep too), and every refund it made is recorded
    (and alerted). Returns counts: `payment_<outcome>` and `refund_<outcome>`."""
    from botapp.services.card import CardService

    counts: dict[str, int] = {}

    def count(name: str) -> None:
        counts[name] = counts.get(name, 0) + 1

    since = timezone.now() - timedelta(days=days)
    paid = {remote.id: remote for remote in yookassa_api.list_payments(since=since, status="succeeded")}
    ours = Payment.objects.filter(provider=YOOKASSA, provider_charge_id__in=list(paid)).exclude(
        status__in=(Payment.Status.SUCCEEDED, Payment.Status.REFUNDED)
    )
    for payment_id, charge_id in ours.values_list("pk", "provider_charge_id"):
        count(f"payment_{CardService.apply(payment_id=payment_id, remote=paid[charge_id]).value}")
    for refund in yookassa_api.list_refunds(since=since):
        count(f"refund_{apply_remote_refund(refund, source=SOURCE_RECONCILE).status}")
    if counts.get("refund_recorded") or counts.get("payment_credited"):
        log.warning("card reconciliation: made good what the webhook had missed: %s", counts)
    return counts


# --- an operator's refund ----------------------------------------------------------------------------------
def why_not_refundable(payment: Payment) -> RefundError | None:
    """Why an operator cannot refund this card payment (the error to raise), or None when they can."""
    if payment.status == Payment.Status.REFUNDED:
        return AlreadyRefunded(payment_id=payment.pk, by=(payment.raw.get("refund") or {}).get("by") or "YooKassa")
    if payment.provider != YOOKASSA or not payment.provider_charge_id:
        return RefundNotAllowed("Only a card payment (YooKassa) is refunded here.")
    if payment.status != Payment.Status.SUCCEEDED:
        return RefundNotAllowed(f"Payment #{payment.pk} is {payment.status}: only a successful payment is refunded.")
    return None


def plan_card_refund(*, payment_id: int) -> tuple[RefundPlan, Decimal]:
    """What refunding the rest of the card payment would take back now, and the money it gives back
    (the amount less what was refunded in parts before); nothing locked (the admin's confirmation)."""
    payment = Payment.objects.get(pk=payment_id)
    left = payment.amount - refunded_amount(payment)
    return _plan(payment, lock=False, share=(1 - left / payment.amount, Decimal(1))), left


def refund_card_payment(*, payment_id: int, operator: str, refund_anyway: bool = False, key: str) -> RefundResult:
    """Refund a card payment (what is left of it) through YooKassa, then take back what it credited (the
    shortfall rule of Stars refunds: a spend needs `refund_anyway`). `key`: the form's one-time key, also
    YooKassa's idempotence key, so the same form submitted twice, or asked again after a lost answer,
    refunds once."""
    payment, replay = operator_payment(payment_id=payment_id, key=key, why_not=why_not_refundable)
    if replay is not None:
        return replay
    plan, left = plan_card_refund(payment_id=payment.pk)
    check_shortfall(plan, refund_anyway=refund_anyway)
    if not yookassa_api.configured():
        raise CardRefundRefused(reason="no YooKassa shop is configured (YOOKASSA_SHOP_ID, YOOKASSA_SECRET_KEY)")
    _mark_requested(payment_id=payment.pk, by=operator, key=key)
    try:
        refund = yookassa_api.create_refund(
            payment_id=payment.provider_charge_id, amount=left, currency=payment.currency, idempotence_key=key
        )
    except GatewayError as exc:
        if exc.retryable:  # it may have been made: the request stays noted; the webhook records it
            raise CardRefundOutcomeUnknown(reason=str(exc)) from exc
        _mark_requested(payment_id=payment.pk, by=operator, key=key, clear=True)
        raise CardRefundRefused(reason=str(exc)) from exc
    if refund.status != "succeeded":  # YooKassa is still processing it: its webhook records it
        raise CardRefundOutcomeUnknown(reason=f"YooKassa's refund {refund.id} is {refund.status}")
    result = record_card_refund(payment_id=payment.pk, refund=refund, by=operator, source=SOURCE_ADMIN, key=key)
    if result.replayed:  # YooKassa's webhook recorded this very refund for this form first
        return RefundResult(payment=result.payment, applied=True, plan=plan)
    return result
