"""aiogram's FSM on Redis with fewer round trips per update.

aiogram reads the user's state on every update (for the state filters), and every navigation to the
main menu clears the flow in two calls (the state, then the data): three Redis round trips per click,
each a hop to another process on a busy machine.

- `RedisFSMStorage.clear` deletes both keys with one DEL; `FSMMiddleware` hands out contexts whose
  `clear()` uses it (the memory storage keeps aiogram's two calls, which cost nothing there).
- With `cache=True` (polling: this process is the only one that handles updates, so the only writer
  of the FSM) the storage also keeps what it wrote and read in process memory, write-through: reads
  of a known user cost no round trip, and clearing a flow that is already clear costs none. Redis
  still holds everything, so a restart resumes every flow. Entries are re-read after `CACHE_SECONDS`
  and the least recent beyond `CACHE_SIZE` are forgotten. A webhook deployment (several processes)
  never caches: another process may have written since.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from aiogram import Bot
from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.context import FSMContext
from aiogram.fsm.middleware import FSMContextMiddleware
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import DEFAULT_DESTINY, StateType, StorageKey
from aiogram.fsm.storage.redis import RedisStorage

CACHE_SECONDS = 600.0
CACHE_SIZE = 100_000


class RedisFSMStorage(RedisStorage):
    def __init__(self, *args: Any, cache: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cache = cache
        # key -> (when it was cached, the state, the data as stored in Redis: JSON, or None for {})
        self._known: OrderedDict[StorageKey, tuple[float, str | None, str | None]] = OrderedDict()

    # --- the write-through cache (polling only) ---------------------------------------------------------
    def _cached(self, key: StorageKey) -> tuple[float, str | None, str | None] | None:
        entry = self._known.get(key)
        if entry is None:
            return None
        if time.monotonic() - entry[0] > CACHE_SECONDS:
            del self._known[key]
            return None
        self._known.move_to_end(key)
        return entry

    async def _entry(self, key: StorageKey) -> tuple[float, str | None, str | None]:
        entry = self._cached(key)
        if entry is not None:
            return entry
        state_key, data_key = self.key_builder.build(key, "state"), self.key_builder.build(key, "data")
        state, data = await self.redis.mget(state_key, data_key)
        return self._remember(key, _text(state), _text(data))

    def _remember(self, key: StorageKey, state: str | None, data: str | None) -> tuple[float, str | None, str | None]:
        entry = (time.monotonic(), state, data)
        self._known[key] = entry
        self._known.move_to_end(key)
        while len(self._known) > CACHE_SIZE:
            self._known.popitem(last=False)
        return entry

    # --- aiogram's storage interface --------------------------------------------------------------------
    async def get_state(self, key: StorageKey) -> str | None:
        if not self.cache:
            return await super().get_state(key)
        return (await self._entry(key))[1]

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        await super().set_state(key, state)
        if self.cache:
            value = state.state if isinstance(state, State) else state
            entry = self._cached(key)
            if entry is None:
                self._known.pop(key, None)  # the data is not known: the next read reads both
            else:
                self._remember(key, value, entry[2])

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        if not self.cache:
            return await super().get_data(key)
        data = (await self._entry(key))[2]
        return {} if data is None else dict(self.json_loads(data))

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        if not isinstance(data, dict):
            raise DataNotDictLikeError(f"Data must be a dict or dict-like object, got {type(data).__name__}")
        redis_key = self.key_builder.build(key, "data")
        dumped = self.json_dumps(data) if data else None
        if dumped is None:
            await self.redis.delete(redis_key)
        else:
            await self.redis.set(redis_key, dumped, ex=self.data_ttl)
        if self.cache:
            entry = self._cached(key)
            if entry is None:
                self._known.pop(key, None)
            else:
                self._remember(key, entry[1], dumped)

    async def clear(self, key: StorageKey) -> None:
        """The state and the data of `key` gone, in one round trip (none when known to be clear)."""
        if self.cache:
            entry = self._cached(key)
            if entry is not None and entry[1] is None and entry[2] is None:
                return
        await self.redis.delete(self.key_builder.build(key, "state"), self.key_builder.build(key, "data"))
        if self.cache:
            self._remember(key, None, None)

    async def close(self) -> None:
        self._known.clear()
        await super().close()


def _text(value: bytes | str | None) -> str | None:
    return value.decode("utf-8") if isinstance(value, bytes) else value


class FSMContextOneClear(FSMContext):
    async def clear(self) -> None:
        if isinstance(self.storage, RedisFSMStorage):
            await self.storage.clear(self.key)
        else:
            await super().clear()


class FSMMiddleware(FSMContextMiddleware):
    def get_context(
        self,
        bot: Bot,
        chat_id: int,
        user_id: int,
        thread_id: int | None = None,
        business_connection_id: str | None = None,
        destiny: str = DEFAULT_DESTINY,
    ) -> FSMContext:
        key = StorageKey(
            user_id=user_id,
            chat_id=chat_id,
            bot_id=bot.id,
            thread_id=thread_id,
            business_connection_id=business_connection_id,
            destiny=destiny,
        )
        return FSMContextOneClear(storage=self.storage, key=key)
