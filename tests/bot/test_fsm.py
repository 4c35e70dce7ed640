"""The FSM's clear() in one Redis round trip (botapp/fsm.py): every click on "Main menu" clears the
flow, and the state and the data must both go."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from aiogram.fsm.storage.base import DefaultKeyBuilder, StorageKey
from aiogram.fsm.storage.memory import MemoryStorage, SimpleEventIsolation

from botapp.fsm import FSMContextOneClear, FSMMiddleware, RedisFSMStorage

KEY = StorageKey(bot_id=42, chat_id=7, user_id=7)


class _Bot:
    id = 42


async def _flow_then_clear(storage) -> tuple[object, object, dict]:
    context = FSMMiddleware(storage=storage, events_isolation=SimpleEventIsolation()).get_context(_Bot(), 7, 7)
    assert isinstance(context, FSMContextOneClear)
    await context.set_state("Flow:prompt")
    await context.set_data({"model": 3, "images": ["a"]})
    before = await context.get_state()
    await context.clear()
    return before, await context.get_state(), await context.get_data()


def test_clear_with_the_memory_storage():
    assert asyncio.run(_flow_then_clear(MemoryStorage())) == ("Flow:prompt", None, {})


def _counting(redis) -> list[tuple]:
    commands: list[tuple] = []
    original = redis.execute_command

    async def counting(*args, **kwargs):
        commands.append(args)
        return await original(*args, **kwargs)

    redis.execute_command = counting
    return commands


@pytest.mark.redis
def test_clear_with_redis_is_one_round_trip_and_removes_state_and_data():
    from redis.asyncio import Redis

    async def scenario():
        redis = Redis.from_url(os.environ["REDIS_URL"])
        storage = RedisFSMStorage(redis, key_builder=DefaultKeyBuilder(prefix=f"t-{uuid.uuid4().hex[:8]}"))
        try:
            context = FSMContextOneClear(storage=storage, key=KEY)
            await context.set_state("Flow:prompt")
            await context.set_data({"model": 3})
            commands = _counting(redis)
            await context.clear()
            del redis.execute_command  # the client's own method again
            left = [await redis.exists(storage.key_builder.build(KEY, part)) for part in ("state", "data")]
            return commands, left
        finally:
            await redis.aclose()

    commands, left = asyncio.run(scenario())
    assert [command[0] for command in commands] == ["DEL"] and len(commands[0]) == 3
    assert left == [0, 0]


@pytest.mark.redis
def test_polling_reads_known_users_from_memory_and_redis_keeps_everything():
    from redis.asyncio import Redis

    prefix = f"t-{uuid.uuid4().hex[:8]}"

    async def scenario():
        redis = Redis.from_url(os.environ["REDIS_URL"])
        try:
            storage = RedisFSMStorage(redis, key_builder=DefaultKeyBuilder(prefix=prefix), cache=True)
            commands = _counting(redis)
            assert await storage.get_state(KEY) is None and await storage.get_data(KEY) == {}
            first_read = len(commands)  # one MGET for both
            context = FSMContextOneClear(storage=storage, key=KEY)
            await context.clear()  # known to be clear: nothing to send
            after_clear = len(commands)
            await context.set_state("Flow:prompt")
            await context.update_data(model=3)  # a read from memory, one SET
            writes = len(commands) - after_clear
            data = await context.get_data()
            data["model"] = 99  # a caller's change to its copy is not the stored data
            reads = [await context.get_state(), await context.get_data()]
            after_reads = len(commands)

            other = RedisFSMStorage(redis, key_builder=DefaultKeyBuilder(prefix=prefix), cache=True)  # a restart
            restarted = [await other.get_state(KEY), await other.get_data(KEY)]
            await context.clear()
            cleared = [await storage.get_state(KEY), await redis.exists(storage.key_builder.build(KEY, "state"))]
            return first_read, after_clear - first_read, writes, reads, len(commands) - after_reads, restarted, cleared
        finally:
            await redis.aclose()

    first_read, clear_cost, writes, reads, _, restarted, cleared = asyncio.run(scenario())
    assert first_read == 1 and clear_cost == 0 and writes == 2
    assert reads == ["Flow:prompt", {"model": 3}]
    assert restarted == ["Flow:prompt", {"model": 3}]
    assert cleared == [None, 0]


@pytest.mark.redis
def test_a_webhook_process_reads_redis_every_time():
    """Several web processes share the FSM: one that cached would miss another's writes."""
    from redis.asyncio import Redis

    prefix = f"t-{uuid.uuid4().hex[:8]}"

    async def scenario():
        redis = Redis.from_url(os.environ["REDIS_URL"])
        try:
            one = RedisFSMStorage(redis, key_builder=DefaultKeyBuilder(prefix=prefix))
            two = RedisFSMStorage(redis, key_builder=DefaultKeyBuilder(prefix=prefix))
            await one.set_state(KEY, "Flow:prompt")
            seen = await two.get_state(KEY)
            await two.set_state(KEY, "Flow:confirm")
            return seen, await one.get_state(KEY)
        finally:
            await redis.aclose()

    assert asyncio.run(scenario()) == ("Flow:prompt", "Flow:confirm")
