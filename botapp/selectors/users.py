"""Reads of one user on the hot path, each one prepared SELECT (botapp/selectors/prepared.py):
the row that every update reads (the profile, the settings and the balance: the user middleware's),
and the figures of the profile and invite screens (bench/updates.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Count, OuterRef, Q, Subquery, Sum

from botapp.models import ZERO, AIModel, GenRequest, Payment, TgUser, Transaction, UserBalance
from botapp.selectors.prepared import Prepared

USER_COLUMNS = (
    "id",
    "telegram_id",
    "username",
    "first_name",
    "last_name",
    "language_code",
    "is_premium",
    "is_banned",
    "bot_blocked",
    "last_seen_at",
    "referral_code",
    "xp",
    "level",
    "created_at",
    "settings__language",
    "settings__default_image_model_id",
    "settings__default_video_model_id",
    "settings__aspect_ratio",
    "settings__video_duration",
    "settings__video_resolution",
    "settings__send_as_file",
    "settings__notifications",
    "balance__balance",
    "balance__bonus_balance",
)

_USER_ROW = Prepared(
    lambda telegram_id: TgUser.objects.filter(telegram_id=telegram_id).order_by().values_list(*USER_COLUMNS)[:1],
    telegram_id=int,
)


def user_row(*, telegram_id: int) -> dict[str, Any] | None:
    """The user's row by Telegram id (columns: USER_COLUMNS; a missing settings or balance row gives
    None in its columns), or None for a user not registered yet."""
    rows = _USER_ROW.rows(telegram_id=telegram_id)
    return dict(zip(USER_COLUMNS, rows[0], strict=True)) if rows else None


# --- the profile's and the invite screen's figures (a menu click each) -------------------------------
_REQUEST_COUNTS = Prepared(
    lambda user_id: GenRequest.objects.filter(user_id=user_id)
    .order_by()
    .values("user_id")
    .annotate(
        total=Count("id"),
        succeeded=Count("id", filter=Q(status=GenRequest.Status.SUCCEEDED)),
        failed=Count("id", filter=Q(status=GenRequest.Status.FAILED)),
        in_flight=Count("id", filter=Q(status__in=GenRequest.IN_FLIGHT)),
        images=Count("id", filter=Q(kind=AIModel.Kind.IMAGE, status=GenRequest.Status.SUCCEEDED)),
        videos=Count("id", filter=Q(kind=AIModel.Kind.VIDEO, status=GenRequest.Status.SUCCEEDED)),
    )
    .values_list("total", "succeeded", "failed", "in_flight", "images", "videos"),
    user_id=int,
)
REQUEST_COUNTS = ("total", "succeeded", "failed", "in_flight", "images", "videos")

_MONEY = Prepared(
    lambda user_id: UserBalance.objects.filter(user_id=user_id)
    .order_by()
    .annotate(
        referrals=Subquery(
            TgUser.objects.filter(referred_by_id=OuterRef("user_id"))
            .order_by()
            .values("referred_by_id")
            .annotate(n=Count("id"))
            .values("n")[:1]
        )
    )
    .values_list("total_spent", "total_refunded", "referrals")[:1],
    user_id=int,
)

_INVITED = Prepared(
    lambda user_id: TgUser.objects.filter(referred_by_id=user_id)
    .order_by()
    .values("referred_by_id")
    .annotate(  # distinct: the join gives a friend one row per payment
        invited=Count("id", distinct=True),
        paid=Count("id", distinct=True, filter=Q(payments__status=Payment.Status.SUCCEEDED)),
    )
    .values_list("invited", "paid"),
    user_id=int,
)

# Referral rewards, and the rewards taken back because the referral's payment was refunded
# (botapp.services.refunds: a payment refund row on the referrer's ledger for someone else's payment).
_REWARDS = Prepared(
    lambda user_id: Transaction.objects.filter(user_id=user_id)
    .filter(
        Q(kind=Transaction.Kind.REFERRAL)
        | (Q(kind=Transaction.Kind.PAYMENT_REFUND, payment__isnull=False) & ~Q(payment__user_id=user_id))
    )
    .order_by()
    .values("user_id")
    .annotate(earned=Sum("amount"))
    .values_list("earned"),
    user_id=int,
)


def request_counts(*, user_id: int) -> dict[str, int]:
    """The user's requests: in all, succeeded, failed, in flight, images and videos made (one SELECT)."""
    rows = _REQUEST_COUNTS.rows(user_id=user_id)
    return dict(zip(REQUEST_COUNTS, rows[0] if rows else (0,) * len(REQUEST_COUNTS), strict=True))


def money_and_referrals(*, user_id: int) -> tuple[Decimal, Decimal, int]:
    """(total spent, total refunded, friends invited) of the user (one SELECT)."""
    rows = _MONEY.rows(user_id=user_id)
    if not rows:
        return ZERO, ZERO, 0
    spent, refunded, invited = rows[0]
    return spent, refunded, invited or 0


def referral_figures(*, user_id: int) -> dict[str, object]:
    """The invite screen: friends invited, how many of them paid, tokens earned (two SELECTs)."""
    invited = _INVITED.rows(user_id=user_id)
    earned = _REWARDS.rows(user_id=user_id)
    count, paid = invited[0] if invited else (0, 0)
    return {"invited": count, "paid": paid, "earned": (earned[0][0] if earned else None) or Decimal("0")}
