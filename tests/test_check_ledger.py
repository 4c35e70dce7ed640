"""`manage.py check_ledger`: the audit that proves the ledger and the cached balances agree.

Through the services the ledger can never disagree with a balance, and a balance can never be
negative (the service checks under a row lock, and CHECK constraints back it up). These tests break
the data behind the services' back (raw UPDATEs, a hand-made ledger row, a dropped constraint) to
show the audit catches what it is there to catch.
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import F

from botapp.models import Transaction, UserBalance
from botapp.services.balance import BalanceService
from botapp.services.generation import GenerationService

pytestmark = pytest.mark.django_db


def run() -> tuple[bool, str]:
    out = io.StringIO()
    try:
        call_command("check_ledger", stdout=out)
    except CommandError as exc:
        return False, out.getvalue() + str(exc)
    return True, out.getvalue()


@contextmanager
def balance_checks_disabled():
    """Let a negative balance be stored, as it could be if someone dropped the constraint."""
    table = UserBalance._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # DDL is transactional: the test's rollback restores it
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks may block ALTER TABLE
            cursor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "balance_non_negative"')
            cursor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "bonus_balance_non_negative"')
            yield
        elif connection.vendor == "sqlite":
            cursor.execute("PRAGMA ignore_check_constraints = ON")
            try:
                yield
            finally:
                cursor.execute("PRAGMA ignore_check_constraints = OFF")
        else:  # pragma: no cover
            pytest.skip(f"no recipe to disable CHECK constraints on {connection.vendor}")


def test_clean_ledger_passes_with_a_summary(make_user, nano):
    alice = make_user(balance="10.50", bonus=3)
    make_user()  # a balance row, no transactions, zero balance: fine
    GenerationService.create_request(user_id=alice.pk, ai_model_id=nano.pk, prompt="a cat")  # 1.50 from bonus
    ok, output = run()
    assert ok, output
    assert output.strip() == "ledger OK: 2 users, 3 transactions, total main 10.50, bonus 1.50"


def test_empty_database_is_ok(db):
    ok, output = run()
    assert ok
    assert output.strip() == "ledger OK: 0 users, 0 transactions, total main 0.00, bonus 0.00"


def test_exit_status_is_non_zero_on_a_problem(make_user):
    user = make_user(balance=5)
    UserBalance.objects.filter(user=user).update(balance=F("balance") + 1)
    with pytest.raises(CommandError) as info:
        call_command("check_ledger", stdout=io.StringIO())
    assert info.value.returncode == 1  # what manage.py exits with


def test_tampered_balance_is_reported(make_user):
    honest = make_user(balance=100)
    user = make_user(balance=10, bonus=2, username="mallory")
    UserBalance.objects.filter(user=user).update(balance=F("balance") + Decimal("5.25"))
    ok, output = run()
    assert not ok
    lines = [line for line in output.splitlines() if "MISMATCH" in line]
    assert len(lines) == 1
    line = lines[0]
    assert f"id={user.pk}" in line and f"telegram_id={user.telegram_id}" in line and "@mallory" in line
    assert "bucket=main" in line and "balance=15.25" in line and "ledger=10.00" in line
    assert "difference=+5.25" in line
    assert f"telegram_id={honest.telegram_id}" not in output
    assert "1 problem(s) for 1 user(s)" in output


def test_tampered_bonus_bucket_is_reported(make_user):
    user = make_user(balance=10, bonus=2)
    UserBalance.objects.filter(user=user).update(bonus_balance=0)
    ok, output = run()
    assert not ok
    assert "bucket=bonus balance=0.00 ledger=2.00 difference=-2.00" in output
    assert "bucket=main" not in output


def test_a_ledger_row_written_behind_the_service_is_reported(make_user):
    user = make_user(balance=3)
    Transaction.objects.create(
        user=user,
        kind=Transaction.Kind.CHARGE,
        bucket=Transaction.Bucket.MAIN,
        amount=Decimal("-1.10"),
        balance_after=Decimal("1.90"),
        operation_key="rogue",
        idempotency_key="rogue:main",
    )
    ok, output = run()
    assert not ok
    assert "balance=3.00 ledger=1.90 difference=+1.10" in output


def test_ledger_rows_without_a_balance_row_are_reported(make_user):
    user = make_user(balance=4)
    UserBalance.objects.filter(user=user).delete()
    ok, output = run()
    assert not ok
    assert f"id={user.pk}" in output and "balance=0.00 ledger=4.00 difference=-4.00" in output


def test_negative_balance_is_reported_even_when_the_ledger_agrees(make_user):
    """Cannot happen through BalanceService (and the CHECK constraint refuses it); only if the
    constraint is gone. The ledger is made to agree (a hand-made -1 row), so only the sign is wrong."""
    user = make_user()
    Transaction.objects.create(
        user=user,
        kind=Transaction.Kind.ADMIN_ADJUSTMENT,
        amount=Decimal("-1.00"),
        balance_after=Decimal("0.00"),  # the row's own CHECK still holds
        operation_key="rogue",
        idempotency_key="rogue:main",
    )
    with balance_checks_disabled():
        UserBalance.objects.filter(user=user).update(balance=Decimal("-1.00"))
        ok, output = run()
    assert not ok
    assert "MISMATCH" not in output
    assert "NEGATIVE BALANCE" in output and "balance=-1.00 ledger=-1.00 difference=+0.00" in output


def test_negative_balance_cannot_be_stored_while_the_constraint_holds(make_user):
    from django.db import IntegrityError, transaction

    user = make_user(balance=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        UserBalance.objects.filter(user=user).update(balance=Decimal("-1.00"))
    ok, output = run()
    assert ok, output


def test_sums_are_exact_for_many_small_amounts(make_user):
    """0.10 + 0.20 ... in floating point is not exact (SQLite sums decimals as floats); the check
    compares whole cents, so an honest ledger is never reported."""
    user = make_user(balance="0.10")
    for i in range(30):
        BalanceService.admin_adjust(user_id=user.pk, amount=Decimal("0.10"), reason="t", key=f"t:{i}")
        BalanceService.charge(user_id=user.pk, amount=Decimal("0.07"), key=f"c:{i}")
    ok, output = run()
    assert ok, output
    assert UserBalance.objects.get(user=user).balance == Decimal("0.10") + 30 * Decimal("0.03")


def test_query_count_does_not_grow_with_users(make_user, django_assert_max_num_queries):
    users = [make_user(balance=2) for _ in range(25)]
    for user in users[:10]:
        UserBalance.objects.filter(user=user).update(balance=F("balance") + 1)
    with django_assert_max_num_queries(6):
        ok, output = run()
    assert not ok
    assert output.count("MISMATCH") == 10
