"""Card payments through YooKassa: create, confirm by webhook, expire when abandoned.

A card top-up is a `Payment` (provider `yookassa`, currency RUB) made by `PaymentService.create_invoice`
like a Stars invoice: the same quote (the package's `price_rub`, the promocode's discount rounded up to
the kopeck, package + promocode + level bonus) and the same promocode reservation (the newest invoice of
either kind holds the code). Then:

- `CardService.start` creates the YooKassa payment (capture=True, a redirect confirmation back to the
  bot) with the idempotence key = our `invoice_payload`, so a request whose answer was lost is asked
  once more and YooKassa answers the payment it already made. YooKassa's id goes into
  `provider_charge_id` (unique per provider), the confirmation URL into `raw["yookassa"]`. When YooKassa
  cannot be reached or refuses, the Payment is marked failed and its promocode freed: nothing is left
  pending, and the user is told to pay with Stars.
- `CardService.handle_notification` (the webhook) never trusts the body: it fetches the payment from the
  API and acts on what the API says. succeeded -> `PaymentService.complete` credits it once (row lock;
  the ledger key is YooKassa's id), consuming the promocode, with the level bonus and the referral reward,
  and the user is told through the `notify_card_payment` task on commit. canceled -> the Payment is
  cancelled and its promocode reservation freed.
- A card payment has no pre-checkout: YooKassa takes the money without asking us, so a paid card payment
  is always credited, also after a newer invoice voided it (it then gets the code if still unused, else
  the regular price's worth, as `PaymentService.complete` does for Stars).
- `CardService.expire_abandoned` (beat) asks YooKassa about card payments still open after
  YOOKASSA_EXPIRE_AFTER_MINUTES (YooKassa cancels an unpaid card payment after about an hour) and
  applies the answer the same way; one still pending after ABANDON_AFTER is marked failed.
"""

from __future__ import annotations

import html
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from botapp.i18n import t
from botapp.models import Payment, PromocodeActivation, TgUser, TopUpPackage, UserBalance
from botapp.services import notify, yookassa_api
from botapp.services.exceptions import PackageUnavailable, PaymentError, UserBanned
from botapp.services.payments import PaymentService
from botapp.services.yookassa_api import GatewayError, RemotePayment

log = logging.getLogger(__name__)

YOOKASSA = Payment.Provider.YOOKASSA
CREATE_ATTEMPTS = 2  # a create whose outcome is unknown is asked once more, with the same key
RETRY_PAUSE = 0.3  # seconds before asking again
ABANDON_AFTER = timedelta(days=7)  # still pending at YooKassa after this: failed here
SWEEP_BATCH = 100
FINAL = "yookassa_final"  # Payment.raw key: YooKassa's final answer was applied (succeeded / canceled / ...)


class CardUnavailable(PaymentError):
    code = "card_unavailable"
    default_message = "Card payments are temporarily unavailable. Please pay with Telegram Stars."


class CardPriceMissing(PaymentError):
    code = "card_no_price"
    default_message = "This package cannot be paid by card. Please pay with Telegram Stars."


class Outcome(StrEnum):
    CREDITED = "credited"
    ALREADY_CREDITED = "already_credited"
    CANCELLED = "cancelled"
    PENDING = "pending"  # nothing to do yet
    UNKNOWN = "unknown"  # not one of our payments
    NOT_CREDITED = "not_credited"  # paid, but it could not be credited: the operators were alerted
    FAILED = "failed"  # given up (not found at YooKassa, or pending for too long)


@dataclass(frozen=True)
class CardCheckout:
    """What the bot shows: the amount, the tokens and where to pay."""

    payment_id: int
    amount: Decimal
    currency: str
    tokens: Decimal
    bonus_tokens: Decimal
    confirmation_url: str
    yookassa_id: str


def return_url(bot_username: str = "") -> str:
    """YOOKASSA_RETURN_URL, else the bot's chat (https://t.me/<username>)."""
    configured = str(settings.YOOKASSA_RETURN_URL or "").strip()
    if configured:
        return configured
    username = (bot_username or settings.BOT_USERNAME or "").lstrip("@")
    return f"https://t.me/{username}" if username else "https://t.me/"


class CardService:
    # --- creating ---------------------------------------------------------------------------------
    @classmethod
    def start(cls, *, user_id: int, package_id: int, lang: str, bot_username: str = "") -> CardCheckout:
        """A pending card Payment and its YooKassa payment; CardUnavailable when YooKassa cannot make it
        (the Payment is then failed and its promocode free)."""
        if not yookassa_api.configured():
            raise CardUnavailable()
        if TgUser.objects.filter(pk=user_id, is_banned=True).exists():
            raise UserBanned()
        package = TopUpPackage.objects.filter(pk=package_id, is_active=True).first()
        if package is None:
            raise PackageUnavailable()
        if not package.price_rub:
            raise CardPriceMissing()
        receipt_email = str(settings.YOOKASSA_RECEIPT_EMAIL or "").strip()
        if settings.YOOKASSA_RECEIPTS and not receipt_email:
            log.error("YOOKASSA_RECEIPTS is on but YOOKASSA_RECEIPT_EMAIL is empty: card payments refused")
            raise CardUnavailable()
        payment = PaymentService.create_invoice(user_id=user_id, package_id=package_id, provider=YOOKASSA)
        params = _payment_params(payment, lang=lang, return_to=return_url(bot_username), receipt_email=receipt_email)
        try:
            remote = _create(params, key=payment.invoice_payload)
            if not remote.confirmation_url or remote.amount != payment.amount or remote.currency != payment.currency:
                raise GatewayError(f"unexpected answer: {remote.summary()} {remote.confirmation_url!r}")
        except GatewayError as exc:
            log.warning("card payment #%s: YooKassa could not create it: %s", payment.pk, exc)
            _give_up(payment.pk, status=Payment.Status.FAILED, note={"create_error": str(exc)[:500]})
            raise CardUnavailable() from exc
        _record_created(payment.pk, remote)
        return CardCheckout(
            payment_id=payment.pk,
            amount=payment.amount,
            currency=payment.currency,
            tokens=payment.tokens,
            bonus_tokens=payment.bonus_tokens,
            confirmation_url=remote.confirmation_url,
            yookassa_id=remote.id,
        )

    # --- the webhook --------------------------------------------------------------------------------
    @classmethod
    def handle_notification(cls, *, yookassa_id: str, event: str) -> Outcome:
        """A webhook about one of YooKassa's payments: re-read from the API, then applied once.
        Raises GatewayError when the API cannot be asked now (the webhook answers 5xx: YooKassa retries)."""
        payment = Payment.objects.filter(provider=YOOKASSA, provider_charge_id=yookassa_id).first()
        if payment is None:
            log.warning("YooKassa webhook %s about an unknown payment %s: ignored", event, yookassa_id)
            return Outcome.UNKNOWN
        try:
            remote = yookassa_api.get_payment(yookassa_id)
        except GatewayError as exc:
            if exc.not_found:
                log.warning("YooKassa webhook %s: the API does not know payment %s: ignored", event, yookassa_id)
                return Outcome.UNKNOWN
            raise
        if remote.id != yookassa_id:
            log.error("YooKassa answered payment %s when asked for %s: ignored", remote.id, yookassa_id)
            return Outcome.UNKNOWN
        if event != f"payment.{remote.status}":
            log.warning(
                "card payment #%s: the webhook says %s, the API says %s: acting on the API",
                payment.pk,
                event,
                remote.status,
            )
        return cls.apply(payment_id=payment.pk, remote=remote)

    @classmethod
    def apply(cls, *, payment_id: int, remote: RemotePayment) -> Outcome:
        """Apply YooKassa's state of the payment (as its API showed it) to our Payment, idempotently."""
        if remote.status == "succeeded":
            return _credit(payment_id, remote)
        if remote.status == "canceled":
            return _cancel(payment_id, remote)
        if remote.status == "waiting_for_capture":  # we create with capture=True: YooKassa captures itself
            log.error("card payment #%s is waiting for capture at YooKassa (expected capture=True)", payment_id)
        return Outcome.PENDING

    # --- abandoned payments -------------------------------------------------------------------------
    @classmethod
    def expire_abandoned(cls, *, now: datetime | None = None, limit: int = SWEEP_BATCH) -> dict[str, int]:
        """Beat: card payments still open YOOKASSA_EXPIRE_AFTER_MINUTES after their creation are asked
        about (a lost webhook is made good; a canceled one frees its promocode). Returns counts."""
        now = now or timezone.now()
        counts: dict[str, int] = {}
        cutoff = now - timedelta(minutes=float(settings.YOOKASSA_EXPIRE_AFTER_MINUTES))
        base = Payment.objects.filter(provider=YOOKASSA, created_at__lte=cutoff, paid_at__isnull=True)
        # Never got a YooKassa id (the process died while creating it): nobody has its link.
        for pk in base.filter(status=Payment.Status.PENDING, provider_charge_id__isnull=True).values_list(
            "pk", flat=True
        )[:limit]:
            _give_up(pk, status=Payment.Status.FAILED, note={FINAL: "never_created"})
            counts["never_created"] = counts.get("never_created", 0) + 1
        if not yookassa_api.configured():
            return counts
        # Pending, or voided here by a newer invoice but maybe still payable at YooKassa.
        open_payments = (
            base.filter(provider_charge_id__isnull=False, status__in=(Payment.Status.PENDING, Payment.Status.CANCELLED))
            .exclude(raw__has_key=FINAL)
            .order_by("created_at")
            .values_list("pk", "provider_charge_id", "created_at")[:limit]
        )
        for pk, yookassa_id, created_at in open_payments:
            try:
                remote = yookassa_api.get_payment(yookassa_id)
            except GatewayError as exc:
                if not exc.not_found:
                    log.warning("card payment #%s: YooKassa could not be asked: %s", pk, exc)
                    counts["errors"] = counts.get("errors", 0) + 1
                    continue
                log.warning("card payment #%s: YooKassa does not know %s: failed", pk, yookassa_id)
                _give_up(pk, status=Payment.Status.FAILED, note={FINAL: "not_found"})
                outcome = Outcome.FAILED
            else:
                outcome = cls.apply(payment_id=pk, remote=remote)
                if outcome == Outcome.PENDING and created_at <= now - ABANDON_AFTER:
                    log.warning(
                        "card payment #%s is still %s at YooKassa after %s: failed", pk, remote.status, now - created_at
                    )
                    _give_up(pk, status=Payment.Status.FAILED, note={FINAL: "abandoned"})
                    outcome = Outcome.FAILED
            counts[outcome.value] = counts.get(outcome.value, 0) + 1
        return counts

    # --- the user's notice ------------------------------------------------------------------------------
    @staticmethod
    def send_paid_notice(*, payment_id: int) -> float | None:
        """notify_card_payment: tell the user their card payment was credited. Returns a retry delay
        (seconds) when Telegram asks us to wait, else None (sent, or nothing to send)."""
        from botapp.keyboards import paid_keyboard

        payment = Payment.objects.select_related("user").filter(pk=payment_id, provider=YOOKASSA).first()
        if payment is None or payment.status != Payment.Status.SUCCEEDED or payment.paid_at is None:
            return None
        if payment.user.bot_blocked:
            return None
        lang = notify.language_of(payment.user_id)
        # An unknown outcome is not repeated (the tokens are in /balance anyway).
        return notify.send_once(
            chat_id=payment.user.telegram_id,
            text=paid_notice_text(payment=payment, lang=lang),
            reply_markup=paid_keyboard(lang, resume=False),
            marker=f"cardpay:{payment.pk}:{payment.paid_at.timestamp():.6f}:notified",
            what=f"card payment #{payment_id}: the notice",
        )


def paid_notice_text(*, payment: Payment, lang: str) -> str:
    from botapp.keyboards import fmt_tokens

    balance = UserBalance.objects.filter(user_id=payment.user_id).first()
    text = t(
        "pay.success", lang, tokens=fmt_tokens(payment.tokens), balance=fmt_tokens(balance.total if balance else 0)
    )
    if payment.bonus_tokens:
        text += "\n" + t("pay.success_bonus", lang, bonus=fmt_tokens(payment.bonus_tokens))
    missed = (payment.raw or {}).get("promocode_not_applied") or {}
    if missed.get("code"):
        text += "\n" + t("pay.card_promo_not_applied", lang, code=html.escape(str(missed["code"]), quote=False))
    return text


def enqueue_paid_notice(*, payment_id: int) -> None:
    """Hand the notice to the workers (call on commit). A broker failure never fails the crediting."""
    notify.enqueue("notify_card_payment", payment_id, what=f"card payment #{payment_id}: the notice")


# --- helpers -------------------------------------------------------------------------------------------
def _payment_params(payment: Payment, *, lang: str, return_to: str, receipt_email: str) -> dict[str, Any]:
    from botapp.keyboards import fmt_tokens

    amount = {"value": f"{payment.amount:.2f}", "currency": payment.currency}
    description = t("pay.card_description", lang, tokens=fmt_tokens(payment.tokens), number=payment.pk)[:128]
    params: dict[str, Any] = {
        "amount": amount,
        "capture": True,
        "confirmation": {"type": "redirect", "return_url": return_to},
        "description": description,
        "metadata": {"payment_id": str(payment.pk), "user_id": str(payment.user_id)},
    }
    if settings.YOOKASSA_RECEIPTS:
        params["receipt"] = {
            "customer": {"email": receipt_email},
            "items": [
                {
                    "description": description,
                    "quantity": "1.00",
                    "amount": amount,
                    "vat_code": int(settings.YOOKASSA_VAT_CODE),
                    "payment_subject": "service",
                    "payment_mode": "full_payment",
                }
            ],
        }
    return params


def _create(params: dict[str, Any], *, key: str) -> RemotePayment:
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            return yookassa_api.create_payment(params, idempotence_key=key)
        except GatewayError as exc:
            if not exc.retryable or attempt == CREATE_ATTEMPTS:
                raise
            log.info("YooKassa create %s: %s; asking again with the same key", key, exc)
            time.sleep(RETRY_PAUSE)
    raise AssertionError("unreachable")


def _record_created(payment_id: int, remote: RemotePayment) -> None:
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        payment.provider_charge_id = remote.id
        payment.raw = {**payment.raw, "yookassa": {**remote.summary(), "confirmation_url": remote.confirmation_url}}
        payment.save(update_fields=["provider_charge_id", "raw"])


def _give_up(payment_id: int, *, status: str, note: dict[str, Any]) -> None:
    """An unpaid Payment ends (failed or cancelled): its promocode is free for the next invoice."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(pk=payment_id).first()
        if payment is None or payment.status in (Payment.Status.SUCCEEDED, Payment.Status.REFUNDED):
            return
        if payment.status == Payment.Status.PENDING:
            payment.status = status
        payment.raw = {**payment.raw, **note}
        payment.save(update_fields=["status", "raw"])
        PromocodeActivation.objects.filter(reserved_by=payment).update(reserved_by=None)


def _cancel(payment_id: int, remote: RemotePayment) -> Outcome:
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status in (Payment.Status.SUCCEEDED, Payment.Status.REFUNDED):
            log.error("card payment #%s was credited, but YooKassa says it is canceled: left as it is", payment_id)
            return Outcome.ALREADY_CREDITED
        if payment.raw.get(FINAL) != "canceled":
            log.info("card payment #%s canceled at YooKassa: %s", payment_id, remote.cancellation or "-")
        payment.status = Payment.Status.CANCELLED
        payment.raw = {
            **payment.raw,
            FINAL: "canceled",
            "yookassa": {**payment.raw.get("yookassa", {}), **remote.summary()},
        }
        payment.save(update_fields=["status", "raw"])
        PromocodeActivation.objects.filter(reserved_by=payment).update(reserved_by=None)
    return Outcome.CANCELLED


def _credit(payment_id: int, remote: RemotePayment) -> Outcome:
    payment = Payment.objects.select_related("user").get(pk=payment_id)
    if str(remote.metadata.get("payment_id", payment.pk)) != str(payment.pk):
        return _not_credited(payment, remote, "the payment's metadata names another payment")
    try:
        with transaction.atomic():
            outcome = PaymentService.complete(
                invoice_payload=payment.invoice_payload,
                provider_charge_id=remote.id,
                total_amount=remote.amount,
                currency=remote.currency,
                raw=remote.summary(),
            )
            if outcome.credited:
                transaction.on_commit(lambda: enqueue_paid_notice(payment_id=payment.pk))
    except PaymentError as exc:
        return _not_credited(payment, remote, exc.message)
    if not outcome.credited:
        return Outcome.ALREADY_CREDITED
    log.info("card payment #%s credited (YooKassa %s, %s %s)", payment.pk, remote.id, remote.amount, remote.currency)
    return Outcome.CREDITED


def _not_credited(payment: Payment, remote: RemotePayment, reason: str) -> Outcome:
    """The money was taken but cannot be credited: this must reach an operator (credit or refund)."""
    from botapp.services import alerts

    log.error("card payment #%s (YooKassa %s) paid but not credited: %s", payment.pk, remote.id, reason)
    alerts.alert_operators(
        key="payment_not_credited",
        telegram_id=payment.user.telegram_id,
        amount=remote.amount,
        currency=remote.currency,
        charge_id=remote.id,
        payload=payment.invoice_payload,
        reason=reason,
    )
    return Outcome.NOT_CREDITED
