"""Referral program: attach a new user to the friend who invited them; reward the friend on top-ups."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import transaction

from botapp.models import Payment, TgUser
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
        """The referrer's reward for a referral's top-up: a fixed bonus on the first one plus a share."""
        reward = payment.tokens * settings.REFERRAL_PERCENT / Decimal(100)
        if is_first_topup:
            reward += settings.REFERRAL_FIRST_TOPUP_BONUS
        return reward.quantize(CENT)

    @classmethod
    def reward_for_topup(cls, *, payment: Payment, is_first_topup: bool) -> LedgerResult | None:
        """Credit the referrer (bonus bucket) for `payment`, once per payment. The call that wrote the
        reward tells the referrer on commit (botapp.services.referral_notices, keyed by the ledger row)."""
        referrer_id = TgUser.objects.filter(pk=payment.user_id).values_list("referred_by_id", flat=True).first()
        if referrer_id is None:
            return None
        reward = cls.rewards_for(payment=payment, is_first_topup=is_first_topup)
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
