"""`python manage.py check_ledger`: prove that the ledger and the cached balances agree.

For every user and bucket (main -> UserBalance.balance, bonus -> UserBalance.bonus_balance) the sum of
Transaction.amount must equal the cached balance, and no balance may be negative. Each problem is
printed (user id, Telegram id, username, bucket, balance, ledger sum, difference = balance - ledger)
and the command exits non-zero; otherwise it prints one line:

    ledger OK: N users, M transactions, total main X, bonus Y

The work is a handful of set-based queries (one GROUP BY over the ledger joined to the balances), so it
stays fast for 100k users: no query per user.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.models import Sum

from botapp.models import ZERO, TgUser, Transaction, UserBalance

CENT = Decimal("0.01")
BATCH = 500  # suspect users looked at per query (stays under SQLite's bound-parameter limit)

MAIN = Transaction.Bucket.MAIN
BONUS = Transaction.Bucket.BONUS


@dataclass(frozen=True)
class Problem:
    user_id: int
    telegram_id: int | None
    username: str
    bucket: str
    balance: Decimal
    ledger: Decimal

    @property
    def difference(self) -> Decimal:
        return self.balance - self.ledger

    def describe(self) -> str:
        what = []
        if self.balance != self.ledger:
            what.append("MISMATCH")
        if self.balance < 0:
            what.append("NEGATIVE BALANCE")
        if self.ledger < 0:
            what.append("NEGATIVE LEDGER SUM")
        name = f"@{self.username}" if self.username else "-"
        return (
            f"{' + '.join(what)}: user id={self.user_id} telegram_id={self.telegram_id} {name} "
            f"bucket={self.bucket} balance={self.balance} ledger={self.ledger} difference={self.difference:+}"
        )


def _suspect_user_ids() -> list[int]:
    """Users whose balance row disagrees with the ledger (or is negative), in one set-based query.

    The comparison is done in whole cents (ROUND(x * 100)) so that it is exact on every backend:
    PostgreSQL sums NUMERIC exactly, SQLite sums decimals as floating point. The amounts themselves
    are re-read below through the ORM, which returns exact Decimals.
    """
    qn = connection.ops.quote_name
    balances = qn(UserBalance._meta.db_table)
    ledger = qn(Transaction._meta.db_table)
    sql = f"""
        SELECT b.{qn("user_id")}
        FROM {balances} b
        LEFT JOIN (
            SELECT {qn("user_id")} AS uid,
                   SUM(CASE WHEN {qn("bucket")} = %s THEN {qn("amount")} ELSE 0 END) AS main_sum,
                   SUM(CASE WHEN {qn("bucket")} = %s THEN {qn("amount")} ELSE 0 END) AS bonus_sum
            FROM {ledger}
            GROUP BY {qn("user_id")}
        ) l ON l.uid = b.{qn("user_id")}
        WHERE ROUND(b.{qn("balance")} * 100) <> ROUND(COALESCE(l.main_sum, 0) * 100)
           OR ROUND(b.{qn("bonus_balance")} * 100) <> ROUND(COALESCE(l.bonus_sum, 0) * 100)
           OR b.{qn("balance")} < 0
           OR b.{qn("bonus_balance")} < 0
        ORDER BY b.{qn("user_id")}
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [MAIN, BONUS])
        return [row[0] for row in cursor.fetchall()]


def _money(value: Decimal | None) -> Decimal:
    """Sums come back unquantized on SQLite (floating point underneath): whole cents, exactly."""
    return (value or ZERO).quantize(CENT)


def _orphan_user_ids() -> set[int]:
    """Users with ledger rows but no balance row (their balance is zero): any non-zero sum is wrong."""
    orphans = (
        Transaction.objects.filter(user__balance__isnull=True)
        .values("user_id", "bucket")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    return {row["user_id"] for row in orphans if _money(row["total"]) != 0}


def _problems_of(user_ids: list[int]) -> list[Problem]:
    """Exact per-bucket figures for a batch of suspect users (three queries per batch)."""
    sums = {
        (row["user_id"], row["bucket"]): _money(row["total"])
        for row in Transaction.objects.filter(user_id__in=user_ids)
        .values("user_id", "bucket")
        .annotate(total=Sum("amount"))
        .order_by()
    }
    cached = {
        user_id: (balance, bonus)
        for user_id, balance, bonus in UserBalance.objects.filter(user_id__in=user_ids).values_list(
            "user_id", "balance", "bonus_balance"
        )
    }
    users = {
        user_id: (telegram_id, username)
        for user_id, telegram_id, username in TgUser.objects.filter(pk__in=user_ids).values_list(
            "pk", "telegram_id", "username"
        )
    }
    problems = []
    for user_id in user_ids:
        telegram_id, username = users.get(user_id, (None, ""))
        for bucket, balance in zip((MAIN, BONUS), cached.get(user_id, (ZERO, ZERO)), strict=True):
            ledger = sums.get((user_id, bucket), ZERO)
            if balance != ledger or balance < 0 or ledger < 0:
                problems.append(Problem(user_id, telegram_id, username, bucket, balance, ledger))
    return problems


def find_problems(batch_size: int = BATCH) -> list[Problem]:
    suspects = sorted({*_suspect_user_ids(), *_orphan_user_ids()})
    problems: list[Problem] = []
    for start in range(0, len(suspects), batch_size):
        problems.extend(_problems_of(suspects[start : start + batch_size]))
    return problems


class Command(BaseCommand):
    help = "Check that every user's ledger sum equals the cached balance (per bucket) and no balance is negative."

    def handle(self, *args, **options) -> None:
        problems = find_problems()
        if problems:
            for problem in problems:
                self.stdout.write(problem.describe())
            users = len({p.user_id for p in problems})
            raise CommandError(f"ledger check FAILED: {len(problems)} problem(s) for {users} user(s)")
        totals = UserBalance.objects.aggregate(main=Sum("balance"), bonus=Sum("bonus_balance"))
        users, transactions = TgUser.objects.count(), Transaction.objects.count()
        self.stdout.write(
            f"ledger OK: {users} users, {transactions} transactions, "
            f"total main {_money(totals['main'])}, bonus {_money(totals['bonus'])}"
        )
