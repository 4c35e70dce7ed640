"""Benchmark: the bot's update handling under a few hundred users clicking through the menu.

Run:
    .venv/bin/python bench/updates.py [--users 300] [--rounds 1] [--think 2.0]

What it does: a child process runs the Bot API emulator and --users emulated users; this process
runs the real dispatcher of `botapp.bot` polling the emulator over HTTP (what `manage.py runbot`
runs), so the users' load does not share the bot's event loop. Every user sends /start and clicks
through the main menu (balance, profile, settings, invite, help, create image -> back, ...),
waiting for the bot's answer before the next click plus a random pause of 0..2x --think seconds
(users also arrive spread over that time). Then the same users and clicks against a bare aiogram
echo bot (answers a message; answers a callback and edits its message: the same Bot API calls
without our middlewares, FSM, database or texts), as the baseline.

It prints, for both bots: updates/s over the run; the handling latency of an update (the time
inside `Dispatcher.feed_update`: middlewares, handler and its Bot API calls) p50/p95/max, and the
part of it not spent waiting for the Bot API (the emulator's answers); for our bot, the SQL queries
of each update (counted on the bot's database connection) and the time spent executing them, by
screen. With --think 0 the users click as fast as the bot answers: that measures the throughput
ceiling (latency then includes queueing).

Database: a fresh test database created for the run and dropped afterwards (SQLite in a temporary
file by default; PostgreSQL when DATABASE_URL points to one). FSM and dedupe: Redis when REDIS_URL is
set (under a throw-away key prefix; the per-user lock in process, as `manage.py runbot` runs), memory
otherwise. Throttling is off. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import logging
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

JSON = dict[str, Any]
# One round of clicks after /start: (button text, a text the answer contains).
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
WAIT = 60.0


# ======================================================================================================
# The users' side (a child process: the emulator and the clicking users; no Django here)
# ======================================================================================================
async def _walk(user: Any, script: str, rounds: int, think: float) -> None:
    from sandbox.telegram import inline_buttons

    if think:  # users arrive over time, not all in the same millisecond
        await asyncio.sleep(random.uniform(0, 2 * think))
    user.send_command("/start")
    screen = await user.reply(lambda m: bool(inline_buttons(m)), timeout=WAIT)
    for _ in range(rounds):
        for index, (button, marker) in enumerate(MENU_SCRIPT):
            if think:
                await asyncio.sleep(random.uniform(0, 2 * think))
            if script == "echo":
                data = ECHO_BUTTONS[index % len(ECHO_BUTTONS)]
                user.press(screen, callback_data=data)
                screen = await user.reply(lambda m, d=data: (m.get("text") or "").startswith(d), timeout=WAIT)
            else:
                user.press(screen, button)
                screen = await user.reply(lambda m, t=marker: t in (m.get("text") or ""), timeout=WAIT)


async def _run_users(emu: Any, script: str, users: int, rounds: int, think: float) -> tuple[float, int, str]:
    people = [emu.user(first_name=f"User{i}", language_code="ru") for i in range(users)]
    started = time.perf_counter()
    results = await asyncio.gather(*(_walk(p, script, rounds, think) for p in people), return_exceptions=True)
    wall = time.perf_counter() - started
    failures = [r for r in results if isinstance(r, BaseException)]
    return wall, len(failures), repr(failures[0])[:300] if failures else ""


def users_side(conn: Connection, name: str, script: str, users: int, rounds: int, think: float) -> None:
    from sandbox.telegram import BotAPIEmulator

    logging.basicConfig(level=logging.WARNING)
    with BotAPIEmulator.run_in_thread(bot_username=f"bench_{name}_bot") as emu:
        conn.send((emu.base_url, emu.token))
        assert conn.recv() == "go"
        conn.send(asyncio.run(_run_users(emu, script, users, rounds, think)))
        assert conn.recv() == "stop"


# ======================================================================================================
# The bot's side (this process)
# ======================================================================================================
@dataclass
class Sample:
    kind: str
    seconds: float = 0.0
    api_seconds: float = 0.0  # of `seconds`, waiting for Bot API answers (the emulator's share)
    queries: int = 0
    sql_seconds: float = 0.0  # executing those queries (in the bot's database thread)

    @property
    def own_seconds(self) -> float:
        return self.seconds - self.api_seconds


@dataclass
class Stats:
    samples: list[Sample] = field(default_factory=list)
    wall: float = 0.0
    errors: int = 0


current_update: contextvars.ContextVar[Sample | None] = contextvars.ContextVar("current_update", default=None)


def timed(dp: Any, stats: Stats, classify: Callable[[Any], str]) -> None:
    """Wrap the dispatcher's entry point: time each update and give it a query counter (a context
    variable, which `sync_to_async` carries into the bot's database thread)."""
    original = dp.feed_update

    async def feed_update(bot: Any, update: Any, **kwargs: Any) -> Any:
        sample = Sample(kind=classify(update))
        token = current_update.set(sample)
        started = time.perf_counter()
        try:
            return await original(bot, update, **kwargs)
        finally:
            sample.seconds = time.perf_counter() - started
            current_update.reset(token)
            stats.samples.append(sample)

    dp.feed_update = feed_update


async def time_api_calls(make_request: Any, bot: Any, method: Any) -> Any:
    """A Bot API request middleware: the time an update spends waiting for the Bot API."""
    sample = current_update.get()
    started = time.perf_counter()
    try:
        return await make_request(bot, method)
    finally:
        if sample is not None:
            sample.api_seconds += time.perf_counter() - started


def count_queries(execute, sql, params, many, context):
    sample = current_update.get()
    if sample is None:
        return execute(sql, params, many, context)
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        sample.queries += 1
        sample.sql_seconds += time.perf_counter() - started


def classify_ours(update: Any) -> str:
    if update.callback_query is not None:
        return "click " + (update.callback_query.data or "?")
    if update.message is not None and (update.message.text or "").startswith("/start"):
        return "/start (new user)"
    return update.event_type


def classify_echo(update: Any) -> str:
    return "click" if update.callback_query is not None else "message"


def echo_dispatcher() -> Any:
    from aiogram import Dispatcher, F, Router
    from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

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


async def run_bot(name: str, dp: Any, script: str, classify: Callable[[Any], str], args: argparse.Namespace) -> Stats:
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    stats = Stats()
    parent, child = multiprocessing.get_context("spawn").Pipe()
    users = multiprocessing.get_context("spawn").Process(
        target=users_side, args=(child, name, script, args.users, args.rounds, args.think), daemon=True
    )
    users.start()
    loop = asyncio.get_running_loop()
    base_url, token = await loop.run_in_executor(None, parent.recv)
    bot = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(base_url)))
    bot.session.middleware(time_api_calls)
    timed(dp, stats, classify)
    polling = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, allowed_updates=dp.resolve_used_update_types())
    )
    await asyncio.sleep(0.3)
    parent.send("go")
    stats.wall, stats.errors, first_error = await loop.run_in_executor(None, parent.recv)
    if first_error:
        print(f"  ! {stats.errors} users did not finish; first: {first_error}")
    await dp.stop_polling()
    await polling
    parent.send("stop")
    await loop.run_in_executor(None, users.join, 30)
    return stats


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def report(title: str, stats: Stats, *, queries: bool) -> None:
    ms = [s.seconds * 1000 for s in stats.samples]
    print(f"\n{title}")
    print(f"  {len(stats.samples)} updates in {stats.wall:.2f} s: {len(stats.samples) / stats.wall:,.0f} updates/s")
    own = [s.own_seconds * 1000 for s in stats.samples]
    print(
        f"  handling latency: p50 {pct(ms, 0.5):.1f} ms · p95 {pct(ms, 0.95):.1f} ms · max {max(ms, default=0):.1f} ms"
    )
    print(f"  of it not waiting for the Bot API: p50 {pct(own, 0.5):.1f} ms · p95 {pct(own, 0.95):.1f} ms")
    if not queries:
        return
    clicks = [s.queries for s in stats.samples if s.kind.startswith("click")]
    if clicks:
        print(f"  SQL queries per menu click: avg {statistics.mean(clicks):.2f} · max {max(clicks)}")
    by_kind: dict[str, list[Sample]] = defaultdict(list)
    for sample in stats.samples:
        by_kind[sample.kind].append(sample)
    print(f"  {'update':<20}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'SQL avg':>9}{'max':>5}{'SQL ms':>8}")
    for kind, samples in sorted(by_kind.items(), key=lambda item: (-len(item[1]), item[0])):
        lat = [s.seconds * 1000 for s in samples]
        qs = [s.queries for s in samples]
        row = f"  {kind:<20}{len(samples):>7}{pct(lat, 0.5):>9.1f}{pct(lat, 0.95):>9.1f}"
        sql_ms = statistics.mean(s.sql_seconds * 1000 for s in samples)
        print(f"{row}{statistics.mean(qs):>9.2f}{max(qs):>5}{sql_ms:>8.2f}")


async def main(args: argparse.Namespace) -> None:
    from asgiref.sync import sync_to_async
    from django.db import connection

    from botapp import bridge
    from botapp.bot import build_dispatcher, create_backends

    redis_url = os.environ.get("REDIS_URL", "")
    prefix = f"bench-updates-{uuid.uuid4().hex[:8]}"
    print(
        f"{args.users} users × (/start + {len(MENU_SCRIPT) * args.rounds} menu clicks), pause 0..{2 * args.think:g} s "
        f"between clicks; database {connection.vendor}, FSM/dedupe {'Redis' if redis_url else 'memory'}"
    )

    @sync_to_async(thread_sensitive=True)
    def install_query_counter() -> None:  # in the bridge's database thread
        if count_queries not in connection.execute_wrappers:
            connection.execute_wrappers.append(count_queries)

    await install_query_counter()
    ours_dp = build_dispatcher(create_backends(redis_url=redis_url, prefix=prefix, polling=True))  # as runbot
    ours = await run_bot("genstudio", ours_dp, "ours", classify_ours, args)
    echo = await run_bot("echo", echo_dispatcher(), "echo", classify_echo, args)
    await bridge.close_db()

    report("GenStudio bot (botapp.bot: middlewares, FSM, services, database)", ours, queries=True)
    report("Baseline: a bare aiogram echo bot (same emulator and clicks, no database)", echo, queries=False)
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Update handling benchmark of the bot (see the module docstring).")
    parser.add_argument("--users", type=int, default=300, help="simulated users (default 300)")
    parser.add_argument("--rounds", type=int, default=1, help="times each user walks the menu script (default 1)")
    parser.add_argument("--think", type=float, default=2.0, help="mean pause between clicks, s (default 2)")
    return parser.parse_args()


def run() -> None:
    args = parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    logging.getLogger().setLevel(logging.WARNING)
    for name in ("aiogram", "botapp"):
        logging.getLogger(name).setLevel(logging.WARNING)
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
