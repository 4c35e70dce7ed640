"""Benchmark: one broadcast to 10,000 users through the real sender to the Bot API emulator.

Run:
    .venv/bin/python bench/broadcast.py [--users 10000] [--rate 200] [--threads 16] [--blocked 0.02]
                                        [--floods 8] [--sqlite] [--no-redis]

What it does: starts the Bot API emulator in a thread, creates --users Telegram users (in the emulator
and in the database), makes 2% of them block the bot (the emulator answers 403), scripts --floods
429s (half for single chats, half for whichever send comes next, retry_after 1 s), creates a broadcast
to everyone and runs it with the service's runner in a child process, as a worker would run it (or
in this process with --in-process; the emulator always runs here) (botapp.services.broadcasts.run:
recipient rows created in batches, each claimed by a conditional UPDATE, --threads concurrent sends,
paced by BROADCAST_RATE=--rate through the one sender). TELEGRAM_GLOBAL_RATE is set far above the
broadcast rate, so that the broadcast's own limit is the one measured.

It prints the sustained send rate (sendMessage calls the emulator received per second, from the first
to the last) against the configured limit, and the ratio; the time to create the recipient rows; the
duplicates (chats that got the message more than once) and the losses (recipients still pending or
sending, or with an unknown outcome, at the end). Figures only; nothing is asserted.

Databases: PostgreSQL (postgres://postgres@127.0.0.1:5432/bench_broadcast, re-created) and Redis
(redis://127.0.0.1:6379/13, the rate limiter) when they answer, else SQLite in a temporary folder and
the in-process limiter (`--sqlite`, `--no-redis` force those).
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.services import postgres_available, recreate_postgres_database, redis_available  # noqa: E402

PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "bench_broadcast"
REDIS_BENCH_URL = "redis://127.0.0.1:6379/13"
TOKEN = "7300000003:AAbench-broadcast-token"
TEXT = "📣 <b>New:</b> Veo 3.1 Pro is here. Try it from the menu!"




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200.0, help="BROADCAST_RATE (messages/s)")
    parser.add_argument("--threads", type=int, default=16, help="BROADCAST_THREADS")
    parser.add_argument("--blocked", type=float, default=0.02, help="share of users who blocked the bot")
    parser.add_argument("--floods", type=int, default=8, help="429 answers scripted")
    parser.add_argument("--in-process", action="store_true", help="run the runner in this process too")
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--no-redis", action="store_true")
    args = parser.parse_args()

    from sandbox.telegram import BotAPIEmulator

    folder = Path(tempfile.mkdtemp(prefix="bench-broadcast-"))
    use_pg = not args.sqlite and postgres_available(PG_ADMIN_URL)
    use_redis = not args.no_redis and redis_available(REDIS_BENCH_URL)
    emulator = BotAPIEmulator(TOKEN).start_in_thread()
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-" + secrets.token_urlsafe(32),
            "DATABASE_URL": (
                recreate_postgres_database(PG_ADMIN_URL, PG_BENCH_DB)
                if use_pg
                else f"sqlite:///{folder / 'bench.sqlite3'}"
            ),
            "DB_CONN_MAX_AGE": "600",
            "REDIS_URL": REDIS_BENCH_URL if use_redis else "",
            "CELERY_BROKER_URL": "filesystem://",
            "CELERY_BROKER_FOLDER": str(folder / "broker"),
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": emulator.base_url,
            "MEDIA_ROOT": str(folder / "media"),
            "BROADCAST_RATE": str(args.rate),
            "BROADCAST_THREADS": str(args.threads),
            "TELEGRAM_GLOBAL_RATE": str(max(1000.0, args.rate * 5)),
            "TELEGRAM_GLOBAL_BURST": "50",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from botapp.models import Broadcast, BroadcastRecipient, TgUser, UserBalance, UserSettings
    from botapp.services import broadcasts as service

    print(
        f"database: {'PostgreSQL' if use_pg else 'SQLite (temporary file)'}; "
        f"rate limiter: {'Redis' if use_redis else 'in process'}; "
        f"{args.users} users, BROADCAST_RATE={args.rate:g}/s, {args.threads} threads"
    )
    started = time.monotonic()
    emu_ids = [emulator.user(first_name=f"u{n}", language_code="en").id for n in range(args.users)]
    TgUser.objects.bulk_create(
        [TgUser(telegram_id=tid, first_name="Bench", referral_code=f"B{n:09d}") for n, tid in enumerate(emu_ids)],
        batch_size=2000,
    )
    pks = list(TgUser.objects.order_by("pk").values_list("pk", flat=True))
    UserBalance.objects.bulk_create([UserBalance(user_id=pk) for pk in pks], batch_size=2000)
    UserSettings.objects.bulk_create([UserSettings(user_id=pk, language="en") for pk in pks], batch_size=2000)
    rng = random.Random(7)
    blocked = set(rng.sample(emu_ids, int(len(emu_ids) * args.blocked)))
    for chat_id in blocked:
        emulator.block_bot(chat_id, notify=False)
    for chat_id in rng.sample([i for i in emu_ids if i not in blocked], args.floods // 2):
        emulator.fail_next("sendMessage", 429, retry_after=1, chat_id=chat_id)
    for _ in range(args.floods - args.floods // 2):
        emulator.fail_next("sendMessage", 429, retry_after=1)
    print(f"setup: {time.monotonic() - started:.1f} s ({len(blocked)} blocked chats, {args.floods} scripted 429s)")

    broadcast = Broadcast.objects.create(text=TEXT, button_screen="main")
    # Warm up what a running worker has loaded already (aiogram's types build their schemas on import).
    service.keyboard(broadcast=broadcast, lang="en")
    service.get_sender()._ensure()
    service._dispatch = lambda broadcast_id, countdown=None: None  # run here, not through a worker
    service.start(broadcast_id=broadcast.pk, by="bench")
    emulator.reset_calls()
    t0, t0_epoch = time.monotonic(), time.time()
    if args.in_process:
        service.run_inline(broadcast_id=broadcast.pk)
    else:  # the runner in its own process (as in a worker), the emulator here: one interpreter lock each
        code = (
            "import django; django.setup(); from botapp.services import broadcasts; "
            f"broadcasts.run_inline(broadcast_id={broadcast.pk}); "
            "from botapp.telegram.sender import close_sender; close_sender()"  # as a worker does at shutdown
        )
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=os.environ, check=True)
    wall = time.monotonic() - t0

    broadcast.refresh_from_db()
    calls = emulator.calls("sendMessage")
    first, last = min(c.time for c in calls), max(c.time for c in calls)
    span = max(last - first, 1e-9)
    rate = (len(calls) - 1) / span
    statuses = Counter(BroadcastRecipient.objects.filter(broadcast=broadcast).values_list("status", flat=True))
    per_chat = Counter(c.chat_id for c in calls if c.ok)
    duplicates = sum(1 for n in per_chat.values() if n > 1)
    received = sum(1 for chat_id in emu_ids if any(m.get("text") for m in emulator.messages(chat_id)))
    lost = statuses.get("pending", 0) + statuses.get("sending", 0) + statuses.get("unknown", 0)
    prepare = broadcast.total
    print(f"recipients: {prepare}; the first send {first - t0_epoch:.1f} s after the start (rows created in batches)")
    print(f"the last send {t0_epoch + wall - last:.1f} s before the end of the run")
    print(
        f"sendMessage calls: {len(calls)} in {span:.1f} s (first to last) -> sustained {rate:.1f}/s "
        f"against BROADCAST_RATE {args.rate:g}/s = {rate / args.rate:.1%} of the limit"
    )
    print(f"wall time of the run (rows + sends + finish): {wall:.1f} s")
    print(
        "outcomes: "
        + ", ".join(f"{status} {statuses.get(status, 0)}" for status in ("sent", "blocked", "failed", "unknown"))
        + f"; status {broadcast.status}"
    )
    print(f"chats that received it: {received} (expected {args.users - len(blocked)})")
    print(f"duplicates (a chat that got it more than once): {duplicates}")
    print(f"lost (pending, sending or unknown at the end): {lost}")
    from botapp.telegram.sender import close_sender

    close_sender()  # the runner's Telegram session, closed (not left to the garbage collector)
    emulator.stop_in_thread()


if __name__ == "__main__":
    main()
