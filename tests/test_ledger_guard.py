"""The ledger is append-only in the database (migration 0004, botapp/ledger_guard.py): raw UPDATE and
DELETE of ledger rows fail on both backends (TRUNCATE too on PostgreSQL), INSERT still works."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from botapp import ledger_guard
from botapp.models import Transaction

TABLE = Transaction._meta.db_table


def raw(sql: str, params: list | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def insert_row(user_id: int, key: str) -> None:
    raw(
        f"INSERT INTO {TABLE} (user_id, kind, bucket, amount, balance_after, description, operation_key, "
        "idempotency_key, created_at) VALUES (%s, 'bonus', 'bonus', %s, %s, 'raw insert', %s, %s, %s)",
        [user_id, Decimal("1.00"), Decimal("1.00"), key, f"{key}:bonus", timezone.now()],
    )


def refused(sql: str, params: list | None = None) -> str:
    """Run `sql`, expecting the guard to refuse it; return the database's message."""
    with pytest.raises(IntegrityError) as info, transaction.atomic():
        raw(sql, params)
    return str(info.value)


@pytest.mark.django_db
def test_guard_is_installed_by_the_migrations():
    assert ledger_guard.installed(connection), connection.vendor


@pytest.mark.django_db
def test_raw_update_and_delete_are_refused_and_insert_works(make_user):
    user = make_user(balance=5)
    row = Transaction.objects.get(user=user)

    insert_row(user.pk, "raw:insert")  # INSERT is what a ledger is for
    assert Transaction.objects.filter(user=user).count() == 2

    message = refused(f"UPDATE {TABLE} SET amount = %s WHERE id = %s", [Decimal("500.00"), row.pk])
    assert "append-only" in message and "UPDATE" in message
    message = refused(f"UPDATE {TABLE} SET description = 'edited' WHERE user_id = %s", [user.pk])
    assert "append-only" in message
    message = refused(f"DELETE FROM {TABLE} WHERE id = %s", [row.pk])
    assert "append-only" in message and "DELETE" in message
    assert "append-only" in refused(f"DELETE FROM {TABLE}")

    row.refresh_from_db()
    assert row.amount == Decimal("5.00") and row.description == "test funds"
    assert Transaction.objects.filter(user=user).count() == 2


@pytest.mark.django_db
def test_orm_update_and_delete_are_refused(make_user):
    user = make_user(balance=5)
    with pytest.raises(IntegrityError), transaction.atomic():
        Transaction.objects.filter(user=user).update(amount=Decimal("9.00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Transaction.objects.filter(user=user).delete()
    row = Transaction.objects.get(user=user)
    row.description = "edited"
    with pytest.raises(IntegrityError), transaction.atomic():
        row.save()
    assert Transaction.objects.get(user=user).amount == Decimal("5.00")


@pytest.mark.postgres
@pytest.mark.django_db
def test_truncate_is_refused_on_postgresql(make_user):
    make_user(balance=5)
    raw("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks of the test's own inserts
    assert "append-only" in refused(f"TRUNCATE {TABLE}")
    assert "append-only" in refused("TRUNCATE botapp_tguser CASCADE")
    assert Transaction.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_migration_is_reversible(make_user):
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("botapp")
    try:
        call_command("migrate", "botapp", "0003", verbosity=0)
        assert not ledger_guard.installed(connection)
        user = make_user(balance=5)
        assert raw(f"UPDATE {TABLE} SET description = 'no guard' WHERE user_id = %s", [user.pk]) == 1
    finally:
        call_command("migrate", "botapp", latest[0][1], verbosity=0)
    assert ledger_guard.installed(connection)
    assert "append-only" in refused(f"UPDATE {TABLE} SET description = 'guarded' WHERE user_id = %s", [user.pk])
