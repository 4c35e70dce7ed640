"""Shared fixtures. Tests run on SQLite by default; with DATABASE_URL / REDIS_URL (as CI sets them)
they run on the real PostgreSQL and Redis, and the tests marked `postgres` / `redis` run too."""

from __future__ import annotations

import importlib
import itertools
import os
from decimal import Decimal

import pytest

_ids = itertools.count(10_000_001)


def _is_postgres() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgres", "psql", "pgsql"))


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://... (CI does)")
    skip_redis = pytest.mark.skip(reason="needs Redis: set REDIS_URL=redis://... (CI does)")
    for item in items:
        if "postgres" in item.keywords and not _is_postgres():
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not os.environ.get("REDIS_URL"):
            item.add_marker(skip_redis)


def ensure_seed_data() -> None:
    """The data migrations' rows (models, promocodes, packages, levels, plans): transactional tests flush
    the database after each test, so they are put back before every database test."""
    from django.apps import apps

    importlib.import_module("botapp.migrations.0003_add_initial_ai_models").forward(apps, None)
    importlib.import_module("botapp.migrations.0014_default_subscription_plans").forward(apps, None)
    catalogue_2026 = importlib.import_module("botapp.migrations.0016_catalogue_2026_data")
    # 0003 put the 2025 seed back (its fields only): the 2026 move applies to it as on a real upgrade.
    apps.get_model("botapp", "AIModel").objects.filter(slug__in=catalogue_2026.MOVES).update(pricing={})
    catalogue_2026.forward(apps, None)
    importlib.import_module("botapp.migrations.0018_catalogue_december_2026").forward(apps, None)


@pytest.fixture(scope="session", autouse=True)
def _serialized_rollback_restores_content_types():
    """A transactional test without serialized_rollback ends with a flush that re-creates the content
    types and permissions (post_migrate), under new ids; a later test with serialized_rollback then
    re-inserts the originals from its snapshot and hit their unique names (IntegrityError), so the
    suite depended on the order of its directories. Before that restore, the re-created rows go (the
    snapshot brings back the same rows with their original ids) and the content-type cache is cleared."""
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection

    creation = type(connection.creation)
    original = creation.deserialize_db_from_string

    def deserialize_db_from_string(self, data):
        Permission.objects.using(self.connection.alias).all().delete()
        ContentType.objects.using(self.connection.alias).all().delete()
        ContentType.objects.clear_cache()
        try:
            return original(self, data)
        finally:
            ContentType.objects.clear_cache()

    creation.deserialize_db_from_string = deserialize_db_from_string
    yield
    creation.deserialize_db_from_string = original


@pytest.fixture(scope="session", autouse=True)
def _flush_lifts_the_ledger_guard():
    """Transactional tests end with a flush of every table: a TRUNCATE (PostgreSQL) or a DELETE
    (SQLite) that the ledger's append-only triggers refuse (botapp/ledger_guard.py). Only for that
    flush, and only in tests, the triggers are dropped and re-created around it."""
    from django.db import connection

    from botapp import ledger_guard

    ops = type(connection.ops)
    original = ops.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        if not ledger_guard.installed(self.connection):
            return original(self, sql_list)
        ledger_guard.uninstall(self.connection)
        try:
            return original(self, sql_list)
        finally:
            ledger_guard.install(self.connection)

    ops.execute_sql_flush = execute_sql_flush
    yield
    ops.execute_sql_flush = original


@pytest.fixture(autouse=True)
def _seed_catalogue(request):
    if request.node.get_closest_marker("django_db") or {"db", "transactional_db"} & set(request.fixturenames):
        request.getfixturevalue("_django_db_helper")
        ensure_seed_data()


@pytest.fixture(autouse=True)
def _no_dispatch(settings):
    """Unit tests dispatch nothing (requests stay created/queued); worker tests opt in to real dispatching."""
    settings.GENERATION_DISPATCH = ""


@pytest.fixture(autouse=True)
def _poll_timing_learned_per_test():
    """What the engine learns of operation times (botapp.engine.timing) lives in the process: each test
    starts without it."""
    from botapp.engine import timing

    timing.forget()
    yield
    timing.forget()


@pytest.fixture
def make_user(db):
    """make_user(balance=..., bonus=..., **fields) -> TgUser with balance and settings rows.
    Balances are funded through the ledger (admin adjustments), so check_ledger stays clean."""
    from botapp.services.balance import BalanceService
    from botapp.services.users import TelegramProfile, upsert_user

    def factory(*, balance: Decimal | str | int = 0, bonus: Decimal | str | int = 0, **fields):
        telegram_id = fields.pop("telegram_id", next(_ids))
        user, _ = upsert_user(
            TelegramProfile(
                telegram_id=telegram_id,
                username=fields.pop("username", f"user{telegram_id}"),
                first_name=fields.pop("first_name", "Test"),
                language_code=fields.pop("language_code", "ru"),
            )
        )
        for name, value in fields.items():
            setattr(user, name, value)
        if fields:
            user.save()
        if Decimal(balance):
            BalanceService.admin_adjust(
                user_id=user.pk,
                amount=Decimal(balance),
                reason="test funds",
                key=f"test-fund:{user.pk}:main",
                notify=False,
            )
        if Decimal(bonus):
            BalanceService.admin_adjust(
                user_id=user.pk,
                amount=Decimal(bonus),
                reason="test funds",
                key=f"test-fund:{user.pk}:bonus",
                bucket="bonus",
                notify=False,
            )
        return user

    return factory


@pytest.fixture
def nano(db):
    from botapp.models import AIModel

    return AIModel.objects.get(slug="nano-banana-2-1")  # the active Nano Banana (December 2026)


@pytest.fixture
def veo(db):
    from botapp.models import AIModel

    return AIModel.objects.get(slug="veo-3-1-fast")
