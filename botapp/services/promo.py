"""Promocodes: redeem a code (case-insensitive), once per user, within its window and its max uses.

The use counter is claimed with a conditional UPDATE (`uses_count < max_uses`), so concurrent
redemptions can never exceed the limit; the activation row's unique (promocode, user) constraint
makes "once per user" hold under concurrency too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from botapp.models import Payment, Promocode, PromocodeActivation, TgUser, Transaction
from botapp.services.balance import BalanceService
from botapp.services.exceptions import (
    PromoAlreadyUsed,
    PromoExhausted,
    PromoExpired,
    PromoFirstTopupOnly,
    PromoInactive,
    PromoNotFound,
    PromoNotYetValid,
    UserBanned,
)

CODE_RE = re.compile(r"^[A-Z0-9_-]{2,64}$")


@dataclass(frozen=True)
class RedeemResult:
    code: str
    kind: str
    value: Decimal
    bonus_granted: Decimal | None  # bonus-token codes: credited now
    awaiting_topup: bool  # top-up codes: applied to the next top-up


def normalize_code(raw: str) -> str:
    return (raw or "").strip().upper()


def has_paid(user_id: int) -> bool:
    paid = (Payment.Status.SUCCEEDED, Payment.Status.REFUNDED)
    return Payment.objects.filter(user_id=user_id, status__in=paid).exists()


def _check_window(promo: Promocode) -> None:
    now = timezone.now()
    if not promo.is_active:
        raise PromoInactive()
    if promo.valid_from and now < promo.valid_from:
        raise PromoNotYetValid()
    if promo.valid_until and now > promo.valid_until:
        raise PromoExpired()


class PromoService:
    @staticmethod
    def redeem(*, user_id: int, code: str) -> RedeemResult:
        code = normalize_code(code)
        if not CODE_RE.match(code):
            raise PromoNotFound()
        promo = Promocode.objects.filter(code__iexact=code).first()
        if promo is None:
            raise PromoNotFound()
        user = TgUser.objects.filter(pk=user_id).only("is_banned").first()
        if user is None or user.is_banned:
            raise UserBanned()
        _check_window(promo)
        if promo.first_topup_only and has_paid(user_id):
            raise PromoFirstTopupOnly()
        try:
            with transaction.atomic():
                activation = (
                    PromocodeActivation.objects.select_for_update()
                    .filter(promocode=promo, user_id=user_id)
                    .first()
                )
                if activation and activation.uses >= promo.per_user_limit:
                    raise PromoAlreadyUsed()
                claimed = Promocode.objects.filter(pk=promo.pk, is_active=True).filter(
                    Q(max_uses__isnull=True) | Q(uses_count__lt=F("max_uses"))
                ).update(uses_count=F("uses_count") + 1)
                if not claimed:
                    raise PromoExhausted()
                if activation:
                    activation.uses = F("uses") + 1
                    activation.consumed_at = None
                    activation.consumed_by = None
                    activation.save(update_fields=["uses", "consumed_at", "consumed_by"])
                    activation.refresh_from_db(fields=["uses"])
                else:
                    activation = PromocodeActivation.objects.create(promocode=promo, user_id=user_id)
                bonus = None
                if promo.kind == Promocode.Kind.BONUS_TOKENS:
                    BalanceService.bonus(
                        user_id=user_id,
                        amount=promo.value,
                        key=f"promo:{promo.pk}:{user_id}:{activation.uses}",
                        kind=Transaction.Kind.PROMO,
                        promocode=promo,
                        description=f"Promocode {promo.code}",
                    )
                    bonus = promo.value
                    activation.consumed_at = timezone.now()
                    activation.save(update_fields=["consumed_at"])
        except IntegrityError:
            # A concurrent first activation by the same user won the unique constraint.
            raise PromoAlreadyUsed() from None
        return RedeemResult(
            code=promo.code,
            kind=promo.kind,
            value=promo.value,
            bonus_granted=bonus,
            awaiting_topup=promo.kind != Promocode.Kind.BONUS_TOKENS,
        )

    @staticmethod
    def pending_topup_activation(*, user_id: int) -> PromocodeActivation | None:
        """The top-up code the user redeemed and has not used yet (the latest), if still valid."""
        activations = (
            PromocodeActivation.objects.filter(
                user_id=user_id,
                consumed_at__isnull=True,
                promocode__kind__in=(Promocode.Kind.TOPUP_DISCOUNT, Promocode.Kind.TOPUP_BONUS),
                promocode__is_active=True,
            )
            .select_related("promocode")
            .order_by("-created_at")
        )
        for activation in activations:
            promo = activation.promocode
            try:
                _check_window(promo)
            except (PromoInactive, PromoExpired, PromoNotYetValid):
                continue
            if promo.first_topup_only and has_paid(user_id):
                continue
            return activation
        return None
