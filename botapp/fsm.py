"""aiogram's FSM with `FSMContext.clear()` in one storage call.

Every navigation to the main menu clears the user's flow: aiogram does it in two calls (the state,
then the data), two Redis round trips per click. `RedisFSMStorage.clear` deletes both keys with one
DEL; `FSMMiddleware` hands out contexts whose `clear()` uses it when the storage has it (the memory
storage keeps aiogram's two calls, which cost nothing there).
"""

from __future__ import annotations

from aiogram import Bot
from aiogram.fsm.context import FSMContext
from aiogram.fsm.middleware import FSMContextMiddleware
from aiogram.fsm.storage.base import DEFAULT_DESTINY, StorageKey
from aiogram.fsm.storage.redis import RedisStorage


class RedisFSMStorage(RedisStorage):
    async def clear(self, key: StorageKey) -> None:
        """The state and the data of `key` gone, in one round trip."""
        await self.redis.delete(self.key_builder.build(key, "state"), self.key_builder.build(key, "data"))


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
