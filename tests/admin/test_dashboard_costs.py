"""The dashboard's margin per model prices what each model made at Google's cost by resolution
(`AIModel.costs_usd`, from migration 0018), summed into the generation rollup when a day is built.

The data set (`made`), on 5 March 2025: Nano Banana 2.1 made a 1K image (0.067 USD) and a 4K one
(0.151), and failed one 4K request (no cost); Gemini Omni Flash made a 5-second 360p clip (5 x 0.023)
and a 10-second 1080p one (10 x 0.10). Each request is charged in purchased tokens, the failed one
refunded: the margin's every figure is known.
"""

from __future__ import annotations

import importlib
import itertools
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext

from botapp.models import AIModel, DailyGenerations, DashboardDay, GenRequest, TgUser, Transaction
from botapp.selectors import daily
from botapp.selectors import dashboard as sel
from botapp.selectors.daily import Period
from botapp.services import rollups

pytestmark = pytest.mark.django_db

DAY = date(2025, 3, 5)
TODAY = date(2025, 3, 8)
P = Period(start=date(2025, 3, 1), end=date(2025, 3, 7))
USD = Decimal("80")
PER_TOKEN = Decimal("6.5")
_seq = itertools.count(1)


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2025, 3, day, hour, tzinfo=UTC)


@contextmanager
def clock(moment: datetime):
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def gen(who: TgUser, model: AIModel, params: dict, *, created: datetime, status: str = "succeeded") -> GenRequest:
    row = GenRequest.objects.create(
        user=who, ai_model=model, model=model.slug, kind=model.kind, prompt="p", params=params, status=status,
        price=model.price, finished_at=created + timedelta(seconds=30),
        refunded_at=created + timedelta(minutes=5) if status == "failed" else None,
    )  # fmt: skip
    GenRequest.objects.filter(pk=row.pk).update(created_at=created)
    kind = Transaction.Kind
    entries = [(kind.CHARGE, -model.price, created)]
    if status == "failed":
        entries.append((kind.REFUND, model.price, created + timedelta(minutes=5)))
    for what, amount, when in entries:
        n = next(_seq)
        with clock(when):
            Transaction.objects.create(user=who, kind=what, bucket="main", amount=amount, balance_after=0,
                                       operation_key=f"cost:{n}", idempotency_key=f"cost:{n}:main",
                                       gen_request=row)  # fmt: skip
    return row


@pytest.fixture
def made(db):
    nano = AIModel.objects.get(slug="nano-banana-2-1")
    omni = AIModel.objects.get(slug="gemini-omni-flash")
    assert nano.costs_usd == {"1K": "0.067", "2K": "0.101", "4K": "0.151"}  # Google's, from migration 0018
    assert omni.costs_usd == {"360p": "0.023", "720p": "0.05", "1080p": "0.10", "4k": "0.21"}
    assert (nano.price, omni.price) == (Decimal("1.50"), Decimal("8.00"))
    who = TgUser.objects.create(telegram_id=8_100_001, username="costs")
    TgUser.objects.filter(pk=who.pk).update(created_at=at(1), last_seen_at=at(DAY.day))
    gen(who, nano, {"resolution": "1K"}, created=at(DAY.day, 9))
    gen(who, nano, {"resolution": "4K"}, created=at(DAY.day, 10))
    gen(who, nano, {"resolution": "4K"}, created=at(DAY.day, 11), status="failed")
    gen(who, omni, {"resolution": "360p", "duration_seconds": 5}, created=at(DAY.day, 12))
    gen(who, omni, {"resolution": "1080p", "duration_seconds": 10}, created=at(DAY.day, 13))
    return {"nano": nano, "omni": omni, "user": who}


def margins() -> dict[str, sel.ModelMargin]:
    return {m.name: m for m in sel.model_margins(period=P, rub_per_token=PER_TOKEN, usd_rub_rate=USD)}


def figures(margin: sel.ModelMargin) -> tuple:
    return (margin.succeeded, margin.units, margin.cost_usd, margin.cost_rub, margin.revenue_rub, margin.margin_rub)


NANO = (2, 2, Decimal("0.2180"), Decimal("17.44"), Decimal("19.50"), Decimal("2.06"))  # 0.067 + 0.151; 3 x 1.5 - 1.5
OMNI = (2, 15, Decimal("1.1150"), Decimal("89.20"), Decimal("104.00"), Decimal("14.80"))  # 5 x 0.023 + 10 x 0.10


def test_the_margin_prices_each_request_at_its_resolution_live_and_rolled_up(made):
    assert daily.split(P).rolled == ()  # nothing built: every day live
    live = margins()
    assert figures(live["🍌 Nano Banana 2.1"]) == NANO
    assert figures(live["🌀 Gemini Omni Flash"]) == OMNI
    assert live["🍌 Nano Banana 2.1"].cost_set and live["🌀 Gemini Omni Flash"].cost_set

    rollups.rebuild(days=7, today=TODAY)
    assert daily.split(P).live == ()
    rows = {(r.ai_model_id, r.status): r for r in DailyGenerations.objects.filter(day=DAY)}
    assert rows[(made["nano"].pk, "succeeded")].cost_usd == Decimal("0.218")
    assert rows[(made["nano"].pk, "failed")].cost_usd == 0  # a failed request costs nothing
    assert rows[(made["omni"].pk, "succeeded")].cost_usd == Decimal("1.115")
    assert margins() == live

    rollups.roll_up(today=TODAY)  # the beat task's refresh: the same figures
    assert margins() == live


def test_built_days_never_read_the_requests_or_the_ledger(made):
    rollups.rebuild(days=7, today=TODAY)
    with CaptureQueriesContext(connection) as queries:
        rows = margins()
    assert figures(rows["🍌 Nano Banana 2.1"]) == NANO
    tables = " ".join(q["sql"] for q in queries.captured_queries)
    assert "botapp_genrequest" not in tables and "botapp_transaction" not in tables


def test_a_cost_change_shows_on_the_days_rolled_up_afterwards(made):
    rollups.build_day(DAY)
    nano = made["nano"]
    AIModel.objects.filter(pk=nano.pk).update(costs_usd={"1K": "0.05", "2K": "0.101", "4K": "0.2"})
    assert figures(margins()["🍌 Nano Banana 2.1"]) == NANO  # 5 March was built at the old costs

    # A day built after the change (here 6 March, computed live until it is built) is priced at the new costs.
    gen(made["user"], nano, {"resolution": "4K"}, created=at(6))
    changed = margins()["🍌 Nano Banana 2.1"]
    assert (changed.units, changed.cost_usd) == (3, Decimal("0.4180"))  # 0.218 + 0.2
    rollups.build_day(date(2025, 3, 6))
    assert margins()["🍌 Nano Banana 2.1"] == changed

    rollups.build_day(DAY)  # a rebuild of 5 March picks the new costs up
    rebuilt = margins()["🍌 Nano Banana 2.1"]
    assert (rebuilt.cost_usd, rebuilt.cost_rub) == (Decimal("0.4500"), Decimal("36.00"))  # 0.05 + 0.2 + 0.2


def test_a_resolution_without_a_cost_is_priced_at_the_flat_cost(made):
    omni = made["omni"]
    AIModel.objects.filter(pk=omni.pk).update(costs_usd={"360p": "0.023"}, cost_per_video_second_usd=Decimal("0.07"))
    assert margins()["🌀 Gemini Omni Flash"].cost_usd == Decimal("0.8150")  # 5 x 0.023 + 10 x 0.07


def test_cost_set_is_any_cost_entered_for_the_model(made):
    nano, omni = made["nano"], made["omni"]
    AIModel.objects.filter(pk=nano.pk).update(cost_per_image_usd=0)  # the table alone is a cost
    AIModel.objects.filter(pk=omni.pk).update(cost_per_video_second_usd=0, costs_usd={})
    rows = margins()
    assert rows["🍌 Nano Banana 2.1"].cost_set
    assert figures(rows["🍌 Nano Banana 2.1"]) == NANO  # each resolution priced by the table
    omni_row = rows["🌀 Gemini Omni Flash"]
    assert (omni_row.cost_set, omni_row.cost_usd, omni_row.margin_rub) == (False, 0, Decimal("104.00"))


def test_the_migration_fills_the_days_already_built(made):
    fill_costs = importlib.import_module("botapp.migrations.0019_rollup_cost").fill_costs
    rollups.rebuild(days=7, today=TODAY)
    DailyGenerations.objects.update(cost_usd=0)  # as the column comes in
    fill_costs(apps, None)
    rows = margins()
    assert figures(rows["🍌 Nano Banana 2.1"]) == NANO and figures(rows["🌀 Gemini Omni Flash"]) == OMNI


def test_the_migration_leaves_days_not_built_alone(made):
    fill_costs = importlib.import_module("botapp.migrations.0019_rollup_cost").fill_costs
    fill_costs(apps, None)  # no day built: nothing to fill
    assert not DashboardDay.objects.exists() and not DailyGenerations.objects.exists()
