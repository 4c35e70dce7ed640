"""Benchmark: the admin dashboard on 100,000 users and 1,000,000 ledger rows.

Run:
    .venv/bin/python bench/dashboard.py [--users 100000] [--ledger 1000000] [--days 180] [--runs 5] [--fresh]

It sets Django up itself (DJANGO_SETTINGS_MODULE=config.settings). DATABASE_URL defaults to a dedicated
local database, postgres://postgres@127.0.0.1:5432/bench_dashboard, which is created if missing and
migrated; `DATABASE_URL=sqlite:////tmp/bench-dashboard.sqlite3` measures SQLite. The data set is made
once (bulk: COPY on PostgreSQL, executemany on SQLite; a fixed random seed) and kept for later runs;
`--fresh` drops it and makes it again (only in a database whose name starts with "bench").

The data: --users users who signed up over the last --days days (3% blocked the bot, 10% invited);
payments of 15% of them (Stars and card); about 0.55 generation requests per ledger row's worth of
charges (every model of the catalogue, by kind: see KIND_SHARES; at a resolution and length the
model offers; all statuses, failures refunded, a few in flight); and the ledger: a charge per
request (split over both buckets for some), refunds, deposits with top-up bonuses, referral rewards,
promocodes, operator adjustments, and gifts to reach exactly --ledger rows.

It prints, for the same run: the median time of --runs renders of the dashboard through Django's test
client (a logged-in superuser, so every panel including money) for the default range (30 days), 90
days and a whole year; and, as a yardstick, the time of a plain `SELECT COUNT(*)` of the same four
tables (users, ledger, requests, payments), with the ratio. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_dashboard"
TABLES = ("botapp_tguser", "botapp_transaction", "botapp_genrequest", "botapp_payment")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--ledger", type=int, default=1_000_000, help="ledger rows (default 1,000,000)")
    parser.add_argument("--days", type=int, default=180, help="the data spans this many days up to now")
    parser.add_argument("--runs", type=int, default=5, help="timed renders per range (median)")
    parser.add_argument("--fresh", action="store_true", help="drop the bench data set and make it again")
    args = parser.parse_args()
    if args.users < 10 or args.ledger < args.users or args.days < 1 or args.runs < 1:
        parser.error("--users >= 10, --ledger >= --users, --days >= 1, --runs >= 1")
    return args


def _pg_params(url: str) -> tuple[str, dict]:
    parts = urlparse(url)
    params = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": unquote(parts.username or "postgres"),
        "dbname": "postgres",
        "autocommit": True,
    }
    if parts.password:
        params["password"] = unquote(parts.password)
    return unquote(parts.path.lstrip("/")), params


def prepare_database(url: str, *, fresh: bool) -> None:
    """Create the bench database if missing; with --fresh drop it first (bench databases only)."""
    if url.startswith("sqlite"):
        path = Path(unquote(urlparse(url).path))
        if fresh and path.exists():
            if not path.name.startswith("bench"):
                sys.exit(f"--fresh deletes only a bench database (a file named bench*), not {path}")
            path.unlink()
        return
    import psycopg
    from psycopg import sql

    name, params = _pg_params(url)
    with psycopg.connect(**params) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None
        if exists and fresh:
            if not name.startswith("bench"):
                sys.exit(f"--fresh drops only a bench database (a name starting with 'bench'), not {name!r}")
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = False
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def setup_django(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    if not os.environ.get("SECRET_KEY"):
        os.environ["SECRET_KEY"] = "bench-" + secrets.token_urlsafe(32)  # this process only
    prepare_database(os.environ["DATABASE_URL"], fresh=args.fresh)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# --- the data set ----------------------------------------------------------------------------------------
class Writer:
    """Bulk inserts of raw rows: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self) -> None:
        from django.db import connection

        self.connection = connection
        self.postgres = connection.vendor == "postgresql"

    def value(self, v: object) -> object:
        if self.postgres:
            return v
        if isinstance(v, datetime):
            return v.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
        if isinstance(v, Decimal):
            return str(v)
        return v

    @staticmethod
    def defaults(table: str, columns: list[str]) -> tuple[list[str], tuple]:
        """The table's NOT NULL columns that `columns` leaves out and their model defaults (a default, or ""
        for text: the database has none, Django applies them), so that a column added later does not break
        the bench."""
        from django.apps import apps
        from django.db import models

        (model,) = [m for m in apps.get_models() if m._meta.db_table == table]
        fields = [
            f for f in model._meta.concrete_fields
            if f.column not in columns and not f.null and not f.primary_key and f.get_default() is not None
        ]  # fmt: skip
        values = tuple(json.dumps(f.get_default()) if isinstance(f, models.JSONField) else f.get_default()
                       for f in fields)  # fmt: skip
        return [f.column for f in fields], values

    def write(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        extra, values = self.defaults(table, columns)
        if extra:
            columns, rows = [*columns, *extra], [(*row, *values) for row in rows]
        with self.connection.cursor() as cursor:
            if self.postgres:
                names = ", ".join(f'"{c}"' for c in columns)
                with cursor.cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(columns))
                names = ", ".join(f'"{c}"' for c in columns)
                cursor.cursor.executemany(
                    f'INSERT INTO "{table}" ({names}) VALUES ({marks})', [tuple(map(self.value, r)) for r in rows]
                )

    def reset_sequences(self) -> None:
        if not self.postgres:
            return
        with self.connection.cursor() as cursor:
            for table in (*TABLES, "botapp_promocodeactivation"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 1)) FROM {table}"
                )


# The requests' share by kind; within a kind, an active model is asked ACTIVE_WEIGHT times as often as one
# that is no longer offered (history), whatever the catalogue holds.
KIND_SHARES = {"image": 70, "video": 30}
ACTIVE_WEIGHT = 4


def model_weights(models: list) -> list[float]:
    """A weight per catalogue model: its kind's share spread over the kind's models (active ones more)."""
    per_kind: dict[str, float] = {}
    for model in models:
        per_kind[model.kind] = per_kind.get(model.kind, 0) + (ACTIVE_WEIGHT if model.is_active else 1)
    return [KIND_SHARES.get(m.kind, 0) * (ACTIVE_WEIGHT if m.is_active else 1) / per_kind[m.kind] for m in models]


def request_params(model, rng: random.Random) -> dict:
    """A request's options within the model's capabilities: a resolution (priced by `costs_usd`), and for a
    video its length."""
    params: dict = {"aspect_ratio": (model.aspect_ratios or ["1:1"])[0]}
    if model.resolutions:
        params["resolution"] = rng.choice(model.resolutions)
    if model.kind == "video":
        params["duration_seconds"] = rng.choice(model.durations or [8])
    return params


def make_data(*, users: int, ledger: int, days: int) -> None:
    from django.db import transaction

    from botapp.models import AIModel, Promocode

    rng = random.Random(20250301)
    now = datetime.now(UTC)
    span = timedelta(days=days).total_seconds()
    w = Writer()
    models = list(AIModel.objects.order_by("pk"))
    weights = model_weights(models)
    promos = list(Promocode.objects.values_list("pk", flat=True))

    def moment_after(start: datetime) -> datetime:
        left = max((now - start).total_seconds(), 1.0)
        return start + timedelta(seconds=left * rng.random() ** 2)  # skewed towards `start`

    started = time.perf_counter()
    # Users: sign-up times spread over the span, growing towards now.
    created = sorted(now - timedelta(seconds=span * (1 - rng.random() ** 0.7)) for _ in range(users))
    user_rows = []
    for i, when in enumerate(created, start=1):
        referrer = rng.randint(1, i - 1) if i > 1 and rng.random() < 0.10 else None
        user_rows.append(
            (i, 700_000_000 + i, f"bench{i}", "Bench", "", "ru", False, False, "", rng.random() < 0.03,
             f"B{i:07d}", referrer, 1, 0, when, moment_after(when))
        )  # fmt: skip
    with transaction.atomic():
        # Payments: 15% of the users pay, 1-8 times; 85% in Stars. Every table is written in time order
        # (ids growing with time), as the live system appends its rows.
        payment_rows, deposits = [], []
        payers = rng.sample(range(1, users + 1), users * 15 // 100)
        times = sorted((moment_after(created[uid - 1]), uid) for uid in payers for _ in range(rng.randint(1, 8)))
        for pid, (paid, uid) in enumerate(times, start=1):
            stars = rng.random() < 0.85
            tokens = Decimal(rng.choice((10, 25, 60, 150)))
            amount = tokens * (5 if stars else Decimal("9.9"))
            status = rng.choices(("succeeded", "refunded", "failed", "pending"), (94, 1, 3, 2))[0]
            payment_rows.append(
                (pid, uid, "telegram_stars" if stars else "yookassa", status, amount, "XTR" if stars else "RUB",
                 tokens, (tokens / 10).quantize(Decimal("0.01")), f"bench:{pid}", f"ch{pid}", "{}",
                 paid - timedelta(minutes=1), paid if status in ("succeeded", "refunded") else None,
                 paid + timedelta(days=1) if status == "refunded" else None)
            )  # fmt: skip
            if status in ("succeeded", "refunded"):
                deposits.append((uid, pid, tokens, paid))
        last_event = {i: row[-1] for i, row in enumerate(user_rows, start=1)}
        # Requests: enough that charges (some split over two rows), refunds and the rest fill the ledger.
        n_requests = int((ledger - len(deposits) * 2 - users * 0.1) / 1.35)
        request_rows, tx_rows = [], []
        tx_id = 0

        def tx(uid, kind, bucket, amount, when, *, gen=None, pay=None, promo=None):
            nonlocal tx_id
            tx_id += 1
            tx_rows.append((tx_id, uid, kind, bucket, amount, Decimal(0), gen, pay, promo, "",
                            f"bench:{tx_id}", f"bench:{tx_id}:{bucket}", when))  # fmt: skip

        for uid, pid, tokens, paid in deposits:
            tx(uid, "deposit", "main", tokens, paid, pay=pid)
            tx(uid, "deposit", "bonus", (tokens / 10).quantize(Decimal("0.01")), paid, pay=pid)
        who = [rng.randint(1, users) for _ in range(n_requests)]
        made = sorted((moment_after(created[uid - 1]), uid) for uid in who)
        for rid, (when, uid) in enumerate(made, start=1):
            model = rng.choices(models, weights)[0]
            age = (now - when).total_seconds()
            if age < 120:
                status = rng.choice(("created", "queued", "running"))
            else:
                status = rng.choices(("succeeded", "failed", "cancelled"), (90, 8, 2))[0]
            took = rng.uniform(5, 40) if model.kind == "image" else rng.uniform(40, 300)
            finished = when + timedelta(seconds=took) if status in ("succeeded", "failed", "cancelled") else None
            refunded = finished + timedelta(seconds=1) if status == "failed" else None
            params = request_params(model, rng)
            request_rows.append(
                (rid, uid, model.pk, model.slug, model.kind, "a bench prompt", "", "[]", json.dumps(params), status,
                 model.price, None, "", 1, "[]", rng.choice(("SAFETY", "TIMEOUT", "QUOTA", "")) if status == "failed"
                 else "", "", None, None, when, when, when, finished, None,
                 when + timedelta(seconds=30) if status == "running" else None, finished, refunded, 0)
            )  # fmt: skip
            if rng.random() < 0.25:  # bonus tokens first, then purchased ones: two ledger rows
                part = (model.price / 3).quantize(Decimal("0.01"))
                tx(uid, "charge", "bonus", -part, when, gen=rid)
                tx(uid, "charge", "main", -(model.price - part), when, gen=rid)
            else:
                tx(uid, "charge", "main", -model.price, when, gen=rid)
            if refunded:
                tx(uid, "refund", "main", model.price, refunded, gen=rid)
        for uid in range(1, users + 1, 10):
            tx(uid, "promo" if uid % 20 == 1 else "referral", "bonus", Decimal(10), moment_after(created[uid - 1]),
               promo=promos[0] if promos and uid % 20 == 1 else None)  # fmt: skip
        while tx_id < ledger:
            uid = rng.randint(1, users)
            tx(uid, "bonus" if tx_id % 50 else "admin_adjustment", "bonus", Decimal(1), moment_after(created[uid - 1]))
        # Every interaction comes with an update that moves last_seen on: it is at least the user's latest
        # payment and generation (the dashboard relies on that for windows reaching today).
        for paid, uid in times:
            last_event[uid] = max(last_event[uid], paid)
        for when, uid in made:
            last_event[uid] = max(last_event[uid], when)
        user_rows = [(*row[:-1], max(row[-1], last_event[row[0]])) for row in user_rows]
        w.write(
            "botapp_tguser",
            ["id", "telegram_id", "username", "first_name", "last_name", "language_code", "is_premium",
             "is_banned", "ban_reason", "bot_blocked", "referral_code", "referred_by_id", "level", "xp",
             "created_at", "last_seen_at"],
            user_rows,
        )  # fmt: skip

        w.write(
            "botapp_payment",
            ["id", "user_id", "provider", "status", "amount", "currency", "tokens", "bonus_tokens",
             "invoice_payload", "provider_charge_id", "raw", "created_at", "paid_at", "refunded_at"],
            payment_rows,
        )  # fmt: skip

        w.write(
            "botapp_genrequest",
            ["id", "user_id", "ai_model_id", "model", "kind", "prompt", "negative_prompt", "input_images", "params",
             "status", "price", "idempotency_key", "provider_operation_id", "attempts", "results", "error_code",
             "error_message", "chat_id", "status_message_id", "created_at", "queued_at", "started_at", "finished_at",
             "deadline_at", "next_poll_at", "delivered_at", "refunded_at", "xp_awarded"],
            request_rows,
        )  # fmt: skip
        w.write(
            "botapp_transaction",
            ["id", "user_id", "kind", "bucket", "amount", "balance_after", "gen_request_id", "payment_id",
             "promocode_id", "description", "operation_key", "idempotency_key", "created_at"],
            [(i, *row[1:]) for i, row in enumerate(sorted(tx_rows[:ledger], key=lambda row: row[-1]), start=1)],
        )  # fmt: skip
        w.reset_sequences()
    print(
        f"made {users:,} users, {len(payment_rows):,} payments, {n_requests:,} requests, "
        f"{min(len(tx_rows), ledger):,} ledger rows in {time.perf_counter() - started:.1f} s"
    )


def analyze() -> None:
    from django.db import connection

    if connection.vendor == "postgresql":
        connection.ensure_connection()
        raw = connection.connection
        previous = raw.autocommit
        raw.autocommit = True
        try:
            raw.execute("VACUUM ANALYZE")
        finally:
            raw.autocommit = previous
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


# --- timing ---------------------------------------------------------------------------------------------
def timed(fn, runs: int) -> float:
    fn()  # warm-up (connections, templates, caches of the database)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    args = parse_args()
    setup_django(args)
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from botapp.models import DashboardDay, TgUser, Transaction
    from botapp.selectors import daily
    from botapp.services import rollups

    if TgUser.objects.count() == 0:
        make_data(users=args.users, ledger=args.ledger, days=args.days)
        analyze()
    else:
        print("reusing the data set in the database (--fresh makes a new one)")
    if not DashboardDay.objects.exists():
        started = time.perf_counter()
        built = rollups.rebuild(days=args.days + 1)
        analyze()
        print(f"built the daily rollups of {len(built)} days in {time.perf_counter() - started:.1f} s "
              f"(once; the beat task then rebuilds {rollups.RECENT_DAYS} days per run)")  # fmt: skip
    started = time.perf_counter()
    rollups.roll_up()
    print(f"one run of the beat task (rollup_dashboard): {time.perf_counter() - started:.1f} s")
    counts = {table: None for table in TABLES}

    def count_all() -> None:
        with connection.cursor() as cursor:
            for table in TABLES:
                cursor.execute(f"SELECT COUNT(*) FROM {table}")
                counts[table] = cursor.fetchone()[0]

    admin, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(SERVER_NAME="localhost")  # one of ALLOWED_HOSTS
    client.force_login(admin)
    url = reverse("admin:index")

    def render(params: dict) -> None:
        response = client.get(url, params)
        if response.status_code != 200:
            sys.exit(f"the dashboard answered {response.status_code}")

    baseline = timed(count_all, args.runs)
    print(
        f"{connection.vendor}: {counts['botapp_tguser']:,} users, {counts['botapp_transaction']:,} ledger rows, "
        f"{counts['botapp_genrequest']:,} requests, {counts['botapp_payment']:,} payments"
    )
    assert Transaction.objects.exists()
    print(f"{'SELECT COUNT(*) of the 4 tables':<40} {baseline * 1000:8.1f} ms")
    today = datetime.now(UTC).date()
    ranges = (
        ("30 days (default)", {}),
        ("90 days", {"range": "90d"}),
        ("366 days (all the data)", {"from": (today - timedelta(days=365)).isoformat()}),
    )

    def report(label: str, params: dict, runs: int) -> None:
        seconds = timed(lambda: render(params), runs)
        ratio = seconds / baseline if baseline else float("inf")
        print(f"{label:<48} {seconds * 1000:8.1f} ms   {ratio:6.1f}x the COUNT(*)s   median of {runs}")

    for label, params in ranges:
        report(f"dashboard, {label}", params, args.runs)
    # For comparison: the same page with every day computed from the source tables (no rollups).
    all_live = daily.split
    daily.split = lambda period: daily.Split(rolled=(), live=(period,))
    try:
        for label, params in ranges:
            report(f"without rollups, {label}", params, 1)
    finally:
        daily.split = all_live


if __name__ == "__main__":
    main()
