"""Per-user throttling shared through Redis: in webhook mode several web processes serve one user's
updates, and a flood split between them must meet one budget. The Redis bucket itself is tested
directly (burst, one hint, TTL, double press, refill, atomicity under concurrent hits)."""

from __future__ import annotations

import asyncio
import itertools
import os
import time

import pytest

from sandbox.telegram import BotAPIEmulator

pytestmark = pytest.mark.redis

_ids = itertools.count(800_000)


def _redis():
    from redis.asyncio import Redis

    return Redis.from_url(os.environ["REDIS_URL"])


def _store(client, prefix: str):
    from botapp.middlewares import RedisThrottleStore

    return RedisThrottleStore(client, prefix=prefix)


async def _hit(store, key: str = "bot:1", *, rate: float = 60.0, burst: int = 3, press=None, album=None):
    return await store.hit(key, rate=rate, burst=burst, press=press, press_window=1.0, album=album)


async def test_redis_bucket_burst_one_hint_and_a_ttl(redis_prefix):
    from botapp.middlewares import RedisThrottleStore, Verdict

    first, second = _redis(), _redis()
    a, b = _store(first, redis_prefix), _store(second, redis_prefix)
    try:
        verdicts = [await _hit(store) for store in (a, b, a, b, a, b)]
        assert verdicts == [Verdict.OK] * 3 + [Verdict.WARN, Verdict.QUIET, Verdict.QUIET], "one budget, one hint"
        assert await _hit(a, album="late") is Verdict.QUIET, "an album on an empty bucket is dropped too"
        ttl = await first.pttl(f"{redis_prefix}:bot:1")
        assert 0 < ttl <= RedisThrottleStore.ttl_ms(rate=60.0, burst=3, press_window=1.0)
        assert await _hit(a, key="bot:2") is Verdict.OK, "another user has their own bucket"
    finally:
        await a.close()
        await b.close()


async def test_redis_bucket_double_press_and_refill(redis_prefix):
    from botapp.middlewares import Verdict

    a, b = _store(_redis(), redis_prefix), _store(_redis(), redis_prefix)
    try:
        assert await _hit(a, rate=0.2, burst=1, press="screen-1") is Verdict.OK
        assert await _hit(b, rate=0.2, burst=1, press="screen-1") is Verdict.DOUBLE, "seen by the other process"
        assert await _hit(b, rate=0.2, burst=1, press="screen-2") is Verdict.WARN
        await asyncio.sleep(0.25)  # one token per 0.2 s
        assert await _hit(a, rate=0.2, burst=1) is Verdict.OK
        assert await _hit(b, rate=0.2, burst=1) is Verdict.WARN, "the hint again after a pass"
    finally:
        await a.close()
        await b.close()


async def test_redis_bucket_is_atomic_under_concurrent_hits(redis_prefix):
    from botapp.middlewares import Verdict

    stores = [_store(_redis(), redis_prefix) for _ in range(4)]
    try:
        verdicts = await asyncio.gather(*(_hit(stores[i % 4], burst=10) for i in range(200)))
        assert verdicts.count(Verdict.OK) == 10
        assert verdicts.count(Verdict.WARN) == 1
        assert verdicts.count(Verdict.QUIET) == 189
    finally:
        for store in stores:
            await store.close()


def _text_update(user: dict, text: str) -> dict:
    return {
        "update_id": next(_ids),
        "message": {
            "message_id": next(_ids),
            "date": int(time.time()),
            "chat": {"id": user["id"], "type": "private", "first_name": user["first_name"]},
            "from": user,
            "text": text,
        },
    }


@pytest.mark.throttle(5.0)  # one token per 5 s: nothing refills while the test runs
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_two_dispatchers_sharing_redis_throttle_as_one_budget(emu: BotAPIEmulator, redis_prefix):
    """Two web processes (two dispatchers, each with its own Redis client) get one user's flood,
    alternately, as a load balancer would spread it: 10 handled (the burst) and one hint, in all."""
    from aiogram.types import Update

    from botapp import bridge
    from botapp.bot import build_dispatcher, create_backends, create_bot

    bot = create_bot(emu.token, api_url=emu.base_url)
    dispatchers = [
        build_dispatcher(create_backends(redis_url=os.environ["REDIS_URL"], prefix=redis_prefix)) for _ in range(2)
    ]
    user = emu.user(first_name="Flood").info
    try:
        for dp in dispatchers:
            await dp.emit_startup(bot=bot)
        for i in range(40):
            update = Update.model_validate(_text_update(user, f"spam {i}"), context={"bot": bot})
            await dispatchers[i % 2].feed_update(bot, update)
        replies = [m.get("text", "") for m in emu.messages(user["id"])]
        hints = [text for text in replies if "Слишком быстро" in text]
        assert len(hints) == 1, replies
        assert len(replies) - len(hints) == 10, f"{len(replies) - len(hints)} of 40 handled; the burst is 10"
    finally:
        for dp in dispatchers:
            await dp.emit_shutdown(bot=bot)
        await bot.session.close()
        await bridge.close_db()


@pytest.mark.parametrize("where", ["memory", "redis"])
async def test_an_album_costs_one_token_and_its_parts_follow_its_first(where, redis_prefix):
    """Ten albums of ten photos gave 100 answers when every part was free. Now each album is one action:
    the first part takes a token, the other nine follow its verdict."""
    from botapp.middlewares import MemoryThrottleStore, Verdict

    store = MemoryThrottleStore() if where == "memory" else _store(_redis(), redis_prefix)
    try:
        verdicts = [[await _hit(store, album=f"album-{n}") for _ in range(10)] for n in range(10)]
        passed = [v for album in verdicts for v in album if v in (Verdict.OK, Verdict.FREE)]
        assert len(passed) == 30, "three albums of the burst of three, whole"
        assert verdicts[0] == [Verdict.OK] + [Verdict.FREE] * 9
        assert verdicts[3] == [Verdict.WARN] + [Verdict.QUIET] * 9, "one hint for the album, not ten"
        assert all(v is Verdict.QUIET for album in verdicts[4:] for v in album)
    finally:
        await store.close()
