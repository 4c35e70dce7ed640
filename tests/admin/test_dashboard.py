"""The operator's dashboard (the admin's landing page): each selector against a known data set with
exact numbers, the page through Django's test client (with data, empty, the date range and bad input),
and the money panels only for staff who may view payments.

The data set (`world`) covers 1-7 March 2025 with rows just outside it on both sides; every row's
time is set explicitly (the ledger is append-only, so its rows are written at a frozen clock).
"""

from __future__ import annotations

import io
import itertools
import json
import re
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from botapp import tasks
from botapp.admin import dashboard
from botapp.models import (
    AIModel,
    DailyActiveUser,
    DailyGenerations,
    DailyLedger,
    DashboardDay,
    GenRequest,
    Payment,
    Promocode,
    PromocodeActivation,
    TgUser,
    Transaction,
)
from botapp.selectors import daily
from botapp.selectors import dashboard as sel
from botapp.selectors.daily import Period
from botapp.services import rollups

pytestmark = pytest.mark.django_db

P = Period(start=date(2025, 3, 1), end=date(2025, 3, 7))
NOW = datetime(2025, 3, 8, 12, 0, tzinfo=UTC)
RATE = Decimal("1.5")  # roubles per Star in these tests
USD = Decimal("80")
_seq = itertools.count(1)


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0, month: int = 3) -> datetime:
    return datetime(2025, month, day, hour, minute, second, tzinfo=UTC)


@contextmanager
def clock(moment: datetime):
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def user(name: str, *, created: datetime, seen: datetime | None, **fields) -> TgUser:
    row = TgUser.objects.create(telegram_id=9_000_000 + next(_seq), username=name, **fields)
    TgUser.objects.filter(pk=row.pk).update(created_at=created, last_seen_at=seen)
    row.refresh_from_db()
    return row


def payment(who: TgUser, *, amount: str, currency: str, paid: datetime, tokens: str, status=Payment.Status.SUCCEEDED,
            provider=Payment.Provider.TELEGRAM_STARS, refunded: datetime | None = None) -> Payment:  # fmt: skip
    row = Payment.objects.create(
        user=who,
        provider=provider,
        status=status,
        amount=Decimal(amount),
        currency=currency,
        tokens=Decimal(tokens),
        invoice_payload=f"test:{next(_seq)}",
        paid_at=paid,
        refunded_at=refunded,
    )
    Payment.objects.filter(pk=row.pk).update(created_at=paid - timedelta(minutes=1))
    return row


def gen(who: TgUser, model: AIModel, *, created: datetime, status: str, took: float | None = None,
        params: dict | None = None, error: str = "", refunded: bool = False,
        next_poll_at: datetime | None = None) -> GenRequest:  # fmt: skip
    row = GenRequest.objects.create(
        user=who,
        ai_model=model,
        model=model.slug,
        kind=model.kind,
        prompt="p",
        params=params or {},
        status=status,
        price=model.price,
        error_code=error,
        finished_at=created + timedelta(seconds=took) if took is not None else None,
        refunded_at=created + timedelta(minutes=5) if refunded else None,
        next_poll_at=next_poll_at,
    )
    GenRequest.objects.filter(pk=row.pk).update(created_at=created)
    row.refresh_from_db()
    return row


def ledger(who: TgUser, kind: str, amount: str, when: datetime, *, bucket: str = "main", **links) -> Transaction:
    n = next(_seq)
    with clock(when):
        return Transaction.objects.create(
            user=who,
            kind=kind,
            bucket=bucket,
            amount=Decimal(amount),
            balance_after=Decimal("0"),
            operation_key=f"test:{n}",
            idempotency_key=f"test:{n}:{bucket}",
            **links,
        )


@pytest.fixture
def world(db):
    K = Transaction.Kind
    nano = AIModel.objects.get(slug="nano-banana-2-1")
    veo = AIModel.objects.get(slug="veo-3-1-fast")
    AIModel.objects.filter(pk=nano.pk).update(cost_per_image_usd=Decimal("0.04"))
    AIModel.objects.filter(pk=veo.pk).update(cost_per_video_second_usd=Decimal("0.15"))
    nano.refresh_from_db()
    veo.refresh_from_db()

    u1 = user("u1", created=at(20, month=2), seen=at(3))
    u2 = user("u2", created=at(2), seen=at(2), referred_by=u1)
    u3 = user("u3", created=at(3), seen=at(3, 9), bot_blocked=True)
    u4 = user("u4", created=at(6), seen=at(9))
    user("u5", created=at(1, month=2), seen=at(10, month=2), bot_blocked=True)
    u6 = user("u6", created=at(1, month=2), seen=at(15, month=2))

    p1 = payment(u1, amount="100", currency="XTR", paid=at(2), tokens="20")
    p2 = payment(u2, amount="240", currency="RUB", paid=at(5), tokens="40", provider=Payment.Provider.YOOKASSA)
    payment(u4, amount="50", currency="XTR", paid=at(8, 0), tokens="10")  # the first moment after the range
    p6 = payment(u6, amount="50", currency="XTR", paid=at(4), tokens="10", status=Payment.Status.REFUNDED,
                 refunded=at(6))  # fmt: skip

    g1 = gen(u1, nano, created=at(7, 23, 59, 59), status="succeeded", took=10)  # the last second of the range
    g2 = gen(u4, nano, created=at(6), status="succeeded", took=20, params={"number_of_images": 2})
    g3 = gen(u2, nano, created=at(5), status="failed", error="SAFETY", refunded=True)
    g4 = gen(u2, veo, created=at(5, 13), status="succeeded", took=100, params={"duration_seconds": 6})
    g5 = gen(u1, veo, created=at(2), status="failed", error="TIMEOUT")
    g6 = gen(u1, nano, created=at(4), status="queued")
    g7 = gen(u2, veo, created=at(4, 14), status="running", next_poll_at=NOW - timedelta(minutes=1))
    g8 = gen(u2, nano, created=at(20, month=2), status="succeeded", took=5)  # before the range
    gen(u1, nano, created=at(3, 8), status="created")

    ledger(u1, K.DEPOSIT, "20", at(2), payment=p1)
    ledger(u1, K.DEPOSIT, "2", at(2), bucket="bonus", payment=p1)
    ledger(u2, K.DEPOSIT, "40", at(5), payment=p2)
    ledger(u6, K.DEPOSIT, "10", at(4), payment=p6)
    ledger(u6, K.PAYMENT_REFUND, "-4", at(6), payment=p6)
    ledger(u4, K.DEPOSIT, "10", at(8, 0))  # after the range
    ledger(u1, K.REFERRAL, "5", at(5), bucket="bonus")
    ledger(u3, K.PROMO, "10", at(3), bucket="bonus")
    ledger(u3, K.BONUS, "1", at(3), bucket="bonus")
    ledger(u3, K.ADMIN_ADJUSTMENT, "3", at(4))
    ledger(u3, K.ADMIN_ADJUSTMENT, "-1", at(5))
    ledger(u1, K.CHARGE, "-1.5", at(7, 23, 59, 59), gen_request=g1)
    ledger(u4, K.CHARGE, "-1.5", at(6), bucket="bonus", gen_request=g2)
    ledger(u2, K.CHARGE, "-1.5", at(5), gen_request=g3)
    ledger(u2, K.REFUND, "1.5", at(5, 12, 5), gen_request=g3)
    ledger(u2, K.CHARGE, "-19", at(5, 13), gen_request=g4)
    ledger(u1, K.CHARGE, "-19", at(2), gen_request=g5)
    ledger(u1, K.CHARGE, "-1.5", at(4), gen_request=g6)
    ledger(u2, K.CHARGE, "-19", at(4, 14), gen_request=g7)
    ledger(u2, K.CHARGE, "-1.5", at(20, month=2), gen_request=g8)  # before the range

    welcome = Promocode.objects.get(code="WELCOME2025")
    first50 = Promocode.objects.get(code="FIRST50")
    for who, code, when, consumed in ((u3, welcome, at(3), None), (u2, first50, at(5), at(5)),
                                      (u1, welcome, at(20, month=2), None)):  # fmt: skip
        act = PromocodeActivation.objects.create(promocode=code, user=who, consumed_at=consumed)
        PromocodeActivation.objects.filter(pk=act.pk).update(created_at=when)
    return {"nano": nano, "veo": veo, "users": (u1, u2, u3, u4, u6)}


# --- the period and the range --------------------------------------------------------------------------
def test_period_bounds():
    assert P.since == at(1, 0)
    assert P.until == at(8, 0)
    assert P.length == 7 and P.days[0] == date(2025, 3, 1) and P.days[-1] == date(2025, 3, 7)
    with pytest.raises(ValueError):
        Period(start=date(2025, 3, 2), end=date(2025, 3, 1))


TODAY = date(2025, 3, 20)


@pytest.mark.parametrize(
    ("params", "start", "end", "preset"),
    [
        ({}, date(2025, 2, 19), TODAY, "30d"),
        ({"range": "today"}, TODAY, TODAY, "today"),
        ({"range": "7d"}, date(2025, 3, 14), TODAY, "7d"),
        ({"range": "30d"}, date(2025, 2, 19), TODAY, "30d"),
        ({"range": "90d"}, date(2024, 12, 21), TODAY, "90d"),
        ({"range": "month"}, date(2025, 3, 1), TODAY, "month"),
        ({"from": "2025-01-05", "to": "2025-01-10"}, date(2025, 1, 5), date(2025, 1, 10), "custom"),
        ({"range": "custom", "from": "2025-03-01", "to": "2025-03-01"}, date(2025, 3, 1), date(2025, 3, 1), "custom"),
        ({"from": "2025-03-10"}, date(2025, 3, 10), TODAY, "custom"),  # "to" defaults to today
        ({"to": "2025-03-10"}, date(2025, 2, 9), date(2025, 3, 10), "custom"),  # "from": 30 days before
        ({"from": "2025-03-10", "to": "2026-01-01"}, date(2025, 3, 10), TODAY, "custom"),  # "to" capped at today
    ],
)
def test_range_presets_and_custom_dates(params, start, end, preset):
    choice = dashboard.parse_range(params, today=TODAY)
    assert (choice.period.start, choice.period.end, choice.preset, choice.notice) == (start, end, preset, "")


@pytest.mark.parametrize(
    ("params", "notice"),
    [
        ({"from": "yesterday"}, "must look like"),
        ({"from": "2025-02-30", "to": "2025-03-01"}, "must look like"),
        ({"from": "2025-03-01", "to": "2025-13-01"}, "must look like"),
        ({"from": "2025-03-10", "to": "2025-03-01"}, "starts after it ends"),
        ({"from": "2026-01-01"}, "starts after it ends"),  # a future start
        ({"from": "0001-01-01", "to": "2025-03-01"}, "longer than 366 days"),
        ({"range": "forever"}, "Unknown range"),
        ({"range": "<script>" * 10}, "Unknown range"),
        ({"from": "\x00\x01"}, "must look like"),
        ({"to": "0001-01-05"}, "must look like"),  # no room for the default 30 days before it
        ({"from": "2025-03-01", "to": "9" * 5000}, "must look like"),
    ],
)
def test_bad_range_falls_back_to_the_default_with_a_notice(params, notice):
    choice = dashboard.parse_range(params, today=TODAY)
    assert (choice.period.start, choice.period.end, choice.preset) == (date(2025, 2, 19), TODAY, "30d")
    assert notice in choice.notice


# --- selectors, with exact numbers ------------------------------------------------------------------------
def test_user_stats(world):
    stats = sel.user_stats(period=P)
    assert stats == sel.UserStats(
        total=6, new=3, active=4, dau=1, wau=4, mau=6, blocked=2, paying=2, new_via_referral=1
    )
    assert stats.paying_share == 0.5
    assert stats.blocked_share == pytest.approx(2 / 6)


def test_user_stats_of_a_window_reaching_today_count_last_seen(world):
    """With the period ending today, a user is active when last seen in the window (every interaction
    moves last_seen on): four counts, no history. The fixture's u1 generated on 7 March but was last seen
    on 3 March (impossible live), so today's DAU is u4 (seen 9 March) here, u1 in the history."""
    stats = sel.user_stats(period=P, today=P.end)
    assert (stats.active, stats.dau, stats.wau, stats.mau) == (4, 1, 4, 6)
    TgUser.objects.filter(username="u4").update(last_seen_at=at(6))
    assert sel.user_stats(period=P, today=P.end).dau == 0
    assert sel.user_stats(period=P).dau == 1  # the past window: u1's generation on 7 March


def test_users_by_day(world):
    rows = {row.day.day: (row.new, row.active) for row in sel.users_by_day(period=P)}
    assert rows == {1: (0, 0), 2: (1, 2), 3: (1, 2), 4: (0, 2), 5: (0, 1), 6: (1, 1), 7: (0, 1)}


def test_first_payment_conversion(world):
    conversion = sel.first_payment_conversion(period=P)
    # u2 paid in the range, u4 just after it (it still counts: "paid at least once"), u3 never.
    assert (conversion.new_users, conversion.paid) == (3, 2)
    assert conversion.rate == pytest.approx(2 / 3)


def test_revenue(world):
    revenue = sel.revenue(period=P, stars_rub_rate=RATE)
    assert (revenue.payments, revenue.paying_users) == (2, 2)
    assert (revenue.stars, revenue.rub, revenue.tokens) == (Decimal("260.00"), Decimal("390.00"), Decimal("60.00"))
    methods = {m.method: (m.label, m.payments, m.stars, m.rub, m.tokens) for m in revenue.by_method}
    assert methods == {
        "telegram_stars": ("Stars", 1, Decimal("100.00"), Decimal("150.00"), Decimal("20.00")),
        "yookassa": ("Card", 1, Decimal("160.00"), Decimal("240.00"), Decimal("40.00")),
    }
    days = {d.day.day: d.by_method_rub for d in revenue.by_day if d.rub}
    assert days == {
        2: {"telegram_stars": Decimal("150.00"), "yookassa": Decimal("0.00")},
        5: {"telegram_stars": Decimal("0.00"), "yookassa": Decimal("240.00")},
    }
    assert len(revenue.by_day) == 7
    assert (revenue.refunded_payments, revenue.refunded_rub) == (1, Decimal("75.00"))
    assert revenue.arppu_rub == Decimal("195.00")


def test_unit_economics(world):
    economics = sel.unit_economics(revenue=sel.revenue(period=P, stars_rub_rate=RATE), users=sel.user_stats(period=P))
    assert economics == sel.UnitEconomics(
        arpu_rub=Decimal("97.50"), arppu_rub=Decimal("195.00"), arpu_stars=Decimal("65.00"),
        arppu_stars=Decimal("130.00"),
    )  # fmt: skip


def test_token_price_of_the_period_then_all_time_then_none(world):
    assert sel.token_price(period=P, stars_rub_rate=RATE) == sel.TokenPrice(
        rub=Decimal("6.5000"), stars=Decimal("4.3333"), source="period"
    )
    # Nothing sold in February: the all-time average (p1, p2 and the 50 Stars / 10 tokens of 8 March).
    february = Period(start=date(2025, 2, 1), end=date(2025, 2, 28))
    assert sel.token_price(period=february, stars_rub_rate=RATE) == sel.TokenPrice(
        rub=Decimal("6.6429"), stars=Decimal("4.4286"), source="all time"
    )


def test_token_price_with_nothing_ever_sold(db):
    assert sel.token_price(period=P, stars_rub_rate=RATE) == sel.TokenPrice(rub=Decimal(0), stars=Decimal(0),
                                                                            source="none")  # fmt: skip


def test_token_flow(world):
    flow = sel.token_flow(period=P)
    assert (flow.sold, flow.spent, flow.refunded) == (Decimal("70"), Decimal("63"), Decimal("1.5"))
    assert (flow.bonus, flow.bonus_topup, flow.bonus_promo, flow.bonus_referral, flow.bonus_gift) == (
        Decimal("18"), Decimal("2"), Decimal("10"), Decimal("5"), Decimal("1"),
    )  # fmt: skip
    assert (flow.adjustments, flow.payment_refunds, flow.net_spent) == (Decimal("2"), Decimal("4"), Decimal("61.5"))
    days = {d.day.day: (d.sold, d.spent, d.refunded, d.bonus) for d in flow.by_day}
    assert days[2] == (Decimal("20"), Decimal("19"), 0, Decimal("2"))
    assert days[5] == (Decimal("40"), Decimal("20.5"), Decimal("1.5"), Decimal("5"))
    assert days[7] == (0, Decimal("1.5"), 0, 0)
    assert days[1] == (0, 0, 0, 0)
    assert sum(d.spent for d in flow.by_day) == flow.spent


def test_generation_stats(world):
    stats = sel.generation_stats(period=P)
    by_model = {m.name: m for m in stats.by_model}
    assert list(by_model) == ["🍌 Nano Banana 2.1", "⚡ Veo 3.1 Fast"]
    nano, veo = by_model["🍌 Nano Banana 2.1"], by_model["⚡ Veo 3.1 Fast"]
    assert (nano.total, nano.created, nano.queued, nano.running, nano.succeeded, nano.failed, nano.refunded) == (
        5, 1, 1, 0, 2, 1, 1,
    )  # fmt: skip
    assert (nano.failure_rate, nano.refund_rate, nano.in_flight) == (pytest.approx(1 / 3), 0.2, 2)
    assert (nano.p50_seconds, nano.p95_seconds) == (10.0, 20.0)
    assert (veo.total, veo.running, veo.succeeded, veo.failed, veo.refunded) == (3, 1, 1, 1, 0)
    assert (veo.failure_rate, veo.refund_rate, veo.p50_seconds, veo.p95_seconds) == (0.5, 0.0, 100.0, 100.0)
    assert (stats.total, stats.succeeded, stats.failed, stats.refunded) == (8, 3, 2, 1)
    assert stats.failure_rate == 0.4 and stats.refund_rate == 0.125
    days = {d.day.day: (d.succeeded, d.failed, d.other) for d in stats.by_day}
    assert days == {1: (0, 0, 0), 2: (0, 1, 0), 3: (0, 0, 1), 4: (0, 0, 2), 5: (1, 1, 0), 6: (1, 0, 0), 7: (1, 0, 0)}


def test_time_to_result_nearest_rank(world):
    nano = world["nano"]
    u1 = world["users"][0]
    for seconds in (30, 40, 50, 60, 70, 80, 90, 100):  # ten durations: 10, 20, 30 ... 100
        gen(u1, nano, created=at(3, 10), status="succeeded", took=seconds)
    p50, p95 = sel.time_to_result(period=P)[nano.pk]
    assert (p50, p95) == (50.0, 100.0)  # rank ceil(0.5 * 10) = 5 -> 50 s; ceil(0.95 * 10) = 10 -> 100 s


def test_failures_by_error_code(world):
    rows = sel.failures_by_error_code(period=P)
    assert [(r.code, r.failed, r.refunded, r.share, r.refund_rate) for r in rows] == [
        ("SAFETY", 1, 1, 0.5, 1.0),
        ("TIMEOUT", 1, 0, 0.5, 0.0),
    ]


def test_queue_now(world):
    queue = sel.queue_now(now=NOW)
    assert (queue.created, queue.queued, queue.running, queue.running_due_polls) == (1, 1, 1, 1)
    assert (queue.in_flight, queue.depth) == (3, 2)
    assert queue.oldest_waiting_seconds == (NOW - at(3, 8)).total_seconds()
    assert sel.queue_now(now=NOW - timedelta(minutes=2)).running_due_polls == 0


def test_model_margins(world):
    margins = {m.name: m for m in sel.model_margins(period=P, rub_per_token=Decimal("6.5"), usd_rub_rate=USD)}
    assert list(margins) == [
        "🍌 Nano Banana 2.1",
        "⚡ Nano Banana 2 Lite",
        "🌀 Gemini Omni Flash",
        "⚡ Veo 3.1 Fast",
    ]  # inactive models without activity: no row
    nano, veo = margins["🍌 Nano Banana 2.1"], margins["⚡ Veo 3.1 Fast"]
    # nano: g1 and g6 charged 1.5 each from purchased tokens (g3's charge was refunded), g2 from bonus.
    assert (nano.paid_tokens, nano.bonus_tokens, nano.revenue_rub) == (Decimal("3"), Decimal("1.5"), Decimal("19.50"))
    assert (nano.succeeded, nano.units, nano.cost_usd, nano.cost_rub) == (2, 3, Decimal("0.12"), Decimal("9.60"))
    assert nano.margin_rub == Decimal("9.90") and nano.margin_share == pytest.approx(9.9 / 19.5)
    assert (veo.paid_tokens, veo.revenue_rub, veo.units, veo.cost_usd, veo.cost_rub, veo.margin_rub) == (
        Decimal("57"), Decimal("370.50"), 6, Decimal("0.90"), Decimal("72.00"), Decimal("298.50"),
    )  # fmt: skip
    assert nano.cost_set and veo.cost_set


def test_model_margins_without_a_cost_or_a_price(world):
    AIModel.objects.filter(slug="veo-3-1-fast").update(cost_per_video_second_usd=0, costs_usd={})
    margins = {m.name: m for m in sel.model_margins(period=P, rub_per_token=Decimal(0), usd_rub_rate=USD)}
    veo = margins["⚡ Veo 3.1 Fast"]
    assert (veo.cost_set, veo.cost_rub, veo.revenue_rub, veo.margin_share) == (False, Decimal("0.00"), 0, None)


def test_video_seconds_default_to_the_models_duration(world):
    veo = world["veo"]
    gen(world["users"][0], veo, created=at(3), status="succeeded", took=50, params={"duration_seconds": "junk"})
    margins = {m.model_id: m for m in sel.model_margins(period=P, rub_per_token=Decimal(1), usd_rub_rate=USD)}
    assert margins[veo.pk].units == 6 + 8  # veo's default_params: 8 seconds


def test_referrals_and_promos(world):
    result = sel.referrals_and_promos(period=P)
    assert (result.referral_signups, result.referral_rewards, result.referral_reward_tokens) == (1, 1, Decimal("5"))
    assert (result.promo_redemptions, result.promo_consumed, result.promo_bonus_tokens) == (2, 1, Decimal("10"))
    assert [(c.code, c.redemptions) for c in result.top_codes] == [("WELCOME2025", 1), ("FIRST50", 1)]


def test_selectors_on_an_empty_database_give_zeros(db):
    users = sel.user_stats(period=P)
    assert (users.total, users.active, users.paying, users.paying_share, users.blocked_share) == (0, 0, 0, 0.0, 0.0)
    assert sel.first_payment_conversion(period=P).rate == 0.0
    revenue = sel.revenue(period=P, stars_rub_rate=RATE)
    assert (revenue.rub, revenue.payments, revenue.arppu_rub, len(revenue.by_day)) == (0, 0, 0, 7)
    economics = sel.unit_economics(revenue=revenue, users=users)
    assert economics.arpu_rub == economics.arppu_rub == 0
    flow = sel.token_flow(period=P)
    assert (flow.sold, flow.spent, flow.bonus, len(flow.by_day)) == (0, 0, 0, 7)
    stats = sel.generation_stats(period=P)
    assert (stats.by_model, stats.total, stats.failure_rate, stats.refund_rate) == ([], 0, 0.0, 0.0)
    assert sel.failures_by_error_code(period=P) == []
    assert sel.queue_now(now=NOW) == sel.QueueNow(0, 0, 0, 0, None)
    margins = sel.model_margins(period=P, rub_per_token=Decimal(0), usd_rub_rate=USD)
    assert [m.name for m in margins] == [
        "🍌 Nano Banana 2.1",
        "⚡ Nano Banana 2 Lite",
        "🌀 Gemini Omni Flash",
        "⚡ Veo 3.1 Fast",
    ]  # the active models, zeros
    assert all(m.revenue_rub == 0 and m.cost_rub == 0 and m.margin_share is None for m in margins)
    assert sel.referrals_and_promos(period=P).top_codes == []


# --- the page ---------------------------------------------------------------------------------------------------
INDEX = "admin:index"
RANGE = {"from": "2025-03-01", "to": "2025-03-07"}


def kpis(response) -> dict[str, str]:
    """The KPI cards as rendered: {key: value text}."""
    html = response.content.decode()
    return {k: v.strip() for k, v in re.findall(r'data-kpi-value="([a-z_]+)">([^<]*)<', html)}


@pytest.fixture
def staff(client, django_user_model):
    def login(*perms: str):
        member = django_user_model.objects.create_user(f"staff{next(_seq)}", password="x", is_staff=True)
        for codename in perms:
            member.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="botapp"))
        client.force_login(member)
        return client

    return login


def test_dashboard_with_data(admin_client, world, settings):
    settings.STARS_RUB_RATE = RATE
    settings.USD_RUB_RATE = USD
    response = admin_client.get(reverse(INDEX), RANGE)
    assert response.status_code == 200
    assert response.templates[0].name == "admin/dashboard.html"
    cards = kpis(response)
    assert cards["new"] == "3" and cards["active"] == "4" and cards["dau"] == "1 / 4 / 6"
    assert cards["paying"] == "2" and cards["conversion"] == "66.7%" and cards["blocked"] == "2"
    assert cards["revenue"] == "390" and cards["payments"] == "2"
    assert cards["arpu"] == "97.50" and cards["arppu"] == "195.00" and cards["token_price"] == "6.50"
    assert cards["sold"] == "70" and cards["spent"] == "63" and cards["refunded"] == "1.50" and cards["bonus"] == "18"
    assert cards["requests"] == "8" and cards["failure_rate"] == "40.0%" and cards["refund_rate"] == "12.5%"
    assert cards["in_flight"] == "3" and cards["queue_depth"] == "2" and cards["due_polls"] == "1"
    assert cards["referral_signups"] == "1" and cards["promo_redemptions"] == "2"
    d = response.context["dashboard"]
    assert d["money"] is True
    assert d["margin_table"]["rows"][3][:4] == ["⚡ Veo 3.1 Fast", "57", "0", "370"]
    html = response.content.decode()
    for section in ('id="users"', 'id="money"', 'id="generations"', 'id="referrals"', "SAFETY", "WELCOME2025"):
        assert section in html
    # The charts: a canvas per chart whose data is the selectors' series.
    revenue = json.loads(d["revenue_chart"])
    assert revenue["labels"][0] == "01 Mar" and len(revenue["labels"]) == 7
    assert [ds["data"] for ds in revenue["datasets"]] == [[0, 150.0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 240.0, 0, 0]]
    assert html.count('<canvas class="chart"') == 4


def test_dashboard_charts_use_unfolds_local_chart_js(admin_client, world):
    html = admin_client.get(reverse(INDEX)).content.decode()
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', html)
    assert any(src.endswith("unfold/js/chart/chart.js") for src in scripts)
    assert not [src for src in scripts if src.startswith(("http:", "https:", "//"))], scripts
    assert finders.find("unfold/js/chart/chart.js")  # served by the project's static files


def test_dashboard_empty_shows_zeros(admin_client, db):
    response = admin_client.get(reverse(INDEX))
    assert response.status_code == 200
    cards = kpis(response)
    assert len(cards) == 25
    numbers = {k: v for k, v in cards.items() if k not in ("failure_rate", "refund_rate", "conversion")}
    assert set(numbers.values()) <= {"0", "0.00", "0 / 0 / 0"}, numbers
    assert cards["conversion"] == cards["failure_rate"] == cards["refund_rate"] == "0.0%"
    assert "No data" in response.content.decode()  # the empty tables say so


@pytest.mark.parametrize("params", [{"from": "not-a-date"}, {"from": "2025-03-09", "to": "2025-03-01"},
                                    {"range": "all"}, {"from": "1900-01-01"}, {"to": "9999-99-99"}])  # fmt: skip
def test_dashboard_bad_range_is_a_notice_not_an_error(admin_client, world, params):
    response = admin_client.get(reverse(INDEX), params)
    assert response.status_code == 200
    assert 'id="range-notice"' in response.content.decode()
    assert response.context["range"].preset == "30d"


@pytest.mark.parametrize("preset", ["today", "7d", "30d", "90d", "month"])
def test_dashboard_presets(admin_client, world, preset):
    response = admin_client.get(reverse(INDEX), {"range": preset})
    assert response.status_code == 200
    assert response.context["range"].preset == preset
    assert 'id="range-notice"' not in response.content.decode()


def test_staff_without_the_payment_permission_sees_no_money(staff, world):
    client = staff()
    response = client.get(reverse(INDEX), RANGE)
    assert response.status_code == 200
    d = response.context["dashboard"]
    assert d["money"] is False
    assert not {"revenue", "margins", "tokens", "price", "revenue_chart"} & set(d)
    html = response.content.decode()
    assert 'id="money"' not in html and "Revenue" not in html and "Margin" not in html and "ARPU" not in html
    cards = kpis(response)
    assert cards["new"] == "3" and cards["requests"] == "8"  # the rest of the page is there
    assert "revenue" not in cards and "arppu" not in cards
    # The cards link only to lists this user may open (none here).
    assert {kpi["href"] for group in d["kpis"].values() for kpi in group} == {""}
    assert reverse("admin:botapp_genrequest_changelist") not in html


def test_staff_with_the_payment_permission_sees_money(staff, world):
    client = staff("view_payment")
    response = client.get(reverse(INDEX), RANGE)
    assert response.context["dashboard"]["money"] is True
    assert 'id="money"' in response.content.decode()
    assert kpis(response)["payments"] == "2"
    d = response.context["dashboard"]
    assert d["money_kpis"][0]["href"].startswith(reverse("admin:botapp_payment_changelist"))
    assert d["kpis"]["generations"][0]["href"] == ""  # no view_genrequest


def test_kpi_links_open(admin_client, world):
    d = admin_client.get(reverse(INDEX)).context["dashboard"]
    hrefs = {kpi["href"] for group in (*d["kpis"].values(), d["money_kpis"], d["token_kpis"]) for kpi in group}
    hrefs.discard("")
    assert len(hrefs) >= 6
    for href in hrefs:
        assert admin_client.get(href).status_code == 200, href


def test_query_count_does_not_grow_with_the_data(admin_client, world):
    """Aggregates only: more rows of every kind do not add queries (the time is measured by bench/)."""
    with CaptureQueriesContext(connection) as first:
        admin_client.get(reverse(INDEX), RANGE)
    u1, u2 = world["users"][:2]
    for i in range(5):
        g = gen(u2, world["nano"], created=at(2 + i), status="failed", error=f"E{i}", refunded=True)
        ledger(u2, Transaction.Kind.CHARGE, "-1.5", at(2 + i), gen_request=g)
        payment(u1, amount="10", currency="XTR", paid=at(3 + i), tokens="2")
        user(f"extra{i}", created=at(1 + i), seen=at(2 + i))
    with CaptureQueriesContext(connection) as second:
        admin_client.get(reverse(INDEX), RANGE)
    assert len(second) == len(first)
    assert len(first) < 45


def test_aimodel_admin_edits_the_provider_costs(admin_client, world):
    nano = world["nano"]
    url = reverse("admin:botapp_aimodel_change", args=[nano.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    assert 'name="cost_per_image_usd"' in page.content.decode()
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {k: ("" if v is None else v) for k, v in data.items()}
    data.update(capabilities=json.dumps(nano.capabilities), default_params=json.dumps(nano.default_params),
                cost_per_image_usd="0.0390", cost_per_video_second_usd="0")  # fmt: skip
    data["is_active"] = "on"
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    nano.refresh_from_db()
    assert nano.cost_per_image_usd == Decimal("0.039")
    data["cost_per_image_usd"] = "-1"
    assert admin_client.post(url, data).status_code == 200  # refused: a cost is never negative
    nano.refresh_from_db()
    assert nano.cost_per_image_usd == Decimal("0.039")


# --- the daily rollups ------------------------------------------------------------------------------------------
def snapshot(period: Period = P) -> dict[str, object]:
    """Every selector's answer for the period (the dataclasses compare by value)."""
    price = sel.token_price(period=period, stars_rub_rate=RATE)
    return {
        "users": sel.user_stats(period=period),
        "by_day": sel.users_by_day(period=period),
        "tokens": sel.token_flow(period=period),
        "generations": sel.generation_stats(period=period),
        "errors": sel.failures_by_error_code(period=period),
        "margins": sel.model_margins(period=period, rub_per_token=price.rub, usd_rub_rate=USD),
        "referrals": sel.referrals_and_promos(period=period),
    }


def test_rollups_give_the_same_numbers_as_live(world):
    live = snapshot()
    built = rollups.rebuild(days=20, today=date(2025, 3, 8))
    assert built[0] == date(2025, 2, 16) and built[-1] == date(2025, 3, 7)
    assert DashboardDay.objects.count() == 20 and DailyLedger.objects.exists() and DailyGenerations.objects.exists()
    assert daily.split(P) == daily.Split(rolled=tuple(P.days), live=())
    assert snapshot() == live
    # Gaps: built days around live runs (the days before the data, a hole, the last days): the same again.
    DashboardDay.objects.filter(day__in=[date(2025, 3, 3), date(2025, 3, 6), date(2025, 3, 7)]).delete()
    assert daily.split(P).live == (Period(start=date(2025, 3, 3), end=date(2025, 3, 3)),
                                   Period(start=date(2025, 3, 6), end=date(2025, 3, 7)))  # fmt: skip
    assert snapshot() == live
    wide = Period(start=date(2025, 1, 1), end=date(2025, 3, 7))
    assert daily.split(wide).live[0] == Period(start=date(2025, 1, 1), end=date(2025, 2, 15))  # nothing built
    assert snapshot(wide)["tokens"].sold == live["tokens"].sold


def test_split_merges_many_gaps_into_one_live_run(db):
    for day in (1, 3, 5, 7):
        DashboardDay.objects.create(day=date(2025, 3, day), built_at=NOW)
    parts = daily.split(Period(start=date(2025, 3, 1), end=date(2025, 3, 9)))
    assert parts.live == (Period(start=date(2025, 3, 2), end=date(2025, 3, 2)),
                          Period(start=date(2025, 3, 4), end=date(2025, 3, 4)),
                          Period(start=date(2025, 3, 6), end=date(2025, 3, 9)))  # fmt: skip
    assert parts.rolled == (date(2025, 3, 1), date(2025, 3, 3), date(2025, 3, 5))


def test_built_days_are_read_from_the_rollups(world):
    rollups.rebuild(days=20, today=date(2025, 3, 8))
    before = sel.token_flow(period=P)
    ledger(world["users"][0], Transaction.Kind.BONUS, "7", at(3), bucket="bonus")  # written after the build
    assert sel.token_flow(period=P) == before  # 3 March comes from its rollup
    assert daily.ledger_rows_live(period=P) != daily.ledger_rows(period=P)
    rollups.rebuild(days=20, today=date(2025, 3, 8), only_missing=True)  # 3 March stays as it was
    assert sel.token_flow(period=P) == before
    rollups.build_day(date(2025, 3, 3))  # a rebuild picks it up
    assert sel.token_flow(period=P).bonus_gift == before.bonus_gift + 7


def test_a_rebuild_replaces_a_day(world):
    rollups.build_day(date(2025, 3, 5))
    counts = (DailyLedger.objects.count(), DailyGenerations.objects.count(), DailyActiveUser.objects.count())
    rollups.build_day(date(2025, 3, 5))
    assert (DailyLedger.objects.count(), DailyGenerations.objects.count(), DailyActiveUser.objects.count()) == counts
    assert DashboardDay.objects.filter(day=date(2025, 3, 5)).count() == 1


def test_sampled_last_seen_keeps_the_activity_history(world):
    u3 = world["users"][2]  # active on 3 March only through last_seen (and signing up)
    TgUser.objects.filter(pk=u3.pk).update(created_at=at(1, month=1))
    assert sel.user_stats(period=P).active == 4
    with clock(at(3, 20)):
        rollups.roll_up(today=date(2025, 3, 3))  # the task samples "today" (3 March) as it runs
    TgUser.objects.filter(pk=u3.pk).update(last_seen_at=at(10))  # seen again later: last_seen moves on
    assert sel.user_stats(period=P).active == 4  # still counted on 3 March, from the sample
    DailyActiveUser.objects.filter(user_id=u3.pk).delete()
    assert sel.user_stats(period=P).active == 3  # without the sample the history is lost


def test_roll_up_builds_recent_days_and_backfills(world):
    today = date(2025, 3, 8)
    built = rollups.roll_up(today=today, recent=3, backfill=5)
    # the 3 days before today (rebuilt each run), then up to 5 missing older days, newest first
    assert built == [date(2025, 3, 7), date(2025, 3, 6), date(2025, 3, 5), date(2025, 3, 4), date(2025, 3, 3),
                     date(2025, 3, 2), date(2025, 3, 1), date(2025, 2, 28)]  # fmt: skip
    again = rollups.roll_up(today=today, recent=3, backfill=5)
    assert again[:3] == built[:3] and again[3] == date(2025, 2, 27)
    assert not DashboardDay.objects.filter(day=today).exists()  # today is always live
    # Nothing before the first user's sign-up (1 February).
    rollups.roll_up(today=today, recent=3, backfill=100)
    assert DashboardDay.objects.order_by("day").first().day == date(2025, 2, 1)


def test_roll_up_on_an_empty_database(db):
    assert rollups.roll_up(today=date(2025, 3, 8)) == []


def test_rollup_task_and_command(world, settings):
    assert settings.CELERY_BEAT_SCHEDULE["dashboard-rollup"]["task"] == "botapp.tasks.rollup_dashboard"
    assert settings.CELERY_TASK_ROUTES["botapp.tasks.rollup_dashboard"]["queue"] == settings.CELERY_TICK_QUEUE
    today = timezone.localdate()
    TgUser.objects.filter(pk=world["users"][0].pk).update(created_at=timezone.now() - timedelta(days=2))
    TgUser.objects.exclude(pk=world["users"][0].pk).update(created_at=timezone.now())
    assert tasks.rollup_dashboard() == 2  # yesterday and the day before
    assert set(DashboardDay.objects.values_list("day", flat=True)) == {today - timedelta(1), today - timedelta(2)}
    out = io.StringIO()
    call_command("rollup_dashboard", "--days", "4", stdout=out)
    assert "built 2 day(s)" in out.getvalue()  # the two missing ones
    call_command("rollup_dashboard", "--days", "4", "--rebuild", stdout=out)
    assert "built 4 day(s)" in out.getvalue()


def test_duration_histogram_and_percentiles():
    assert [daily.duration_bound(s) for s in (0, 0.2, 1, 1.01, 10, 11, 59.9, 61, 3600, 3601, 9000)] == [
        1, 1, 1, 2, 10, 12, 60, 70, 3600, 7200, 10800,
    ]  # fmt: skip
    assert daily.percentile({}, 0.5) is None
    assert daily.percentile({10: 1}, 0.95) == 10.0
    histogram = {5: 50, 12: 45, 60: 5}  # 100 requests
    assert (daily.percentile(histogram, 0.5), daily.percentile(histogram, 0.95), daily.percentile(histogram, 0.96)) == (
        5.0, 12.0, 60.0,
    )  # fmt: skip
