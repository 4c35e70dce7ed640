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


@pytest.mark.redis
def test_clear_with_redis_is_one_round_trip_and_removes_state_and_data():
    from redis.asyncio import Redis

    async def scenario():
        redis = Redis.from_url(os.environ["REDIS_URL"])
        storage = RedisFSMStorage(redis, key_builder=DefaultKeyBuilder(prefix=f"t-{uuid.uuid4().hex[:8]}"))
        commands: list[tuple] = []
        original = redis.execute_command

        async def counting(*args, **kwargs):
            commands.append(args)
            return await original(*args, **kwargs)

        try:
            context = FSMContextOneClear(storage=storage, key=KEY)
            await context.set_state("Flow:prompt")
            await context.set_data({"model": 3})
            redis.execute_command = counting
            await context.clear()
            redis.execute_command = original
            left = [await redis.exists(storage.key_builder.build(KEY, part)) for part in ("state", "data")]
            return commands, left
        finally:
            await redis.aclose()

    commands, left = asyncio.run(scenario())
    assert [command[0] for command in commands] == ["DEL"] and len(commands[0]) == 3
    assert left == [0, 0]
