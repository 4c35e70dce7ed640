"""Broadcasts, read side: who a broadcast reaches, how far it got, what a paid one costs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from botapp.models import Broadcast, BroadcastRecipient, GenRequest, Payment, TgUser

PAID_BROADCAST_STARS = Decimal("0.1")  # Telegram's price of one message sent with allow_paid_broadcast


def audience(*, broadcast: Broadcast, now: datetime | None = None) -> QuerySet[TgUser]:
    """The users the broadcast is for: every segment set on it, combined (AND). Never a user who
    blocked the bot or is banned."""
    users = TgUser.objects.filter(is_banned=False, bot_blocked=False)
    if broadcast.active_within_days is not None:
        since = (now or timezone.now()) - timedelta(days=broadcast.active_within_days)
        users = users.filter(last_seen_at__gte=since)
    if broadcast.paid:
        paid = Exists(
            Payment.objects.filter(user=OuterRef("pk"), status__in=(Payment.Status.SUCCEEDED, Payment.Status.REFUNDED))
        )
        users = users.filter(paid if broadcast.paid == Broadcast.Paid.PAID else ~paid)
    if broadcast.has_balance:
        users = users.filter(Q(balance__balance__gt=0) | Q(balance__bonus_balance__gt=0))
    if broadcast.language:
        users = users.filter(settings__language=broadcast.language)
    if broadcast.level_min is not None:
        users = users.filter(level__gte=broadcast.level_min)
    if broadcast.level_max is not None:
        users = users.filter(level__lte=broadcast.level_max)
    if broadcast.never_generated:
        users = users.filter(~Exists(GenRequest.objects.filter(user=OuterRef("pk"))))
    if broadcast.joined_after is not None:
        users = users.filter(created_at__gte=broadcast.joined_after)
    if broadcast.joined_before is not None:
        users = users.filter(created_at__lt=broadcast.joined_before)
    if broadcast.referred_only:
        users = users.filter(referred_by__isnull=False)
    return users


def audience_count(*, broadcast: Broadcast) -> int:
    return audience(broadcast=broadcast).count()


def paid_cost_stars(*, recipients: int) -> Decimal:
    """What a paid broadcast to `recipients` users costs in Stars (0.1 Star per message)."""
    return (PAID_BROADCAST_STARS * recipients).quantize(Decimal("0.1"))


@dataclass(frozen=True)
class Progress:
    broadcast_id: int
    status: str
    total: int  # recipients created so far (all of them once `prepared`)
    prepared: bool
    pending: int
    sending: int
    delivered: int
    blocked: int
    failed: int
    unknown: int

    @property
    def finished(self) -> bool:
        return self.status in (Broadcast.Status.DONE, Broadcast.Status.CANCELLED)

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.broadcast_id,
            "status": self.status,
            "total": self.total,
            "prepared": self.prepared,
            "pending": self.pending,
            "sending": self.sending,
            "delivered": self.delivered,
            "blocked": self.blocked,
            "failed": self.failed,
            "unknown": self.unknown,
            "finished": self.finished,
        }


def recipient_counts(*, broadcast_id: int) -> dict[str, int]:
    """Recipients per status (one aggregate query on the (broadcast, status) index)."""
    rows = (
        BroadcastRecipient.objects.filter(broadcast_id=broadcast_id)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
    )
    counts = {status: 0 for status in BroadcastRecipient.Status.values}
    counts.update(dict(rows))
    return counts


def progress(*, broadcast_id: int) -> Progress | None:
    row = Broadcast.objects.filter(pk=broadcast_id).values_list("status", "prepared").first()
    if row is None:
        return None
    status, prepared = row
    counts = recipient_counts(broadcast_id=broadcast_id)
    S = BroadcastRecipient.Status
    return Progress(
        broadcast_id=broadcast_id,
        status=status,
        total=sum(counts.values()),
        prepared=prepared,
        pending=counts[S.PENDING],
        sending=counts[S.SENDING],
        delivered=counts[S.SENT],
        blocked=counts[S.BLOCKED],
        failed=counts[S.FAILED],
        unknown=counts[S.UNKNOWN],
    )
