"""The numbers of the operator's dashboard (the admin's landing page, `botapp/admin/dashboard.py`).

Read-only query functions: keyword-only arguments, typed results (frozen dataclasses), no writes.
Every function answers for a `Period` (whole days in the admin's time zone, `TIME_ZONE`) with a few
aggregate queries (GROUP BY day / model / kind, conditional counts), never a query per row. The big
tables (ledger, requests, activity) are read per day through `botapp.selectors.daily`: from the daily
rollups where a beat task has built them, live otherwise (always for today), so the page stays fast
on a large ledger. Empty data gives zeros: every ratio is guarded against division by zero.

Definitions (what the dashboard's labels mean):

- **Active user**: a user with any interaction in the window: a message or button press
  (`TgUser.last_seen_at`), signing up, a generation request, or a successful payment. `last_seen_at`
  holds only the latest interaction, so for past windows the generations and payments supply the
  history. **DAU / WAU / MAU** are the active users of the last 1 / 7 / 30 days ending on the last day
  of the period (with a period ending today: today, the last 7 days, the last 30 days).
- **Blocked the bot**: users whose last message to them got a 403 (`TgUser.bot_blocked`): a current
  state (it is cleared when they write again), with no date, so it is not filtered by the period.
- **Paying user**: a user with a succeeded payment (paid in the period, for the period's figures).
  Refunded payments are not revenue and do not make a user paying.
- **Revenue**: succeeded payments by the day they were paid, per method (Stars: `telegram_stars`,
  XTR; card: `yookassa`, RUB), shown in Stars and in roubles at `settings.STARS_RUB_RATE` roubles per
  Star (card roubles are shown in Stars at the same rate).
- **ARPU** = revenue / active users; **ARPPU** = revenue / paying users (both in the period).
- **First-payment conversion**: the users who signed up in the period and have paid at least once
  (at any time up to now), over the users who signed up in the period.
- **Tokens** (the ledger, `Transaction.kind`, by the day written): *sold* = purchased tokens
  credited by payments (deposit, main bucket); *bonus* = bonus tokens given (the bonus part of
  top-ups, promocodes, referral rewards, gifts); *spent* = generation charges; *refunded* =
  generation refunds; operator adjustments and tokens taken back by refunded payments separately.
- **Average token price**: roubles (and Stars) paid per purchased token by the period's succeeded
  payments; when nothing was sold in the period, the all-time average (and when nothing was ever
  sold, zero, flagged).
- **Margin per model**: the purchased tokens the model earned (its charges minus its refunds, main
  bucket only: bonus tokens were never paid for, so they are shown apart and not counted as revenue)
  at the average token price, against Google's cost of what it made, in roubles at
  `settings.USD_RUB_RATE`: each succeeded request costs `AIModel.unit_cost_usd(params)` (per image, or
  per second of video, at `params.resolution` from `AIModel.costs_usd`; a resolution not in it: the flat
  `cost_per_image_usd` / `cost_per_video_second_usd`) times its units (images: `params.number_of_images`,
  default 1; seconds: `params.duration_seconds`, default the model's). It is summed per day into the
  generation rollup when the day is built (`DailyGenerations.cost_usd`; today: live, the same way), so a
  past day keeps the costs of when it was built until it is rebuilt. The cost reads "not set" when the
  model has no cost entered at all (no flat cost for its kind and no resolution in `costs_usd`).
- **Time to result**: `finished_at - created_at` of the succeeded requests, counted in a histogram
  (`daily.DURATION_BOUNDS`: 1 s steps up to 10 s, then coarser); p50 and p95 are the nearest ranks,
  shown as the upper bound of their bucket ("at most").
- **Failure rate** = failed / (succeeded + failed); **refund rate** = refunded / all requests.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Min, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from botapp.models import AIModel, GenRequest, Payment, Promocode, PromocodeActivation, TgUser, Transaction
from botapp.selectors import daily
from botapp.selectors.daily import GenerationRow, LedgerRow, Period, percentile, within

__all__ = ["Period"]

ZERO = Decimal("0")
CENT = Decimal("0.01")
STARS_CURRENCY = "XTR"
RUB_CURRENCY = "RUB"
# The payment methods as the operator names them (Payment.provider).
METHOD_LABELS = {
    Payment.Provider.TELEGRAM_STARS: "Stars",
    Payment.Provider.YOOKASSA: "Card",
}
Status = GenRequest.Status
Kind = Transaction.Kind
Bucket = Transaction.Bucket


def ratio(part: float | Decimal | int, whole: float | Decimal | int) -> float:
    """part / whole, 0.0 when there is no whole."""
    return float(part) / float(whole) if whole else 0.0


def _money(value: Decimal | None) -> Decimal:
    return (value or ZERO).quantize(CENT)


# --- users -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UserStats:
    total: int  # all users now
    new: int  # signed up in the period
    active: int  # any interaction in the period
    dau: int
    wau: int
    mau: int
    blocked: int  # blocked the bot (now)
    paying: int  # a succeeded payment in the period
    new_via_referral: int  # signed up in the period through an invite link

    @property
    def paying_share(self) -> float:
        """Paying users over active users, in the period."""
        return ratio(self.paying, self.active)

    @property
    def blocked_share(self) -> float:
        return ratio(self.blocked, self.total)


@dataclass(frozen=True)
class DayUsers:
    day: date
    new: int
    active: int


def _since(day: date) -> datetime:
    return Period(start=day, end=day).since


def user_stats(*, period: Period, today: date | None = None) -> UserStats:
    """The period's user KPIs in three queries."""
    today = today or timezone.localdate()
    end = period.end
    bounds = {"active": period.start, "dau": end, "wau": end - timedelta(days=6), "mau": end - timedelta(days=29)}
    if end >= today:
        # A window that reaches today: every interaction (a generation, a payment, signing up too) comes
        # with an update from the user that moves `last_seen_at` on, so a user was active in the window
        # exactly when they were last seen in it: four counts over one index, no history needed.
        activity = {name: Count("id", filter=Q(last_seen_at__gte=_since(day))) for name, day in bounds.items()}
    else:
        activity = {}
    counts = TgUser.objects.aggregate(
        total=Count("id"),
        blocked=Count("id", filter=Q(bot_blocked=True)),
        new=Count("id", filter=within(period, "created_at")),
        new_via_referral=Count("id", filter=within(period, "created_at") & Q(referred_by__isnull=False)),
        **activity,
    )
    if not activity:
        # A past window: each user's last active day in it, from the (day, user) activity pairs, in one
        # pass (the days compare as ISO text on SQLite and as dates on PostgreSQL).
        window = Period(start=min(period.start, end - timedelta(days=29)), end=end)
        (row,) = daily.fetch(
            daily.activity_pairs(period=window),
            "SELECT " + ", ".join(["SUM(CASE WHEN last >= %s THEN 1 ELSE 0 END)"] * 4)
            + " FROM (SELECT u, MAX(d) AS last FROM ({inner}) pairs GROUP BY u) users",
            [day.isoformat() for day in bounds.values()],
        )  # fmt: skip
        counts.update(zip(bounds, row, strict=True))
    paying = (
        Payment.objects.filter(within(period, "paid_at"), status=Payment.Status.SUCCEEDED)
        .order_by()
        .values("user_id")
        .distinct()
        .count()
    )
    return UserStats(
        total=counts["total"],
        new=counts["new"],
        active=counts["active"] or 0,
        dau=counts["dau"] or 0,
        wau=counts["wau"] or 0,
        mau=counts["mau"] or 0,
        blocked=counts["blocked"],
        paying=paying,
        new_via_referral=counts["new_via_referral"],
    )


def users_by_day(*, period: Period) -> list[DayUsers]:
    """New and active users per day of the period (every day, zeros included)."""
    new = dict(
        TgUser.objects.filter(within(period, "created_at"))
        .order_by()
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    active = daily.active_by_day(period=period)
    return [DayUsers(day=day, new=new.get(day, 0), active=active.get(day, 0)) for day in period.days]


@dataclass(frozen=True)
class Conversion:
    new_users: int
    paid: int  # of them, paid at least once (any time up to now)

    @property
    def rate(self) -> float:
        return ratio(self.paid, self.new_users)


def first_payment_conversion(*, period: Period) -> Conversion:
    new_users = TgUser.objects.filter(within(period, "created_at")).count()
    paid = (
        Payment.objects.filter(within(period, "user__created_at"), status=Payment.Status.SUCCEEDED)
        .order_by()
        .values("user_id")
        .distinct()
        .count()
    )
    return Conversion(new_users=new_users, paid=paid)


# --- money -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MethodRevenue:
    method: str  # Payment.provider
    label: str
    payments: int
    stars: Decimal  # in Stars (card roubles converted)
    rub: Decimal  # in roubles (Stars converted)
    tokens: Decimal  # purchased tokens credited


@dataclass(frozen=True)
class DayRevenue:
    day: date
    by_method_rub: dict[str, Decimal]

    @property
    def rub(self) -> Decimal:
        return sum(self.by_method_rub.values(), ZERO)


@dataclass(frozen=True)
class Revenue:
    payments: int
    paying_users: int
    stars: Decimal
    rub: Decimal
    tokens: Decimal  # purchased tokens of these payments
    by_method: list[MethodRevenue]
    by_day: list[DayRevenue]
    refunded_payments: int  # payments refunded in the period (not in the revenue)
    refunded_rub: Decimal
    unconverted_payments: int = 0  # payments in a currency other than XTR / RUB (not counted)

    @property
    def arppu_rub(self) -> Decimal:
        return (self.rub / self.paying_users).quantize(CENT) if self.paying_users else ZERO


def _to_stars_and_rub(amount: Decimal, currency: str, rate: Decimal) -> tuple[Decimal, Decimal] | None:
    if currency == STARS_CURRENCY:
        return amount, amount * rate
    if currency == RUB_CURRENCY:
        return (amount / rate if rate else ZERO), amount
    return None


def revenue(*, period: Period, stars_rub_rate: Decimal) -> Revenue:
    """Succeeded payments paid in the period: totals, per method and per day (every day)."""
    rows = (
        Payment.objects.filter(within(period, "paid_at"), status=Payment.Status.SUCCEEDED)
        .order_by()
        .annotate(day=TruncDate("paid_at"))
        .values("day", "provider", "currency")
        .annotate(n=Count("id"), amount=Sum("amount"), tokens=Sum("tokens"))
    )
    methods: dict[str, dict[str, Decimal | int]] = {
        method: {"payments": 0, "stars": ZERO, "rub": ZERO, "tokens": ZERO} for method in METHOD_LABELS
    }
    per_day: dict[date, dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(METHOD_LABELS, ZERO))
    unconverted = 0
    for row in rows:
        converted = _to_stars_and_rub(row["amount"] or ZERO, row["currency"], stars_rub_rate)
        if converted is None:
            unconverted += row["n"]
            continue
        stars, rub = converted
        bucket = methods.setdefault(row["provider"], {"payments": 0, "stars": ZERO, "rub": ZERO, "tokens": ZERO})
        bucket["payments"] += row["n"]
        bucket["stars"] += stars
        bucket["rub"] += rub
        bucket["tokens"] += row["tokens"] or ZERO
        per_day[row["day"]][row["provider"]] = per_day[row["day"]].get(row["provider"], ZERO) + rub
    by_method = [
        MethodRevenue(
            method=method,
            label=METHOD_LABELS.get(method, method),
            payments=int(values["payments"]),
            stars=_money(values["stars"]),
            rub=_money(values["rub"]),
            tokens=_money(values["tokens"]),
        )
        for method, values in methods.items()
    ]
    refunded = (
        Payment.objects.filter(within(period, "refunded_at"), status=Payment.Status.REFUNDED)
        .order_by()
        .values("currency")
        .annotate(n=Count("id"), amount=Sum("amount"))
    )
    refunded_count, refunded_rub = 0, ZERO
    for row in refunded:
        converted = _to_stars_and_rub(row["amount"] or ZERO, row["currency"], stars_rub_rate)
        refunded_count += row["n"]
        refunded_rub += converted[1] if converted else ZERO
    paying = (
        Payment.objects.filter(within(period, "paid_at"), status=Payment.Status.SUCCEEDED)
        .order_by()
        .values("user_id")
        .distinct()
        .count()
    )
    return Revenue(
        payments=sum(m.payments for m in by_method),
        paying_users=paying,
        stars=sum((m.stars for m in by_method), ZERO),
        rub=sum((m.rub for m in by_method), ZERO),
        tokens=sum((m.tokens for m in by_method), ZERO),
        by_method=by_method,
        by_day=[
            DayRevenue(
                day=day,
                by_method_rub={m: _money(v) for m, v in per_day.get(day, dict.fromkeys(METHOD_LABELS, ZERO)).items()},
            )
            for day in period.days
        ],
        refunded_payments=refunded_count,
        refunded_rub=_money(refunded_rub),
        unconverted_payments=unconverted,
    )


@dataclass(frozen=True)
class UnitEconomics:
    arpu_rub: Decimal  # revenue per active user
    arppu_rub: Decimal  # revenue per paying user
    arpu_stars: Decimal
    arppu_stars: Decimal


def unit_economics(*, revenue: Revenue, users: UserStats) -> UnitEconomics:
    def per(amount: Decimal, count: int) -> Decimal:
        return (amount / count).quantize(CENT) if count else ZERO

    return UnitEconomics(
        arpu_rub=per(revenue.rub, users.active),
        arppu_rub=per(revenue.rub, revenue.paying_users),
        arpu_stars=per(revenue.stars, users.active),
        arppu_stars=per(revenue.stars, revenue.paying_users),
    )


@dataclass(frozen=True)
class TokenPrice:
    rub: Decimal  # roubles paid per purchased token
    stars: Decimal  # Stars paid per purchased token
    source: str  # "period", "all time" or "none" (nothing ever sold: zero)


def token_price(*, period: Period, stars_rub_rate: Decimal) -> TokenPrice:
    """The average price of a purchased token: the period's succeeded payments, else all of them."""
    paid = Payment.objects.filter(status=Payment.Status.SUCCEEDED).order_by()
    for source, qs in (("period", paid.filter(within(period, "paid_at"))), ("all time", paid)):
        stars = rub = tokens = ZERO
        for row in qs.values("currency").annotate(amount=Sum("amount"), tokens=Sum("tokens")):
            converted = _to_stars_and_rub(row["amount"] or ZERO, row["currency"], stars_rub_rate)
            if converted is None:
                continue
            stars += converted[0]
            rub += converted[1]
            tokens += row["tokens"] or ZERO
        if tokens > 0:
            return TokenPrice(
                rub=(rub / tokens).quantize(Decimal("0.0001")),
                stars=(stars / tokens).quantize(Decimal("0.0001")),
                source=source,
            )
    return TokenPrice(rub=ZERO, stars=ZERO, source="none")


@dataclass(frozen=True)
class DayTokens:
    day: date
    sold: Decimal
    spent: Decimal
    refunded: Decimal
    bonus: Decimal


@dataclass(frozen=True)
class TokenFlow:
    sold: Decimal  # purchased tokens credited (deposit, main bucket)
    spent: Decimal  # generation charges (positive)
    refunded: Decimal  # generation refunds
    bonus: Decimal  # every bonus given (the parts below)
    bonus_topup: Decimal  # the bonus part of top-ups (package, promocode, level perks)
    bonus_promo: Decimal  # bonus-token promocodes
    bonus_referral: Decimal  # referral rewards
    bonus_gift: Decimal  # other gifts (Transaction.Kind.BONUS)
    adjustments: Decimal  # operator adjustments, net (signed)
    payment_refunds: Decimal  # tokens taken back by refunded payments (positive)
    by_day: list[DayTokens] = field(default_factory=list)

    @property
    def net_spent(self) -> Decimal:
        return self.spent - self.refunded


def token_flow(*, period: Period, ledger: list[LedgerRow] | None = None) -> TokenFlow:
    """The ledger of the period by kind and bucket, per day (`ledger`: the period's rows, if at hand)."""
    rows = daily.ledger_rows(period=period) if ledger is None else ledger
    totals: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    days: dict[date, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    bonus_kinds = (Kind.BONUS, Kind.PROMO, Kind.REFERRAL)
    for row in rows:
        totals[(row.kind, row.bucket)] += row.amount
        slot = days[row.day]
        if row.kind == Kind.DEPOSIT:
            slot["sold" if row.bucket == Bucket.MAIN else "bonus"] += row.amount
        elif row.kind == Kind.CHARGE:
            slot["spent"] -= row.amount
        elif row.kind == Kind.REFUND:
            slot["refunded"] += row.amount
        elif row.kind in bonus_kinds:
            slot["bonus"] += row.amount

    def of(kind: str, *buckets: str) -> Decimal:
        return sum((totals[(kind, bucket)] for bucket in buckets or (Bucket.MAIN, Bucket.BONUS)), ZERO)

    bonus_topup = of(Kind.DEPOSIT, Bucket.BONUS)
    bonus_promo, bonus_referral, bonus_gift = of(Kind.PROMO), of(Kind.REFERRAL), of(Kind.BONUS)
    return TokenFlow(
        sold=of(Kind.DEPOSIT, Bucket.MAIN),
        spent=-of(Kind.CHARGE),
        refunded=of(Kind.REFUND),
        bonus=bonus_topup + bonus_promo + bonus_referral + bonus_gift,
        bonus_topup=bonus_topup,
        bonus_promo=bonus_promo,
        bonus_referral=bonus_referral,
        bonus_gift=bonus_gift,
        adjustments=of(Kind.ADMIN_ADJUSTMENT),
        payment_refunds=-of(Kind.PAYMENT_REFUND),
        by_day=[
            DayTokens(day=day, sold=days[day]["sold"], spent=days[day]["spent"], refunded=days[day]["refunded"],
                      bonus=days[day]["bonus"])
            for day in period.days
        ],
    )  # fmt: skip


# --- generations -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelGenerations:
    model_id: int | None  # None: legacy requests without a model row
    name: str
    total: int
    created: int
    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    refunded: int
    p50_seconds: float | None  # time to result of the succeeded requests (at most)
    p95_seconds: float | None

    @property
    def in_flight(self) -> int:
        return self.created + self.queued + self.running

    @property
    def failure_rate(self) -> float:
        return ratio(self.failed, self.succeeded + self.failed)

    @property
    def refund_rate(self) -> float:
        return ratio(self.refunded, self.total)


@dataclass(frozen=True)
class DayGenerations:
    day: date
    succeeded: int
    failed: int
    other: int  # in flight or cancelled


@dataclass(frozen=True)
class GenerationStats:
    by_model: list[ModelGenerations]
    by_day: list[DayGenerations]

    @property
    def total(self) -> int:
        return sum(m.total for m in self.by_model)

    @property
    def succeeded(self) -> int:
        return sum(m.succeeded for m in self.by_model)

    @property
    def failed(self) -> int:
        return sum(m.failed for m in self.by_model)

    @property
    def refunded(self) -> int:
        return sum(m.refunded for m in self.by_model)

    @property
    def failure_rate(self) -> float:
        return ratio(self.failed, self.succeeded + self.failed)

    @property
    def refund_rate(self) -> float:
        return ratio(self.refunded, self.total)


def _models() -> dict[int, AIModel]:
    return {m.pk: m for m in AIModel.objects.all()}  # the catalogue's order


def _model_label(model: AIModel | None, model_id: int | None) -> str:
    if model is not None:
        return str(model)
    return "(no model)" if model_id is None else f"model #{model_id}"


def time_to_result(
    *, period: Period, generations: list[GenerationRow] | None = None
) -> dict[int | None, tuple[float | None, float | None]]:
    """p50 and p95 seconds from request to result of the period's succeeded requests, per model."""
    rows = daily.generation_rows(period=period) if generations is None else generations
    histograms: dict[int | None, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        for bound, count in row.durations.items():
            histograms[row.ai_model_id][bound] += count
    return {model_id: (percentile(h, 0.5), percentile(h, 0.95)) for model_id, h in histograms.items()}


def generation_stats(*, period: Period, generations: list[GenerationRow] | None = None) -> GenerationStats:
    """Requests made in the period by model and status (with refunds and time to result), and per day."""
    rows = daily.generation_rows(period=period) if generations is None else generations
    per_model: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_day: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        counts = per_model[row.ai_model_id]
        counts[row.status] += row.requests
        counts["total"] += row.requests
        counts["refunded"] += row.refunded
        slot = row.status if row.status in (Status.SUCCEEDED, Status.FAILED) else "other"
        per_day[row.day][slot] += row.requests
    latency = time_to_result(period=period, generations=rows)
    models = _models()
    order = {pk: i for i, pk in enumerate(models)}
    by_model = [
        ModelGenerations(
            model_id=model_id,
            name=_model_label(models.get(model_id), model_id),
            total=counts["total"],
            created=counts[Status.CREATED],
            queued=counts[Status.QUEUED],
            running=counts[Status.RUNNING],
            succeeded=counts[Status.SUCCEEDED],
            failed=counts[Status.FAILED],
            cancelled=counts[Status.CANCELLED],
            refunded=counts["refunded"],
            p50_seconds=latency.get(model_id, (None, None))[0],
            p95_seconds=latency.get(model_id, (None, None))[1],
        )
        for model_id, counts in sorted(per_model.items(), key=lambda item: order.get(item[0], len(order)))
    ]
    return GenerationStats(
        by_model=by_model,
        by_day=[
            DayGenerations(day=day, succeeded=per_day[day][Status.SUCCEEDED], failed=per_day[day][Status.FAILED],
                           other=per_day[day]["other"])
            for day in period.days
        ],
    )  # fmt: skip


@dataclass(frozen=True)
class ErrorCodeStats:
    code: str  # "" shown as "(no code)"
    failed: int
    refunded: int
    share: float  # of all failed requests of the period

    @property
    def refund_rate(self) -> float:
        return ratio(self.refunded, self.failed)


def failures_by_error_code(
    *, period: Period, generations: list[GenerationRow] | None = None, limit: int = 15
) -> list[ErrorCodeStats]:
    """The period's failed requests per error code, most frequent first."""
    rows = daily.generation_rows(period=period) if generations is None else generations
    failed: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        if row.status == Status.FAILED:
            failed[row.error_code][0] += row.requests
            failed[row.error_code][1] += row.refunded
    total = sum(n for n, _ in failed.values())
    ranked = sorted(failed.items(), key=lambda item: (-item[1][0], item[0]))
    return [
        ErrorCodeStats(code=code, failed=n, refunded=refunded, share=ratio(n, total))
        for code, (n, refunded) in ranked[:limit]
    ]


@dataclass(frozen=True)
class QueueNow:
    created: int
    queued: int
    running: int
    running_due_polls: int  # running video operations whose next poll is due
    oldest_waiting_seconds: float | None  # the oldest created/queued request's age

    @property
    def in_flight(self) -> int:
        return self.created + self.queued + self.running

    @property
    def depth(self) -> int:
        """Requests waiting for a worker (created or queued)."""
        return self.created + self.queued


def queue_now(*, now: datetime | None = None) -> QueueNow:
    """In-flight requests right now (not the period): one aggregate over the in-flight statuses."""
    now = now or timezone.now()
    counts = GenRequest.objects.filter(status__in=GenRequest.IN_FLIGHT).aggregate(
        created=Count("id", filter=Q(status=Status.CREATED)),
        queued=Count("id", filter=Q(status=Status.QUEUED)),
        running=Count("id", filter=Q(status=Status.RUNNING)),
        due=Count("id", filter=Q(status=Status.RUNNING, next_poll_at__lte=now)),
        oldest=Min("created_at", filter=Q(status__in=(Status.CREATED, Status.QUEUED))),
    )
    oldest = counts["oldest"]
    return QueueNow(
        created=counts["created"],
        queued=counts["queued"],
        running=counts["running"],
        running_due_polls=counts["due"],
        oldest_waiting_seconds=max((now - oldest).total_seconds(), 0.0) if oldest else None,
    )


# --- margin ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelMargin:
    model_id: int | None
    name: str
    kind: str
    paid_tokens: Decimal  # purchased tokens charged minus refunded
    bonus_tokens: Decimal  # bonus tokens charged minus refunded (no revenue)
    revenue_rub: Decimal  # paid_tokens at the average token price
    succeeded: int
    units: int  # images made, or seconds of video made
    cost_usd: Decimal
    cost_rub: Decimal
    cost_set: bool  # False: no provider cost entered for this model (the margin is overstated)

    @property
    def margin_rub(self) -> Decimal:
        return self.revenue_rub - self.cost_rub

    @property
    def margin_share(self) -> float | None:
        return ratio(self.margin_rub, self.revenue_rub) if self.revenue_rub else None


def _cost_set(model: AIModel) -> bool:
    """Whether any Google cost is entered for the model: its kind's flat cost or one in `costs_usd`."""
    table = model.costs_usd if isinstance(model.costs_usd, dict) else {}
    return model.unit_cost_usd({}) > 0 or any(model.unit_cost_usd({"resolution": r}) > 0 for r in table)


def model_margins(
    *,
    period: Period,
    rub_per_token: Decimal,
    usd_rub_rate: Decimal,
    ledger: list[LedgerRow] | None = None,
    generations: list[GenerationRow] | None = None,
) -> list[ModelMargin]:
    """Per model: what it earned (the period's charges minus refunds, purchased tokens at the average
    price) against what Google charged for the requests it made in the period (the rows' `cost_usd`)."""
    ledger = daily.ledger_rows(period=period) if ledger is None else ledger
    generations = daily.generation_rows(period=period) if generations is None else generations
    tokens: dict[int | None, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for row in ledger:
        if row.kind in (Kind.CHARGE, Kind.REFUND) and row.ai_model_id is not None:
            tokens[row.ai_model_id][row.bucket] -= row.amount
    units: dict[int | None, int] = defaultdict(int)
    succeeded: dict[int | None, int] = defaultdict(int)
    costs: dict[int | None, Decimal] = defaultdict(lambda: ZERO)
    for row in generations:
        if row.status == Status.SUCCEEDED:
            units[row.ai_model_id] += row.units
            succeeded[row.ai_model_id] += row.requests
            costs[row.ai_model_id] += row.cost_usd
    models = _models()
    active = {pk for pk in {*tokens, *units} if tokens[pk] or units[pk]}
    shown = [pk for pk, m in models.items() if m.is_active or pk in active]
    shown += sorted((pk for pk in active if pk not in models), key=str)
    result = []
    for model_id in shown:
        model = models.get(model_id)
        kind = model.kind if model is not None else AIModel.Kind.IMAGE
        paid_tokens = tokens[model_id][Bucket.MAIN]
        cost_usd = costs[model_id].quantize(Decimal("0.0001"))
        result.append(
            ModelMargin(
                model_id=model_id,
                name=_model_label(model, model_id),
                kind=kind,
                paid_tokens=paid_tokens,
                bonus_tokens=tokens[model_id][Bucket.BONUS],
                revenue_rub=_money(paid_tokens * rub_per_token),
                succeeded=succeeded[model_id],
                units=units[model_id],
                cost_usd=cost_usd,
                cost_rub=_money(cost_usd * usd_rub_rate),
                cost_set=model is not None and _cost_set(model),
            )
        )
    return result


# --- referrals and promocodes ------------------------------------------------------------------------
@dataclass(frozen=True)
class PromocodeUse:
    code: str
    kind: str
    redemptions: int


@dataclass(frozen=True)
class ReferralsAndPromos:
    referral_signups: int  # users who signed up in the period through an invite link
    referral_rewards: int  # reward ledger rows written in the period
    referral_reward_tokens: Decimal
    promo_redemptions: int  # promocodes activated in the period
    promo_consumed: int  # top-up codes used by a payment in the period
    promo_bonus_tokens: Decimal  # bonus-token codes' tokens credited in the period
    top_codes: list[PromocodeUse]


def referrals_and_promos(*, period: Period, ledger: list[LedgerRow] | None = None, top: int = 8) -> ReferralsAndPromos:
    rows = daily.ledger_rows(period=period) if ledger is None else ledger
    rewards = [row for row in rows if row.kind == Kind.REFERRAL]
    promo_tokens = sum((row.amount for row in rows if row.kind == Kind.PROMO), ZERO)
    activations = PromocodeActivation.objects.filter(within(period, "created_at")).order_by()
    codes = list(
        activations.values("promocode_id")
        .annotate(n=Count("id"))
        .order_by("-n", "promocode_id")
        .values_list("promocode_id", "n")[:top]
    )
    promos = Promocode.objects.in_bulk([pk for pk, _ in codes])
    return ReferralsAndPromos(
        referral_signups=TgUser.objects.filter(within(period, "created_at"), referred_by__isnull=False).count(),
        referral_rewards=sum(row.rows for row in rewards),
        referral_reward_tokens=sum((row.amount for row in rewards), ZERO),
        promo_redemptions=activations.count(),
        promo_consumed=PromocodeActivation.objects.filter(within(period, "consumed_at")).count(),
        promo_bonus_tokens=promo_tokens,
        top_codes=[
            PromocodeUse(code=promos[pk].code, kind=promos[pk].get_kind_display(), redemptions=n)
            for pk, n in codes
            if pk in promos
        ],
    )
