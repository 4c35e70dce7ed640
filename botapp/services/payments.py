"""Top-ups: quotes (package + promocode + level perk), invoices, pre-checkout checks, crediting once.

A payment is credited exactly once per provider charge id: the Payment row is locked, its status
moves pending -> succeeded by one caller only, the (provider, provider_charge_id) pair is unique in
the database, and the ledger deposit's idempotency key is derived from the charge id.

Top-up promocodes (a discount % or a bonus % on a top-up) are reserved by one pending payment at a
time, and consumed by one successful payment only:

- The reservation is `PromocodeActivation.reserved_by`: one column, so one payment; it is written
  while the activation row is locked (SELECT ... FOR UPDATE), so concurrent invoices serialise on it.
- **The newest invoice takes the reservation.** Creating an invoice while an older one holds the code
  moves the code to the new invoice and voids the older one (status cancelled); the older one's
  pre-checkout is then refused (`InvoiceReplaced`), and a refused pre-checkout means Telegram charges
  nothing. Chosen over "price the second invoice without the discount" because the user who presses
  "Stars" again (another package, a lost invoice message) wants to pay the invoice in front of them,
  and should not pay full price for it because of an invoice they abandoned.
- An invoice carrying a code expires `RESERVATION_TTL` after its creation: its pre-checkout is refused
  (`InvoiceExpired`) and the reservation freed. Any other pre-checkout refusal of the holder (package
  withdrawn, amount changed, user banned) frees the reservation too. Expiry is lazy (checked at
  pre-checkout); a new invoice takes the code in any case.
- The code is consumed in `complete()` only, by the payment that succeeded, under the row lock and
  only while `consumed_at` is NULL: exactly one payment consumes it.
- `complete()` runs after Telegram has taken the money, so it always credits. If the code is still
  unconsumed, this payment consumes it (even if a newer invoice holds the reservation: that one is
  voided and refused at pre-checkout) and gets what its invoice promised. If another payment already
  consumed the code (both invoices passed pre-checkout before either was paid: a narrow race), the
  payment is credited **without the code**: at the regular price for the Stars actually paid
  (discount code: the package's tokens × paid / list price; bonus code: without the code's bonus %),
  with the promocode removed from the payment and noted in `raw["promocode_not_applied"]`. A code is
  never credited on two payments.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from django.db import transaction
from django.utils import timezone

from botapp.models import ZERO, Payment, Promocode, PromocodeActivation, TgUser, TopUpPackage
from botapp.services import levels
from botapp.services.balance import CENT, BalanceService
from botapp.services.exceptions import (
    DomainError,
    InvoiceExpired,
    InvoiceReplaced,
    PackageUnavailable,
    PaymentError,
    PromoFirstTopupOnly,
    UserBanned,
)
from botapp.services.promo import PromoService, has_paid
from botapp.services.referral import ReferralService

STARS = "XTR"
RUB = "RUB"  # card payments (YooKassa): priced from the package's price_rub
# How long an invoice that carries a promocode holds it (after that its pre-checkout is refused).
RESERVATION_TTL = timedelta(hours=1)


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
    # What the same Stars buy without the promocode (credited if the code was used elsewhere first).
    regular_tokens: Decimal | None = None
    regular_bonus_tokens: Decimal | None = None
    # What the invoice charges, in its currency (Stars: price_stars; a card payment: roubles).
    currency: str = STARS
    price: Decimal | None = None


@dataclass(frozen=True)
class PaymentOutcome:
    payment: Payment
    credited: bool  # False when this call was a replay of an already credited payment
    promocode_not_applied: str | None = None  # the invoice's code, when another payment had used it


def _percent(amount: Decimal, percent: Decimal) -> Decimal:
    return (amount * percent / Decimal(100)).quantize(CENT)


class PaymentService:
    @staticmethod
    def packages() -> list[TopUpPackage]:
        return list(TopUpPackage.objects.filter(is_active=True).order_by("sort_order", "tokens"))

    @classmethod
    def quote(cls, *, user_id: int, package_id: int) -> TopUpQuote:
        return cls._quote(
            user_id=user_id,
            package_id=package_id,
            activation=PromoService.pending_topup_activation(user_id=user_id),
        )

    @staticmethod
    def _quote(
        *, user_id: int, package_id: int, activation: PromocodeActivation | None, currency: str = STARS
    ) -> TopUpQuote:
        package = TopUpPackage.objects.filter(pk=package_id, is_active=True).first()
        if package is None or (currency == RUB and not package.price_rub):
            raise PackageUnavailable()
        user = TgUser.objects.get(pk=user_id)
        promo = activation.promocode if activation else None
        discount = promo.value if promo and promo.kind == Promocode.Kind.TOPUP_DISCOUNT else ZERO
        promo_bonus = promo.value if promo and promo.kind == Promocode.Kind.TOPUP_BONUS else ZERO
        level_bonus = levels.progress(user=user).topup_bonus_percent
        bonus_percent = package.bonus_percent + promo_bonus + level_bonus
        price = package.price_stars
        regular_tokens = package.tokens
        if discount:
            price = max(1, math.ceil(package.price_stars * (Decimal(100) - min(discount, Decimal(99))) / 100))
            share = package.tokens * Decimal(price) / Decimal(package.price_stars)
            regular_tokens = max(CENT, share.quantize(CENT, rounding=ROUND_DOWN))
        charge = Decimal(price)
        if currency == RUB:  # the same discount on the rouble price, rounded up to the kopeck
            charge = max(CENT, (package.price_rub * (100 - min(discount, Decimal(99))) / 100).quantize(CENT, ROUND_UP))
            share = package.tokens * charge / package.price_rub
            regular_tokens = max(CENT, min(package.tokens, share).quantize(CENT, rounding=ROUND_DOWN))
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
            regular_tokens=regular_tokens,
            regular_bonus_tokens=_percent(regular_tokens, package.bonus_percent + level_bonus),
            currency=currency,
            price=charge,
        )

    @classmethod
    def create_invoice(
        cls, *, user_id: int, package_id: int, provider: str = Payment.Provider.TELEGRAM_STARS
    ) -> Payment:
        """A pending Payment with a unique invoice payload; the bot sends the invoice for it.

        If the user has a top-up promocode waiting, this invoice takes its reservation (the newest
        invoice wins) and the invoice that held it before is voided: see the module docstring."""
        if TgUser.objects.filter(pk=user_id, is_banned=True).exists():
            raise UserBanned()
        with transaction.atomic():
            waiting = PromoService.pending_topup_activation(user_id=user_id)
            activation = None
            if waiting is not None:
                # The lock serialises concurrent invoices of this user on the one reservation.
                activation = (
                    PromocodeActivation.objects.select_for_update()
                    .select_related("promocode")
                    .filter(pk=waiting.pk, consumed_at__isnull=True)
                    .first()
                )
            currency = RUB if provider == Payment.Provider.YOOKASSA else STARS
            quote = cls._quote(user_id=user_id, package_id=package_id, activation=activation, currency=currency)
            payment = Payment.objects.create(
                user_id=user_id,
                provider=provider,
                package_id=package_id,
                amount=quote.price,
                currency=currency,
                tokens=quote.tokens,
                bonus_tokens=quote.bonus_tokens,
                promocode=activation.promocode if activation else None,
                invoice_payload=f"topup:{uuid.uuid4().hex}",
                raw={
                    "quote": {
                        "bonus_percent": str(quote.bonus_percent),
                        "discount": str(quote.discount_percent),
                        "regular_tokens": str(quote.regular_tokens),
                        "regular_bonus_tokens": str(quote.regular_bonus_tokens),
                    }
                },
            )
            if activation is not None:
                replaced = activation.reserved_by_id
                PromocodeActivation.objects.filter(pk=activation.pk).update(reserved_by=payment)
                if replaced is not None:
                    Payment.objects.filter(pk=replaced, status=Payment.Status.PENDING).update(
                        status=Payment.Status.CANCELLED
                    )
        return payment

    @classmethod
    def validate_precheckout(
        cls, *, invoice_payload: str, telegram_id: int, total_amount: int, currency: str
    ) -> Payment:
        """Telegram's pre-checkout: must answer within 10 s, so only cheap reads here (and, when it
        refuses an invoice that holds a promocode, one UPDATE that frees the code)."""
        payment = (
            Payment.objects.select_related("user", "package", "promocode")
            .filter(invoice_payload=invoice_payload)
            .first()
        )
        if payment is None or payment.user.telegram_id != telegram_id:
            raise PaymentError("This invoice is not valid.")
        try:
            if payment.status in (Payment.Status.SUCCEEDED, Payment.Status.REFUNDED):
                raise PaymentError("This invoice has already been paid or cancelled.")
            if payment.promocode_id is not None:
                cls._check_reservation(payment)
            if payment.status != Payment.Status.PENDING:
                raise PaymentError("This invoice has already been paid or cancelled.")
            if payment.user.is_banned:
                raise UserBanned()
            if currency != payment.currency or Decimal(total_amount) != payment.amount:
                raise PaymentError("The amount of this invoice has changed; please open the top-up menu again.")
            if payment.package is not None and not payment.package.is_active:
                raise PackageUnavailable()
        except DomainError:
            # A refused invoice will not be paid (Telegram charges nothing): its code is free again.
            PromocodeActivation.objects.filter(reserved_by=payment).update(reserved_by=None)
            raise
        return payment

    @staticmethod
    def _check_reservation(payment: Payment) -> None:
        """The invoice carries a promocode: it must still hold the reservation, within its time."""
        if not PromocodeActivation.objects.filter(reserved_by=payment, consumed_at__isnull=True).exists():
            raise InvoiceReplaced()
        if payment.promocode.first_topup_only and has_paid(payment.user_id):
            raise PromoFirstTopupOnly()  # another top-up succeeded since this invoice was made
        if payment.created_at + RESERVATION_TTL <= timezone.now():
            Payment.objects.filter(pk=payment.pk, status=Payment.Status.PENDING).update(status=Payment.Status.CANCELLED)
            raise InvoiceExpired()

    @staticmethod
    def complete(
        *,
        invoice_payload: str,
        provider_charge_id: str,
        total_amount: int | Decimal,
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
            if payment.provider_charge_id and payment.provider_charge_id != provider_charge_id:
                raise PaymentError("This invoice was paid with another charge.")
            # A card payment knows its charge id (YooKassa's payment id) from its creation: credited is the status.
            if payment.status in (Payment.Status.SUCCEEDED, Payment.Status.REFUNDED):
                return PaymentOutcome(payment=payment, credited=False)
            if payment.status not in (Payment.Status.PENDING, Payment.Status.FAILED, Payment.Status.CANCELLED):
                raise PaymentError("This invoice cannot be paid.")
            if currency != payment.currency or Decimal(total_amount) != payment.amount:
                raise PaymentError("The paid amount does not match the invoice.")
            # A refunded payment was a top-up too: the next one is not the first (no second first-top-up bonus).
            is_first = not has_paid(payment.user_id)
            payment.status = Payment.Status.SUCCEEDED
            payment.provider_charge_id = provider_charge_id
            payment.paid_at = timezone.now()
            payment.raw = {**payment.raw, "success": raw or {}}
            not_applied = None
            if payment.promocode_id is not None and not _consume_promocode(payment):
                not_applied = _credit_without_promocode(payment)
            payment.save(
                update_fields=["status", "provider_charge_id", "paid_at", "raw", "tokens", "bonus_tokens", "promocode"]
            )
            BalanceService.deposit(
                user_id=payment.user_id,
                amount=payment.tokens,
                bonus_amount=payment.bonus_tokens,
                key=f"payment:{payment.provider}:{provider_charge_id}",
                payment=payment,
                promocode=payment.promocode,
                description=f"Top-up #{payment.pk}",
            )
            ReferralService.reward_for_topup(payment=payment, is_first_topup=is_first)
        return PaymentOutcome(payment=payment, credited=True, promocode_not_applied=not_applied)

    @staticmethod
    def mark_refunded(*, payment_id: int, by: str = "the provider", notify: bool = False) -> Payment:
        """Record a refund the provider made: take back what the payment credited and the referral
        reward it produced, once, as far as they are left (the shortfall is recorded). The one path of
        every refund: botapp.services.refunds.record_refund (raises RefundNotAllowed, a PaymentError,
        unless the payment succeeded)."""
        from botapp.services.refunds import SOURCE_PROVIDER, record_refund

        return record_refund(payment_id=payment_id, by=by, source=SOURCE_PROVIDER, notify=notify).payment


def _consume_promocode(payment: Payment) -> bool:
    """Consume the invoice's code for this successful payment, if no other payment consumed it.
    Called under the payment's row lock; the activation row is locked too."""
    activation = (
        PromocodeActivation.objects.select_for_update()
        .filter(promocode_id=payment.promocode_id, user_id=payment.user_id)
        .first()
    )
    if activation is None or activation.consumed_at is not None:
        return False
    other = activation.reserved_by_id
    PromocodeActivation.objects.filter(pk=activation.pk, consumed_at__isnull=True).update(
        consumed_at=payment.paid_at, consumed_by=payment, reserved_by=None
    )
    if other is not None and other != payment.pk:  # a newer invoice held it: it cannot be paid now
        Payment.objects.filter(pk=other, status=Payment.Status.PENDING).update(status=Payment.Status.CANCELLED)
    return True


def _credit_without_promocode(payment: Payment) -> str:
    """Another payment used the code first: this one (already paid) gets the regular price's worth."""
    code = payment.promocode.code if payment.promocode else ""
    quote = payment.raw.get("quote", {})
    promised = {"tokens": str(payment.tokens), "bonus_tokens": str(payment.bonus_tokens)}
    if "regular_tokens" in quote:
        tokens = Decimal(quote["regular_tokens"])
        bonus = Decimal(quote["regular_bonus_tokens"])
    else:  # an invoice made before reservations existed: the list price's share, no bonus
        list_price = payment.package.price_stars if payment.package else None
        share = payment.tokens * payment.amount / Decimal(list_price) if list_price else payment.tokens
        tokens = max(CENT, min(payment.tokens, share).quantize(CENT, rounding=ROUND_DOWN))
        bonus = ZERO
    payment.tokens, payment.bonus_tokens, payment.promocode = tokens, bonus, None
    payment.raw = {
        **payment.raw,
        "promocode_not_applied": {"code": code, "reason": "used by another payment", "invoice": promised},
    }
    return code
