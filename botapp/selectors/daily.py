"""Per-day rows behind the dashboard, from the daily rollups where they are built and live otherwise.

The big tables (the ledger, generation requests, the users' activity) are aggregated per day. A day
listed in `DashboardDay` has its rows stored (`DailyLedger`, `DailyGenerations`, `DailyActiveUser`,
written by `botapp.services.rollups` from a beat task); every other day (always today) is computed
from the source tables by the same `*_live` functions that build the rollups, so both paths give the
same rows. The dashboard's selectors (`botapp.selectors.dashboard`) only ever see these rows.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import connections
from django.db.models import Count, F, Func, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import TruncDate
from django.utils import timezone

from botapp.models import (
    AIModel,
    DailyActiveUser,
    DailyGenerations,
    DailyLedger,
    DashboardDay,
    GenRequest,
    Payment,
    TgUser,
    Transaction,
)

ZERO = Decimal("0")
COST_PLACES = Decimal("0.000001")  # DailyGenerations.cost_usd's: a live day gives what its rollup stores
DEFAULT_VIDEO_SECONDS = 8
# Upper bounds (seconds) of the time-to-result histogram; p50/p95 are read as the bound of the bucket
# holding the nearest rank. Beyond the last bound: whole hours.
DURATION_BOUNDS: tuple[int, ...] = (
    *range(1, 11), 12, 14, 16, 18, 20, 25, 30, 35, 40, 45, 50, 55, 60, 70, 80, 90, 100, 110, 120, 150, 180,
    210, 240, 270, 300, 360, 420, 480, 540, 600, 720, 900, 1200, 1500, 1800, 2700, 3600,
)  # fmt: skip


@dataclass(frozen=True)
class Period:
    """Whole days `start`..`end` (both included) in the current time zone."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")

    @property
    def since(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.start, time.min))

    @property
    def until(self) -> datetime:
        """The first moment after the period (exclusive bound)."""
        return timezone.make_aware(datetime.combine(self.end + timedelta(days=1), time.min))

    @property
    def length(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.length)]


def within(period: Period, name: str) -> Q:
    return Q(**{f"{name}__gte": period.since, f"{name}__lt": period.until})


class SecondsBetween(Func):
    """Whole seconds from one datetime column to another, rounded up (NULL if either is NULL)."""

    output_field = IntegerField()

    def __init__(self, start: str, end: str) -> None:
        super().__init__(F(end), F(start))

    def as_sql(self, compiler, connection, **extra):  # PostgreSQL: exact interval arithmetic
        template = "CAST(CEIL(ROUND(EXTRACT(EPOCH FROM (%(expressions)s)), 3)) AS integer)"
        return super().as_sql(compiler, connection, template=template, arg_joiner=" - ", **extra)

    def as_sqlite(self, compiler, connection, **extra):  # julianday: native, ~20 µs precise, rounded to ms
        template = "CAST(CEILING(ROUND((julianday(%(expressions)s)) * 86400.0, 3)) AS integer)"
        return super().as_sql(compiler, connection, template=template, arg_joiner=") - julianday(", **extra)


def duration_bound(seconds: float) -> int:
    """The histogram bucket (its upper bound, in seconds) of a time to result."""
    at = bisect.bisect_left(DURATION_BOUNDS, seconds)
    if at < len(DURATION_BOUNDS):
        return DURATION_BOUNDS[at]
    return math.ceil(seconds / 3600) * 3600


def percentile(histogram: dict[int, int], fraction: float) -> float | None:
    """Nearest-rank percentile of a {bound: count} histogram: the bound of the bucket holding it."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = max(math.ceil(fraction * total), 1)
    seen = 0
    for bound in sorted(histogram):
        seen += histogram[bound]
        if seen >= rank:
            return float(bound)
    return float(max(histogram))  # not reached


# --- which days are rolled up ---------------------------------------------------------------------------
MAX_LIVE_SPANS = 3  # more gaps than this in the rollups: one live span from the first gap to the end


@dataclass(frozen=True)
class Split:
    rolled: tuple[date, ...]  # the days read from the rollups
    live: tuple[Period, ...]  # runs of days computed from the source tables (always today's)


def split(period: Period) -> Split:
    """The period's built days (rollups) and the runs of days without rollups (live): typically the
    days before the first data (no rows, cheap) and today."""
    built = set(DashboardDay.objects.filter(day__gte=period.start, day__lte=period.end).values_list("day", flat=True))
    spans: list[Period] = []
    for day in period.days:
        if day in built:
            continue
        if spans and spans[-1].end == day - timedelta(days=1):
            spans[-1] = Period(start=spans[-1].start, end=day)
        else:
            spans.append(Period(start=day, end=day))
    if len(spans) > MAX_LIVE_SPANS:
        spans = [*spans[: MAX_LIVE_SPANS - 1], Period(start=spans[MAX_LIVE_SPANS - 1].start, end=period.end)]
    live_days = {day for span in spans for day in span.days}
    return Split(rolled=tuple(day for day in period.days if day not in live_days), live=tuple(spans))


# --- the ledger -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LedgerRow:
    day: date
    kind: str
    bucket: str
    ai_model_id: int | None  # the model of the generation the row belongs to, if any
    rows: int
    amount: Decimal


def ledger_rows_live(*, period: Period) -> list[LedgerRow]:
    # The request's model by primary key, row by row: cheaper than joining the whole requests table.
    model = Subquery(GenRequest.objects.filter(pk=OuterRef("gen_request_id")).values("ai_model_id")[:1])
    rows = (
        Transaction.objects.filter(within(period, "created_at"))
        .order_by()  # the model's default ordering would split the groups
        .annotate(day=TruncDate("created_at"), model=model)
        .values("day", "kind", "bucket", "model")
        .annotate(n=Count("id"), total=Sum("amount"))
    )
    return [
        LedgerRow(day=r["day"], kind=r["kind"], bucket=r["bucket"], ai_model_id=r["model"], rows=r["n"],
                  amount=r["total"] or ZERO)
        for r in rows
    ]  # fmt: skip


def ledger_rows(*, period: Period) -> list[LedgerRow]:
    parts = split(period)
    stored = DailyLedger.objects.filter(day__in=parts.rolled).values_list(
        "day", "kind", "bucket", "ai_model_id", "rows", "amount"
    )
    rows = [LedgerRow(*values) for values in stored]
    for span in parts.live:
        rows += ledger_rows_live(period=span)
    return rows


# --- generation requests --------------------------------------------------------------------------------
@dataclass(frozen=True)
class GenerationRow:
    day: date  # the day the request was made
    ai_model_id: int | None
    status: str
    error_code: str
    requests: int
    refunded: int
    units: int  # succeeded: images, or seconds of video, made
    durations: dict[int, int]  # succeeded: time-to-result histogram {bound: count}
    cost_usd: Decimal = ZERO  # succeeded: Google's cost of what they made (see `cost_of`)


def _as_int(value: object, default: int) -> int:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default


def default_seconds(model: AIModel | None) -> int:
    if model is None:
        return DEFAULT_VIDEO_SECONDS
    seconds = _as_int(model.default_params.get("duration_seconds"), 0)
    return seconds or (max(model.durations) if model.durations else DEFAULT_VIDEO_SECONDS)


def units_of(model: AIModel | None, *, images: object, seconds: object) -> int:
    """What one succeeded request made: seconds of video for a video model, else images (default 1)."""
    if model is not None and model.kind == AIModel.Kind.VIDEO:
        return _as_int(seconds, default_seconds(model))
    return _as_int(images, 1)


def cost_of(model: AIModel | None, *, params: dict, units: int) -> Decimal:
    """Google's cost, in USD, of `units` units made by one request with these parameters: the model's
    `unit_cost_usd(params)` (per image, or per second of video, at the request's resolution; the flat
    cost when the resolution has none) times the units. A request without a model row costs nothing."""
    return model.unit_cost_usd(params) * units if model is not None else ZERO


def generation_rows_live(*, period: Period) -> list[GenerationRow]:
    requests = GenRequest.objects.filter(within(period, "created_at")).order_by()
    counts = (
        requests.annotate(day=TruncDate("created_at"))
        .values("day", "ai_model_id", "status", "error_code")
        .annotate(n=Count("id"), refunded=Count("id", filter=Q(refunded_at__isnull=False)))
    )
    # The succeeded requests grouped by the parameters that make their units and cost (the resolution)
    # and by whole seconds to result: units, cost, durations.
    models = AIModel.objects.in_bulk()
    units: dict[tuple, int] = defaultdict(int)
    cost: dict[tuple, Decimal] = defaultdict(lambda: ZERO)
    durations: dict[tuple, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    details = (
        requests.filter(status=GenRequest.Status.SUCCEEDED)
        .annotate(
            day=TruncDate("created_at"),
            images=KeyTextTransform("number_of_images", "params"),
            seconds=KeyTextTransform("duration_seconds", "params"),
            resolution=KeyTextTransform("resolution", "params"),
            took=SecondsBetween("created_at", "finished_at"),
        )
        .values("day", "ai_model_id", "error_code", "images", "seconds", "resolution", "took")
        .annotate(n=Count("id"))
    )
    for r in details:
        key = (r["day"], r["ai_model_id"], r["error_code"])
        model = models.get(r["ai_model_id"])
        made = r["n"] * units_of(model, images=r["images"], seconds=r["seconds"])
        units[key] += made
        params = {"resolution": r["resolution"]} if r["resolution"] is not None else {}
        cost[key] += cost_of(model, params=params, units=made)
        if r["took"] is not None:
            durations[key][duration_bound(max(int(r["took"]), 0))] += r["n"]
    rows = []
    for r in counts:
        key = (r["day"], r["ai_model_id"], r["error_code"])
        succeeded = r["status"] == GenRequest.Status.SUCCEEDED
        spent = cost[key].quantize(COST_PLACES) if succeeded else ZERO
        rows.append(
            GenerationRow(
                day=r["day"], ai_model_id=r["ai_model_id"], status=r["status"], error_code=r["error_code"],
                requests=r["n"], refunded=r["refunded"], units=units[key] if succeeded else 0,
                durations=dict(durations[key]) if succeeded else {}, cost_usd=spent,
            )
        )  # fmt: skip
    return rows


def generation_rows(*, period: Period) -> list[GenerationRow]:
    parts = split(period)
    rows = []
    if parts.rolled:
        rows += [
            GenerationRow(day=r.day, ai_model_id=r.ai_model_id, status=r.status, error_code=r.error_code,
                          requests=r.requests, refunded=r.refunded, units=r.units,
                          durations={int(k): v for k, v in r.durations.items()}, cost_usd=r.cost_usd)
            for r in DailyGenerations.objects.filter(day__in=parts.rolled)
        ]  # fmt: skip
    for span in parts.live:
        rows += generation_rows_live(period=span)
    return rows


# --- the users' activity --------------------------------------------------------------------------------
def _as_day(value: date | datetime | str) -> date:
    """A day from a raw cursor (SQLite gives 'YYYY-MM-DD' text, PostgreSQL a date)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def fetch(qs: QuerySet, template: str, params: Iterable[object] = ()) -> list[tuple]:
    """Run `template` with `{inner}` replaced by `qs`'s SQL (for aggregates over a UNION, which the ORM
    cannot group). `params` are the template's own placeholders, which come before the inner ones."""
    sql, inner_params = qs.query.sql_with_params()
    with connections[qs.db].cursor() as cursor:
        cursor.execute(template.replace("{inner}", sql), [*params, *inner_params])
        return cursor.fetchall()


def _pairs(qs: QuerySet, period: Period, when: str, who: str) -> QuerySet:
    return qs.filter(within(period, when)).order_by().annotate(d=TruncDate(when), u=F(who)).values_list("d", "u")


def _live_parts(period: Period) -> list[QuerySet]:
    return [
        _pairs(TgUser.objects.all(), period, "last_seen_at", "id"),
        _pairs(TgUser.objects.all(), period, "created_at", "id"),
        _pairs(GenRequest.objects.all(), period, "created_at", "user_id"),
        _pairs(Payment.objects.filter(status=Payment.Status.SUCCEEDED), period, "paid_at", "user_id"),
    ]


def _stored_pairs(period: Period) -> QuerySet:
    return (
        DailyActiveUser.objects.filter(day__gte=period.start, day__lte=period.end)
        .order_by()
        .annotate(d=F("day"), u=F("user_id"))
        .values_list("d", "u")
    )


def activity_pairs_live(*, period: Period) -> QuerySet:
    """Distinct (day, user id) pairs of every interaction in the period, from the source tables: a UNION
    of the users' last-seen and sign-up times, generation requests and succeeded payments."""
    first, *rest = _live_parts(period)
    return first.union(*rest)


def activity_pairs(*, period: Period) -> QuerySet:
    """(day, user id) pairs of the period, some possibly repeated (a UNION ALL, for per-user maxima): the
    stored ones (every built day, and the samples of `last_seen_at` the rollup task records as it runs)
    and, for the days without rollups, the live ones."""
    live = [part for span in split(period).live for part in _live_parts(span)]
    stored = _stored_pairs(period)
    return stored.union(*live, all=True) if live else stored


def active_by_day(*, period: Period) -> dict[date, int]:
    """Distinct active users per day: counted in the rollups for built days, from a UNION otherwise."""
    parts = split(period)
    counts = dict(DashboardDay.objects.filter(day__in=parts.rolled).values_list("day", "active_users"))
    for span in parts.live:
        pairs = _stored_pairs(span).union(*_live_parts(span))
        counts.update({_as_day(d): n for d, n in fetch(pairs, "SELECT d, COUNT(*) FROM ({inner}) pairs GROUP BY d")})
    return counts
