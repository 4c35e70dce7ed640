"""Benchmark: ledger charges per second on PostgreSQL through `BalanceService.charge`.

Run:
    .venv/bin/python bench/ledger.py [--charges 2000] [--threads 8] [--users 1000]

It sets Django up itself (DJANGO_SETTINGS_MODULE=config.settings). DATABASE_URL defaults to a
dedicated local database, postgres://postgres@127.0.0.1:5432/bench_ledger, which is created if missing
and migrated. Every run adds its own fresh users (funded through the ledger with admin adjustments);
it never deletes anything.

It prints, for the same run:
  (a) contended:   one user charged by --threads worker threads (each its own DB connection);
  (b) uncontended: --users users, each thread charging its own share of them;
  (c) for scale: --charges/4 uncontended charges on a single connection (one thread);
  and for each a baseline (a bare `UPDATE ... SET balance = balance - x` + `INSERT` of the ledger row
  in one transaction, without the service), the service/baseline ratio, p50/p99 latency per charge,
  the result of `check_ledger`, whether the contended user's balance is exactly what the charges left,
and whether the aim "≥ 1,000 uncontended charges/s" (scenario b) was met.
Figures only: nothing is asserted about timings. A default run takes ~20 s on 2 cores.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_ledger"
PRICE = Decimal("1.50")
AIM = 1000  # uncontended charges per second


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--charges", type=int, default=2000, help="charges per scenario (default 2000)")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")
    parser.add_argument("--users", type=int, default=1000, help="users of the uncontended scenario (default 1000)")
    args = parser.parse_args()
    if args.charges < 1 or args.threads < 1 or args.users < 1:
        parser.error("--charges, --threads and --users must be positive")
    return args


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in `url` if it does not exist yet."""
    import psycopg
    from psycopg import sql

    parts = urlparse(url)
    name = unquote(parts.path.lstrip("/"))
    params = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": unquote(parts.username or "postgres"),
        "dbname": "postgres",
        "autocommit": True,
    }
    if parts.password:
        params["password"] = unquote(parts.password)
    with psycopg.connect(**params) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    url = os.environ["DATABASE_URL"]
    if not url.startswith(("postgres://", "postgresql://", "pgsql://", "psql://")):
        sys.exit(f"this benchmark measures PostgreSQL; DATABASE_URL is {url!r}")
    ensure_database(url)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# --- workloads -----------------------------------------------------------------------------------
@dataclass
class Result:
    name: str
    charges: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.charges / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        lat = sorted(self.latencies) or [0.0]
        p50 = statistics.median(lat) * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        errors = f", {len(self.errors)} ERRORS (first: {self.errors[0]})" if self.errors else ""
        return (
            f"{self.name:<34} {self.charges:>6} charges in {self.seconds:6.2f} s = {self.rate:8.0f}/s"
            f"   p50 {p50:5.1f} ms  p99 {p99:6.1f} ms{errors}"
        )


def run_threads(name: str, plan: list[list[Callable[[], None]]]) -> Result:
    """Run each thread's list of calls after a common start; the clock covers start to last finish."""
    from django.db import connection, connections

    ready = threading.Barrier(len(plan) + 1)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(calls: list[Callable[[], None]]) -> None:
        mine: list[float] = []
        failed: list[str] = []
        try:
            connection.ensure_connection()  # connect before the clock starts
            ready.wait()
            for call in calls:
                started = time.perf_counter()
                try:
                    call()
                except Exception as exc:  # a benchmark reports, never hides, a failure
                    failed.append(f"{type(exc).__name__}: {exc}")
                mine.append(time.perf_counter() - started)
        finally:
            connections.close_all()
            with lock:
                latencies.extend(mine)
                errors.extend(failed)

    workers = [threading.Thread(target=worker, args=(calls,), daemon=True) for calls in plan]
    for w in workers:
        w.start()
    ready.wait()
    started = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    return Result(name, sum(len(calls) for calls in plan), elapsed, latencies, errors)


def service_charge(user_id: int, key: str) -> Callable[[], None]:
    from botapp.services.balance import BalanceService

    return lambda: BalanceService.charge(user_id=user_id, amount=PRICE, key=key, description="bench")


def baseline_charge(user_id: int, key: str) -> Callable[[], None]:
    """The least a correct charge can do: a guarded UPDATE and the ledger INSERT, in one transaction."""
    from django.db import connection, transaction
    from django.utils import timezone

    from botapp.models import Transaction, UserBalance

    balances, ledger = UserBalance._meta.db_table, Transaction._meta.db_table
    update = (
        f"UPDATE {balances} SET balance = balance - %s, total_spent = total_spent + %s, updated_at = %s "
        "WHERE user_id = %s AND balance >= %s RETURNING balance"
    )
    insert = (
        f"INSERT INTO {ledger} (user_id, kind, bucket, amount, balance_after, description, operation_key, "
        "idempotency_key, created_at) VALUES (%s, 'charge', 'main', %s, %s, 'bench baseline', %s, %s, %s)"
    )

    def call() -> None:
        now = timezone.now()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(update, [PRICE, PRICE, now, user_id, PRICE])
            row = cursor.fetchone()
            if row is None:
                raise RuntimeError("not enough tokens")
            cursor.execute(insert, [user_id, -PRICE, row[0], key, f"{key}:main", now])

    return call


def make_users(run: str, count: int, funds: Decimal) -> list[int]:
    """Fresh users for this run, funded through the ledger (admin adjustments), in parallel."""
    from botapp.models import TgUser, UserBalance
    from botapp.services.balance import BalanceService

    base = int(time.time() * 1000) * 10_000  # unique Telegram ids per run
    users = TgUser.objects.bulk_create(
        [TgUser(telegram_id=base + i, username=f"bench_{run}_{i}", first_name="Bench") for i in range(count)]
    )
    UserBalance.objects.bulk_create([UserBalance(user=u) for u in users])
    ids = [u.pk for u in users]

    def fund(user_id: int) -> Callable[[], None]:
        return lambda: BalanceService.admin_adjust(
            user_id=user_id, amount=funds, reason="bench funds", key=f"bench:{run}:fund:{user_id}", notify=False
        )

    result = run_threads("funding", [[fund(uid) for uid in ids[t::4]] for t in range(4)])
    if result.errors:
        sys.exit(f"funding failed: {result.errors[0]}")
    return ids


def split(charges: int, threads: int) -> list[int]:
    return [charges // threads + (1 if t < charges % threads else 0) for t in range(threads)]


def main() -> None:
    args = parse_args()
    setup_django()
    from django.core.management import call_command
    from django.core.management.base import CommandError
    from django.db import connection

    from botapp.models import UserBalance

    run = uuid.uuid4().hex[:8]
    with connection.cursor() as cursor:
        server = cursor.connection.info.server_version
        cursor.execute("SELECT current_setting('synchronous_commit'), current_setting('fsync')")
        sync_commit, fsync = cursor.fetchone()
    print(
        f"ledger benchmark {run}: PostgreSQL {server // 10000}.{server % 10000} (synchronous_commit={sync_commit}, "
        f"fsync={fsync}), database {connection.settings_dict['NAME']}, {os.cpu_count()} CPUs, "
        f"{args.threads} threads, {args.charges} charges per scenario of {PRICE} tokens"
    )

    started = time.perf_counter()
    counts = split(args.charges, args.threads)  # (a): charges per thread
    b_threads = min(args.threads, args.users)  # (b): every thread needs users of its own
    b_counts = split(args.charges, b_threads)
    single_charges = max(1, args.charges // 4)  # (c)
    # Fund each user for the most any of them is charged in (b) and (c), service and baseline, +1 spare.
    per_user = 2 * (-(-b_counts[0] // (args.users // b_threads)) + -(-single_charges // args.users)) + 1
    users = make_users(run, args.users, PRICE * per_user)
    (hot,) = make_users(f"{run}h", 1, PRICE * (2 * args.charges + 1))
    print(f"set-up: {args.users + 1} users funded through the ledger in {time.perf_counter() - started:.1f} s\n")

    def contended(factory, tag):
        return [[factory(hot, f"bench:{run}:{tag}:{t}:{i}") for i in range(n)] for t, n in enumerate(counts)]

    def uncontended(factory, tag):
        own = [users[t::b_threads] for t in range(b_threads)]
        return [
            [factory(own[t][i % len(own[t])], f"bench:{run}:{tag}:{t}:{i}") for i in range(n)]
            for t, n in enumerate(b_counts)
        ]

    def single(factory, tag):
        return [[factory(users[i % len(users)], f"bench:{run}:{tag}:0:{i}") for i in range(single_charges)]]

    results = {
        "a": run_threads("(a) contended, BalanceService", contended(service_charge, "a")),
        "a0": run_threads("(a) contended, baseline SQL", contended(baseline_charge, "a0")),
        "b": run_threads("(b) uncontended, BalanceService", uncontended(service_charge, "b")),
        "b0": run_threads("(b) uncontended, baseline SQL", uncontended(baseline_charge, "b0")),
        # one connection, for scale: how much the threads add on top of a single worker
        "c": run_threads("(c) 1 thread, BalanceService", single(service_charge, "c")),
        "c0": run_threads("(c) 1 thread, baseline SQL", single(baseline_charge, "c0")),
    }
    for result in results.values():
        print(result.line())
    print()
    for tag, label in (("a", "contended"), ("b", "uncontended"), ("c", "1 thread")):
        service, baseline = results[tag], results[tag + "0"]
        ratio = service.rate / baseline.rate if baseline.rate else 0.0
        print(f"{label:<12} service / baseline = {ratio:.2f} ({service.rate:.0f}/s vs {baseline.rate:.0f}/s)")

    hot_balance = UserBalance.objects.get(user_id=hot).balance
    expected = PRICE * (2 * args.charges + 1) - PRICE * (results["a"].charges + results["a0"].charges)
    expected += PRICE * (len(results["a"].errors) + len(results["a0"].errors))
    verdict = "consistent" if hot_balance == expected else "WRONG"
    print(f"contended user's balance {hot_balance} (expected {expected}): {verdict}")

    out = io.StringIO()
    try:
        call_command("check_ledger", stdout=out)
        ledger = out.getvalue().strip()
    except CommandError as exc:
        problems = out.getvalue().strip().splitlines()
        ledger = f"{exc}\n  " + "\n  ".join(problems[:10])
    print(f"check_ledger: {ledger}")

    rate = results["b"].rate
    verdict = "MET" if rate >= AIM and not results["b"].errors else "NOT MET"
    print(f"aim >= {AIM:,} uncontended charges/s: {verdict} ({rate:.0f}/s)")
    print(f"total time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
