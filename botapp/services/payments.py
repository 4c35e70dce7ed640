"""Top-ups: quotes (package + promocode + level perk), invoices, pre-checkout checks, crediting once.

A payment is credited exactly once per provider charge id: the Payment row is locked, its status
moves pending -> succeeded by one caller only, the (provider, provider_charge_id) pair is unique in
the database, and the ledger deposit's idempotency key is derived from the charge id.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from botapp.models import ZERO, Payment, Promocode, PromocodeActivation, TgUser, TopUpPackage
from botapp.services import levels
from botapp.services.balance import CENT, BalanceService
from botapp.services.exceptions import PackageUnavailable, PaymentError, UserBanned
from botapp.services.promo import PromoService
from botapp.services.referral import ReferralService

STARS = "XTR"


@dataclass(frozen=True)
class TopUpQuote:
    package_id: int
    tokens: Decimal
    bonus_tokens: Decimal
    price_stars: int
    base_price_stars: int
    discount_percent: Decimal
    bonus_percent: Decimal  # package + promocode + level perk
    promocode: str | None
    activation_id: int | None


@dataclass(frozen=True)
class PaymentOutcome:
    payment: Payment
    credited: bool  # False when this call was a replay of an already credited payment


def _percent(amount: Decimal, percent: Decimal) -> Decimal:
    return (amount * percent / Decimal(100)).quantize(CENT)


class PaymentService:
    @staticmethod
    def packages() -> list[TopUpPackage]:
        return list(TopUpPackage.objects.filter(is_active=True).order_by("sort_order", "tokens"))

    @staticmethod
    def quote(*, user_id: int, package_id: int) -> TopUpQuote:
        package = TopUpPackage.objects.filter(pk=package_id, is_active=True).first()
        if package is None:
            raise PackageUnavailable()
        user = TgUser.objects.get(pk=user_id)
        activation = PromoService.pending_topup_activation(user_id=user_id)
        promo = activation.promocode if activation else None
        discount = promo.value if promo and promo.kind == Promocode.Kind.TOPUP_DISCOUNT else ZERO
        promo_bonus = promo.value if promo and promo.kind == Promocode.Kind.TOPUP_BONUS else ZERO
        level_bonus = levels.progress(user=user).topup_bonus_percent
        bonus_percent = package.bonus_percent + promo_bonus + level_bonus
        price = package.price_stars
        if discount:
            price = max(1, math.ceil(package.price_stars * (Decimal(100) - min(discount, Decimal(99))) / 100))
        return TopUpQuote(
            package_id=package.pk,
            tokens=package.tokens,
            bonus_tokens=_percent(package.tokens, bonus_percent),
            price_stars=int(price),
            base_price_stars=package.price_stars,
            discount_percent=discount,
            bonus_percent=bonus_percent,
            promocode=promo.code if promo else None,
            activation_id=activation.pk if activation else None,
        )

    @classmethod
    def create_invoice(
        cls, *, user_id: int, package_id: int, provider: str = Payment.Provider.TELEGRAM_STARS
    ) -> Payment:
        """A pending Payment with a unique invoice payload; the bot sends the invoice for it."""
        if TgUser.objects.filter(pk=user_id, is_banned=True).exists():
            raise UserBanned()
        quote = cls.quote(user_id=user_id, package_id=package_id)
        activation = PromocodeActivation.objects.filter(pk=quote.activation_id).select_related("promocode").first()
        return Payment.objects.create(
            user_id=user_id,
            provider=provider,
            package_id=package_id,
            amount=Decimal(quote.price_stars),
            currency=STARS,
            tokens=quote.tokens,
            bonus_tokens=quote.bonus_tokens,
            promocode=activation.promocode if activation else None,
            invoice_payload=f"topup:{uuid.uuid4().hex}",
            raw={"quote": {"bonus_percent": str(quote.bonus_percent), "discount": str(quote.discount_percent)}},
        )

    @staticmethod
    def validate_precheckout(*, invoice_payload: str, telegram_id: int, total_amount: int, currency: str) -> Payment:
        """Telegram's pre-checkout: must answer within 10 s, so only cheap reads here."""
        payment = Payment.objects.select_related("user", "package").filter(invoice_payload=invoice_payload).first()
        if payment is None or payment.user.telegram_id != telegram_id:
            raise PaymentError("This invoice is not valid.")
        if payment.status != Payment.Status.PENDING:
            raise PaymentError("This invoice has already been paid or cancelled.")
        if payment.user.is_banned:
            raise UserBanned()
        if currency != payment.currency or Decimal(total_amount) != payment.amount:
            raise PaymentError("The amount of this invoice has changed; please open the top-up menu again.")
        if payment.package is not None and not payment.package.is_active:
            raise PackageUnavailable()
        return payment

    @staticmethod
    def complete(
        *,
        invoice_payload: str,
        provider_charge_id: str,
        total_amount: int,
        currency: str,
        raw: dict | None = None,
    ) -> PaymentOutcome:
        """Credit a successful payment once, whatever is replayed. Applies the promocode and the
        referral reward in the same transaction."""
        if not provider_charge_id:
            raise PaymentError("A payment without a charge id cannot be credited.")
        with transaction.atomic():
            payment = Payment.objects.select_for_update().filter(invoice_payload=invoice_payload).first()
            if payment is None:
                raise PaymentError("Unknown invoice.")
            if payment.provider_charge_id:
                if payment.provider_charge_id != provider_charge_id:
                    raise PaymentError("This invoice was paid with another charge.")
                return PaymentOutcome(payment=payment, credited=False)
            if payment.status not in (Payment.Status.PENDING, Payment.Status.FAILED, Payment.Status.CANCELLED):
                raise PaymentError("This invoice cannot be paid.")
            if currency != payment.currency or Decimal(total_amount) != payment.amount:
                raise PaymentError("The paid amount does not match the invoice.")
            is_first = not Payment.objects.filter(user_id=payment.user_id, status=Payment.Status.SUCCEEDED).exists()
            payment.status = Payment.Status.SUCCEEDED
            payment.provider_charge_id = provider_charge_id
            payment.paid_at = timezone.now()
            payment.raw = {**payment.raw, "success": raw or {}}
            payment.save(update_fields=["status", "provider_charge_id", "paid_at", "raw"])
            BalanceService.deposit(
                user_id=payment.user_id,
                amount=payment.tokens,
                bonus_amount=payment.bonus_tokens,
                key=f"payment:{payment.provider}:{provider_charge_id}",
                payment=payment,
                promocode=payment.promocode,
                description=f"Top-up #{payment.pk}",
            )
            if payment.promocode_id:
                PromocodeActivation.objects.filter(
                    promocode_id=payment.promocode_id, user_id=payment.user_id, consumed_at__isnull=True
                ).update(consumed_at=payment.paid_at, consumed_by=payment)
            ReferralService.reward_for_topup(payment=payment, is_first_topup=is_first)
        return PaymentOutcome(payment=payment, credited=True)

    @staticmethod
    def mark_refunded(*, payment_id: int) -> Payment:
        """Record a refund the provider made: take back what the payment credited, once."""
        with transaction.atomic():
            payment = Payment.objects.select_for_update().get(pk=payment_id)
            if payment.status == Payment.Status.REFUNDED:
                return payment
            if payment.status != Payment.Status.SUCCEEDED:
                raise PaymentError("Only a successful payment can be refunded.")
            BalanceService.debit_refunded_payment(payment=payment, key=f"payment:{payment.pk}:refund")
            payment.status = Payment.Status.REFUNDED
            payment.refunded_at = timezone.now()
            payment.save(update_fields=["status", "refunded_at"])
        return payment
