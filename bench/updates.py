"""Benchmark: the bot's update handling under a few hundred users clicking through the menu.

Run:
    .venv/bin/python bench/updates.py [--users 300] [--rounds 1] [--think 0.0]

What it does: starts the Bot API emulator (its own thread) and the real dispatcher of
`botapp.bot` polling it over HTTP in this process (exactly what `manage.py runbot` runs), then lets
--users emulated users each send /start and click through the main menu (balance, profile,
settings, invite, help, create image -> back, ...), every click waiting for the bot's answer before
the next one (plus --think seconds). Then the same users and clicks against a bare aiogram echo bot
(answers a message, answers a callback and edits the message: the same Bot API calls without our
middlewares, FSM, database or texts) on a second emulator, as the baseline.

It prints, for both bots: updates/s over the run, the handling latency of an update (time inside
`Dispatcher.feed_update`: middlewares, handler, our Bot API calls) p50/p95/max, and for our bot the
SQL queries per update (counted on the bot's database connection, per update), by screen.

Database: a fresh test database created for the run and dropped afterwards (SQLite in a temporary
file by default; PostgreSQL when DATABASE_URL points to one). FSM and dedupe: Redis when REDIS_URL is
set (under a throw-away key prefix), memory otherwise. Throttling is off (the users click at machine
speed). Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import logging
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from aiogram import Bot, Dispatcher, F, Router  # noqa: E402
from aiogram.client.session.aiohttp import AiohttpSession  # noqa: E402
from aiogram.client.telegram import TelegramAPIServer  # noqa: E402
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message  # noqa: E402
from asgiref.sync import sync_to_async  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from botapp.emulator import BotAPIEmulator, EmulatedUser, inline_buttons  # noqa: E402

JSON = dict[str, Any]
# The clicks of one round, after /start: (button text, text the answer contains).
MENU_SCRIPT: list[tuple[str, str]] = [
    ("Баланс", "Баланс:"),
    ("Назад", "Главное меню"),
    ("Профиль", "Уровень"),
    ("Назад", "Главное меню"),
    ("Настройки", "Настройки"),
    ("Назад", "Главное меню"),
    ("Пригласить друзей", "Ваша ссылка"),
    ("Назад", "Главное меню"),
    ("Помощь", "Как это работает"),
    ("Назад", "Главное меню"),
    ("Создать изображение", "Выберите модель"),
    ("Назад", "Главное меню"),
]
ECHO_BUTTONS = ["e:1", "e:2", "e:3", "e:4"]
WAIT = 30.0

current_update: contextvars.ContextVar[Sample | None] = contextvars.ContextVar("current_update", default=None)


@dataclass
class Sample:
    kind: str
    started: float
    seconds: float = 0.0
    queries: int = 0


@dataclass
class Stats:
    samples: list[Sample] = field(default_factory=list)
    wall: float = 0.0
    errors: int = 0

    def record(self, sample: Sample) -> None:
        self.samples.append(sample)


# --- measuring ----------------------------------------------------------------------------------------
def timed(dp: Dispatcher, stats: Stats, classify: Callable[[Any], str]) -> None:
    """Wrap the dispatcher's entry point: time each update and attach a query counter to it."""
    original = dp.feed_update

    async def feed_update(bot: Bot, update: Any, **kwargs: Any) -> Any:
        sample = Sample(kind=classify(update), started=time.perf_counter())
        token = current_update.set(sample)
        try:
            return await original(bot, update, **kwargs)
        finally:
            sample.seconds = time.perf_counter() - sample.started
            current_update.reset(token)
            stats.record(sample)

    dp.feed_update = feed_update  # type: ignore[method-assign]


def count_queries(execute, sql, params, many, context):  # noqa: ANN001 - Django's execute_wrapper signature
    sample = current_update.get()
    if sample is not None:
        sample.queries += 1
    return execute(sql, params, many, context)


@sync_to_async(thread_sensitive=True)
def install_query_counter() -> None:
    """In the bot's database thread (the bridge's one thread): count every query of an update."""
    if count_queries not in connection.execute_wrappers:
        connection.execute_wrappers.append(count_queries)


def classify_ours(update: Any) -> str:
    if update.callback_query is not None:
        return "click " + (update.callback_query.data or "?")
    if update.message is not None and (update.message.text or "").startswith("/start"):
        return "/start"
    return update.event_type


def classify_echo(update: Any) -> str:
    return "click" if update.callback_query is not None else "message"


# --- the baseline: a bare aiogram echo bot ----------------------------------------------------------------
def echo_dispatcher() -> Dispatcher:
    router = Router(name="echo")
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=data, callback_data=data) for data in ECHO_BUTTONS[:2]],
            [InlineKeyboardButton(text=data, callback_data=data) for data in ECHO_BUTTONS[2:]],
        ]
    )
    counter = iter(range(10**9))

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(message.text or "", reply_markup=keyboard)

    @router.callback_query()
    async def click(query: CallbackQuery) -> None:
        await query.answer()
        if isinstance(query.message, Message):
            await query.message.edit_text(f"{query.data} #{next(counter)}", reply_markup=keyboard)

    dp = Dispatcher()
    dp.include_router(router)
    return dp


# --- users ----------------------------------------------------------------------------------------------
async def answer_to(emu: BotAPIEmulator, user: EmulatedUser, predicate: Callable[[JSON], bool]) -> JSON:
    return await user.reply(predicate, timeout=WAIT)


async def walk_our_bot(emu: BotAPIEmulator, user: EmulatedUser, rounds: int, think: float) -> None:
    user.send_command("/start")
    screen = await answer_to(emu, user, lambda m: bool(inline_buttons(m)))
    for _ in range(rounds):
        for button, marker in MENU_SCRIPT:
            if think:
                await asyncio.sleep(random.uniform(0, 2 * think))
            user.press(screen, button)
            screen = await answer_to(emu, user, lambda m, marker=marker: marker in (m.get("text") or ""))


async def walk_echo_bot(emu: BotAPIEmulator, user: EmulatedUser, rounds: int, think: float) -> None:
    user.send_command("/start")
    screen = await answer_to(emu, user, lambda m: bool(inline_buttons(m)))
    for _ in range(rounds):
        for index in range(len(MENU_SCRIPT)):
            if think:
                await asyncio.sleep(random.uniform(0, 2 * think))
            data = ECHO_BUTTONS[index % len(ECHO_BUTTONS)]
            user.press(screen, callback_data=data)
            screen = await answer_to(emu, user, lambda m, data=data: (m.get("text") or "").startswith(data))


async def run_users(
    emu: BotAPIEmulator,
    walk: Callable[[BotAPIEmulator, EmulatedUser, int, float], Awaitable[None]],
    users: int,
    rounds: int,
    think: float,
    stats: Stats,
) -> None:
    people = [emu.user(first_name=f"User{i}", language_code="ru") for i in range(users)]
    started = time.perf_counter()
    results = await asyncio.gather(*(walk(emu, p, rounds, think) for p in people), return_exceptions=True)
    stats.wall = time.perf_counter() - started
    failures = [r for r in results if isinstance(r, BaseException)]
    stats.errors = len(failures)
    if failures:
        print(f"  ! {len(failures)} users did not finish; first: {failures[0]!r}"[:300])


async def run_bot(
    name: str, dp: Dispatcher, walk: Callable[..., Awaitable[None]], args: argparse.Namespace, classify
) -> Stats:
    stats = Stats()
    with BotAPIEmulator.run_in_thread(bot_username=f"bench_{name}_bot") as emu:
        bot = Bot(emu.token, session=AiohttpSession(api=TelegramAPIServer.from_base(emu.base_url)))
        timed(dp, stats, classify)
        polling = asyncio.create_task(
            dp.start_polling(bot, handle_signals=False, allowed_updates=dp.resolve_used_update_types())
        )
        await asyncio.sleep(0.2)
        await run_users(emu, walk, args.users, args.rounds, args.think, stats)
        await dp.stop_polling()
        await polling
    return stats


# --- report ---------------------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def report(title: str, stats: Stats, *, queries: bool) -> None:
    latencies = [s.seconds * 1000 for s in stats.samples]
    print(f"\n{title}")
    print(
        f"  {len(stats.samples)} updates in {stats.wall:.2f} s: {len(stats.samples) / stats.wall:,.0f} updates/s"
        + (f"  ({stats.errors} users failed)" if stats.errors else "")
    )
    print(
        f"  handling latency: p50 {pct(latencies, 0.5):.1f} ms · p95 {pct(latencies, 0.95):.1f} ms · "
        f"max {max(latencies, default=0):.1f} ms"
    )
    if not queries:
        return
    clicks = [s for s in stats.samples if s.kind.startswith("click m:")]
    if clicks:
        per_click = [s.queries for s in clicks]
        print(
            f"  SQL queries per menu click: avg {statistics.mean(per_click):.2f} · max {max(per_click)}"
            f"  (all updates: avg {statistics.mean(s.queries for s in stats.samples):.2f})"
        )
    by_kind: dict[str, list[Sample]] = defaultdict(list)
    for sample in stats.samples:
        by_kind[sample.kind].append(sample)
    print(f"  {'update':<22}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'queries avg':>13}{'max':>5}")
    for kind, samples in sorted(by_kind.items(), key=lambda item: -len(item[1])):
        ms = [s.seconds * 1000 for s in samples]
        qs = [s.queries for s in samples]
        print(
            f"  {kind:<22}{len(samples):>7}{pct(ms, 0.5):>9.1f}{pct(ms, 0.95):>9.1f}"
            f"{statistics.mean(qs):>13.2f}{max(qs):>5}"
        )


# --- main -----------------------------------------------------------------------------------------------
async def main(args: argparse.Namespace) -> None:
    from botapp import bridge
    from botapp.bot import build_dispatcher, create_backends

    redis_url = os.environ.get("REDIS_URL", "")
    prefix = f"bench-updates-{uuid.uuid4().hex[:8]}"
    backend = "Redis" if redis_url else "memory"
    db = connection.vendor
    print(
        f"{args.users} users × (1 /start + {len(MENU_SCRIPT) * args.rounds} menu clicks), think {args.think}s; "
        f"database {db}, FSM/dedupe {backend}, throttling off"
    )

    await install_query_counter()
    ours = await run_bot(
        "genstudio",
        build_dispatcher(create_backends(redis_url=redis_url, prefix=prefix)),
        walk_our_bot,
        args,
        classify_ours,
    )
    echo = await run_bot("echo", echo_dispatcher(), walk_echo_bot, args, classify_echo)
    await bridge.close_db()

    report("GenStudio bot (botapp.bot: middlewares, FSM, services, database)", ours, queries=True)
    report("Baseline: bare aiogram echo bot (same emulator, same clicks, no database)", echo, queries=False)
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=300, help="simulated users (default 300)")
    parser.add_argument("--rounds", type=int, default=1, help="times each user walks the menu script")
    parser.add_argument("--think", type=float, default=0.0, help="mean pause between clicks, seconds")
    return parser.parse_args()


def run() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiogram").setLevel(logging.WARNING)
    settings.THROTTLE_RATE = 0
    settings.GENERATION_DISPATCH = ""
    settings.BOT_USERNAME = "bench_genstudio_bot"
    old_name = settings.DATABASES["default"]["NAME"]
    with tempfile.TemporaryDirectory(prefix="bench-updates-") as folder:
        test_name = str(Path(folder) / "bench.sqlite3") if connection.vendor == "sqlite" else "bench_updates"
        connection.settings_dict.setdefault("TEST", {})["NAME"] = test_name
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        try:
            asyncio.run(main(args))
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    run()
