"""The dashboard's daily rollups: the per-day rows of the ledger, the generation requests and the
users' activity, stored so that the admin dashboard never scans the big tables for past days.

`roll_up()` runs from beat every DASHBOARD_ROLLUP_SECONDS (`botapp.tasks.rollup_dashboard`):

- it rebuilds the last `RECENT_DAYS` days before today (requests made late in a day finish, fail or
  are refunded the day after; a rebuild replaces a day's rows in one transaction, so it is idempotent);
- it builds up to `BACKFILL_DAYS` older days that have no rollup yet (newest first), so a database
  that predates the rollups fills in by itself over a few runs;
- it records today's active users (`DailyActiveUser`): `TgUser.last_seen_at` holds only the latest
  interaction, so sampling it as the day goes keeps the history that the activity figures need.

Rows come from the same functions the dashboard uses for the days it computes live
(`botapp.selectors.daily.*_live`), so a built day and a live day give the same numbers. The provider
cost of a day's generations (`DailyGenerations.cost_usd`) is priced when the day is built, from the
models' cost by resolution at that moment: a change of `AIModel.costs_usd` (or of the flat costs)
shows on the days built after it, and on older days only when they are rebuilt. A day is
never rebuilt after `RECENT_DAYS` unless asked (`manage.py rollup_dashboard --days N --rebuild`):
an operator's refund of a months-old request, for instance, shows in the ledger of the day it was
made (the ledger is by day written) but not in that old day's refund count of requests.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from botapp.models import DailyActiveUser, DailyGenerations, DailyLedger, DashboardDay, TgUser
from botapp.selectors import daily
from botapp.selectors.daily import Period

RECENT_DAYS = 3
BACKFILL_DAYS = 30
BATCH = 5000


def record_activity(*, period: Period) -> int:
    """Store the period's (day, user) activity pairs that are not stored yet; returns how many were seen."""
    pairs = daily.activity_pairs_live(period=period)
    seen = 0
    batch: list[DailyActiveUser] = []
    for day, user_id in pairs.iterator(chunk_size=BATCH):
        batch.append(DailyActiveUser(day=day, user_id=user_id))
        if len(batch) >= BATCH:
            DailyActiveUser.objects.bulk_create(batch, ignore_conflicts=True)
            seen += len(batch)
            batch = []
    if batch:
        DailyActiveUser.objects.bulk_create(batch, ignore_conflicts=True)
        seen += len(batch)
    return seen


def build_day(day: date) -> None:
    """(Re)build one day's rollups in one transaction."""
    period = Period(start=day, end=day)
    with transaction.atomic():
        ledger = daily.ledger_rows_live(period=period)
        generations = daily.generation_rows_live(period=period)
        DailyLedger.objects.filter(day=day).delete()
        DailyLedger.objects.bulk_create(
            DailyLedger(day=r.day, kind=r.kind, bucket=r.bucket, ai_model_id=r.ai_model_id, rows=r.rows,
                        amount=r.amount)
            for r in ledger
        )  # fmt: skip
        DailyGenerations.objects.filter(day=day).delete()
        DailyGenerations.objects.bulk_create(
            DailyGenerations(day=r.day, ai_model_id=r.ai_model_id, status=r.status, error_code=r.error_code,
                             requests=r.requests, refunded=r.refunded, units=r.units, cost_usd=r.cost_usd,
                             durations={str(k): v for k, v in r.durations.items()})
            for r in generations
        )  # fmt: skip
        record_activity(period=period)
        active = DailyActiveUser.objects.filter(day=day).count()
        DashboardDay.objects.update_or_create(day=day, defaults={"built_at": timezone.now(), "active_users": active})


def first_day() -> date | None:
    """The first day with any data (the first user's sign-up)."""
    first = TgUser.objects.aggregate(first=Min("created_at"))["first"]
    return timezone.localdate(first) if first else None


def roll_up(*, today: date | None = None, recent: int = RECENT_DAYS, backfill: int = BACKFILL_DAYS) -> list[date]:
    """The beat task's work: rebuild the recent days, fill in missing older ones, sample today."""
    today = today or timezone.localdate()
    start = first_day()
    built: list[date] = []
    if start is not None:
        recent_days = [today - timedelta(days=i) for i in range(1, recent + 1) if today - timedelta(days=i) >= start]
        done = set(DashboardDay.objects.filter(day__gte=start, day__lt=today).values_list("day", flat=True))
        older = []
        day = today - timedelta(days=recent + 1)
        while day >= start and len(older) < backfill:
            if day not in done:
                older.append(day)
            day -= timedelta(days=1)
        for day in [*recent_days, *older]:
            build_day(day)
            built.append(day)
        record_activity(period=Period(start=today, end=today))
    return built


def rebuild(*, days: int, today: date | None = None, only_missing: bool = False) -> list[date]:
    """Build the `days` days before today (all of them, or only those without rollups)."""
    today = today or timezone.localdate()
    wanted = [today - timedelta(days=i) for i in range(days, 0, -1)]
    if only_missing:
        done = set(DashboardDay.objects.filter(day__in=wanted).values_list("day", flat=True))
        wanted = [day for day in wanted if day not in done]
    for day in wanted:
        build_day(day)
    return wanted
