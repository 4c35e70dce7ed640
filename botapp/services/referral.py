"""Referral program: attach a new user to the friend who invited them; reward the friend on top-ups.

The reward (bonus tokens, to the referrer) is REFERRAL_PERCENT % of each top-up of the referral, plus on
their first top-up REFERRAL_FIRST_TOPUP_BONUS, which is paid only for a purchase of at least
REFERRAL_FIRST_TOPUP_MIN_TOKENS tokens and never more than REFERRAL_FIRST_TOPUP_MAX_SHARE % of it. A
referrer earns at most REFERRAL_DAILY_CAP tokens of rewards in 24 hours. So a farm of sock puppets
buying the cheapest package earns the percentage only (5 % more tokens per Star, not double, as a flat
10-token bonus on a 10-token package gave), and a large farm is capped.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from botapp.models import Payment, TgUser, Transaction, UserBalance
from botapp.selectors import users as user_selectors
from botapp.services.balance import CENT, BalanceService, LedgerResult
from botapp.services.exceptions import ReferralNotAllowed


class ReferralService:
    @staticmethod
    def attach(*, user_id: int, code: str, is_new_user: bool) -> TgUser:
        """Make `user_id` a referral of the owner of `code`. Only a user who has just registered,
        never oneself, never twice, never in a circle."""
        code = (code or "").strip().upper()
        if not is_new_user or not code:
            raise ReferralNotAllowed()
        with transaction.atomic():
            user = TgUser.objects.select_for_update().get(pk=user_id)
            referrer = TgUser.objects.filter(referral_code=code).first()
            if (
                referrer is None
                or referrer.pk == user.pk
                or user.referred_by_id is not None
                or referrer.referred_by_id == user.pk
            ):
                raise ReferralNotAllowed()
            user.referred_by = referrer
            user.save(update_fields=["referred_by"])
        return referrer

    @staticmethod
    def rewards_for(*, payment: Payment, is_first_topup: bool) -> Decimal:
        """The referrer's reward for a referral's top-up: a share of it, and on the first one of at least
        REFERRAL_FIRST_TOPUP_MIN_TOKENS a fixed bonus, capped at a share of the purchase (before the
        daily cap, which `reward_for_topup` applies)."""
        tokens = payment.tokens
        reward = tokens * settings.REFERRAL_PERCENT / Decimal(100)
        if is_first_topup and tokens >= settings.REFERRAL_FIRST_TOPUP_MIN_TOKENS:
            reward += min(settings.REFERRAL_FIRST_TOPUP_BONUS, tokens * settings.REFERRAL_FIRST_TOPUP_MAX_SHARE / 100)
        return reward.quantize(CENT)

    @staticmethod
    def _within_daily_cap(*, referrer_id: int, reward: Decimal) -> Decimal:
        """What is left of the referrer's REFERRAL_DAILY_CAP for the last 24 hours (at most `reward`),
        under the referrer's balance row lock (the order PaymentService.complete locks in), so that two
        top-ups at once cannot both fill it."""
        cap = settings.REFERRAL_DAILY_CAP
        if cap <= 0:
            return reward
        UserBalance.objects.select_for_update().filter(user_id=referrer_id).values_list("pk", flat=True).first()
        since = timezone.now() - timedelta(hours=24)
        earned = Transaction.objects.filter(
            user_id=referrer_id, kind=Transaction.Kind.REFERRAL, amount__gt=0, created_at__gte=since
        ).aggregate(total=Sum("amount"))["total"] or Decimal(0)
        return max(Decimal(0), min(reward, cap - Decimal(earned).quantize(CENT)))

    @classmethod
    def reward_for_topup(cls, *, payment: Payment, is_first_topup: bool) -> LedgerResult | None:
        """Credit the referrer (bonus bucket) for `payment`, once per payment. The call that wrote the
        reward tells the referrer on commit (botapp.services.referral_notices, keyed by the ledger row)."""
        referrer_id = TgUser.objects.filter(pk=payment.user_id).values_list("referred_by_id", flat=True).first()
        if referrer_id is None:
            return None
        reward = cls.rewards_for(payment=payment, is_first_topup=is_first_topup)
        if reward > 0:
            reward = cls._within_daily_cap(referrer_id=referrer_id, reward=reward)
        if reward <= 0:
            return None
        result = BalanceService.referral_reward(
            user_id=referrer_id,
            amount=reward,
            key=f"referral:payment:{payment.pk}",
            payment=payment,
            description=f"Referral reward for payment #{payment.pk}",
        )
        if not result.replayed and result.transaction_ids:
            row_id = result.transaction_ids[0]
            transaction.on_commit(lambda: _notify_referrer(row_id))
        return result

    @staticmethod
    def stats(*, user_id: int) -> dict[str, object]:
        """Friends invited, how many of them paid, tokens earned (net of rewards taken back on refunds)."""
        return user_selectors.referral_figures(user_id=user_id)


def _notify_referrer(transaction_id: int) -> None:
    from botapp.services.referral_notices import enqueue_referral_notice

    enqueue_referral_notice(transaction_id=transaction_id)
