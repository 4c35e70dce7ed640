"""Outer middlewares on `update`, in the order `bot.build_dispatcher` registers them:

1. `DedupeMiddleware`: an update_id seen twice (a webhook redelivery) is handled once
   (Redis `SET NX PX` when configured, an in-memory TTL set otherwise).
2. `ThrottlingMiddleware`: a token bucket per user; floods are dropped with one hint (in the
   language of the user's Telegram client: it runs before the database is touched), and a button
   pressed twice on the same screen counts once.
   (Then aiogram's FSM context, which holds the per-user events isolation lock.)
3. `UserMiddleware`: upserts the Telegram user (one SELECT in the common case), injects
   `user: UserContext` and `lang: str`; banned users get one polite message and nothing else.

Errors are handled by `handlers.fallback` (an `errors` handler: log with context, apologise).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiogram import BaseMiddleware, Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import TelegramObject, Update, User

from botapp import bridge
from botapp.i18n import t
from botapp.services.users import TelegramProfile, language_from_code

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


# --- a tiny "seen once" store: Redis or memory -------------------------------------------------------
class OnceStore(Protocol):
    async def first_time(self, key: str, ttl: float) -> bool:
        """True the first time `key` is seen within `ttl` seconds."""
        ...

    async def close(self) -> None: ...


class MemoryOnceStore:
    """Bounded in-process TTL set (one process: polling, or tests)."""

    def __init__(self, max_size: int = 100_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._max_size = max_size

    async def first_time(self, key: str, ttl: float) -> bool:
        now = time.monotonic()
        while self._seen:
            oldest_key, expires = next(iter(self._seen.items()))
            if expires > now and len(self._seen) < self._max_size:
                break
            del self._seen[oldest_key]
        expires = self._seen.get(key)
        if expires is not None and expires > now:
            return False
        self._seen[key] = now + ttl
        self._seen.move_to_end(key)
        return True

    async def close(self) -> None:
        self._seen.clear()


class RedisOnceStore:
    """Shared by every web/bot process: a webhook redelivery may reach another process."""

    def __init__(self, redis: Any, prefix: str, *, owns_client: bool = True) -> None:
        self.redis = redis
        self.prefix = prefix
        self.owns_client = owns_client  # False when the FSM storage shares (and closes) the client

    async def first_time(self, key: str, ttl: float) -> bool:
        return bool(await self.redis.set(f"{self.prefix}:{key}", b"1", nx=True, px=max(1, int(ttl * 1000))))

    async def close(self) -> None:
        if self.owns_client:
            await self.redis.aclose()


# --- 0. in flight (graceful shutdown) -----------------------------------------------------------------
class InFlightMiddleware(BaseMiddleware):
    """Remembers the updates being handled, so that a shutdown lets them finish first
    (aiogram cancels unfinished handler tasks when polling stops)."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        task = asyncio.current_task()
        if task is None:
            return await handler(event, data)
        self.tasks.add(task)
        try:
            return await handler(event, data)
        finally:
            self.tasks.discard(task)

    async def drain(self, grace: float) -> None:
        current = asyncio.current_task()
        pending = [task for task in self.tasks if task is not current and not task.done()]
        if pending:
            log.info("waiting for %s update(s) in progress", len(pending))
            await asyncio.wait(pending, timeout=grace)


# --- 1. dedupe ------------------------------------------------------------------------------------------
class DedupeMiddleware(BaseMiddleware):
    TTL = 24 * 3600.0  # Telegram gives up redelivering long before this

    def __init__(self, store: OnceStore) -> None:
        self.store = store

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if isinstance(event, Update):
            bot: Bot = data["bot"]
            if not await self.store.first_time(f"update:{bot.id}:{event.update_id}", self.TTL):
                log.info("update %s delivered again: skipped", event.update_id)
                return None
        return await handler(event, data)


# --- 3. user --------------------------------------------------------------------------------------------
def profile_of(user: User) -> TelegramProfile:
    return TelegramProfile(
        telegram_id=user.id,
        username=user.username or "",
        first_name=user.first_name or "",
        last_name=user.last_name or "",
        language_code=user.language_code or "",
        is_premium=bool(user.is_premium),
    )


class UserMiddleware(BaseMiddleware):
    BAN_NOTICE_TTL = 24 * 3600.0

    def __init__(self, store: OnceStore) -> None:
        self.store = store

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        tg_user: User | None = data.get("event_from_user")
        if tg_user is None or tg_user.is_bot:
            return None  # channel posts, service updates without a person: nothing to do for us
        user = await bridge.upsert_user(profile_of(tg_user))
        data["user"] = user
        data["lang"] = user.language
        if user.is_banned:
            await self._refuse(event, data, user)
            return None
        return await handler(event, data)

    async def _refuse(self, event: TelegramObject, data: dict[str, Any], user: bridge.UserContext) -> None:
        """One polite message per day; callbacks and pre-checkouts still get their required answer."""
        if not isinstance(event, Update):
            return
        notice = t("errors.user_banned", user.language)
        first = await self.store.first_time(f"ban-notice:{user.telegram_id}", self.BAN_NOTICE_TTL)
        try:
            if event.pre_checkout_query:
                await event.pre_checkout_query.answer(ok=False, error_message=notice)
            elif event.callback_query:
                await event.callback_query.answer(notice if first else None, show_alert=first)
            elif first and event.message:
                await event.message.answer(notice)
        except TelegramAPIError as exc:  # blocked the bot, old query: nothing more to do
            log.info("ban notice to %s not delivered: %s", user.telegram_id, exc)


# --- 2. throttling --------------------------------------------------------------------------------------
@dataclass
class _Bucket:
    tokens: float
    updated: float
    warned: bool = False
    last_press: int | None = None
    last_press_at: float = 0.0


class ThrottlingMiddleware(BaseMiddleware):
    """A token bucket per user: `burst` updates at once, then one per `rate` seconds.

    Album parts (media groups) are free: an album of 10 photos is one action of the user.
    A second press of the same button on the same screen (same message, same text: the user did
    not see a new screen in between) within `double_press_window` seconds is answered and dropped.
    """

    double_press_window = 1.0

    def __init__(self, rate: float, burst: int = 10, max_users: int = 100_000) -> None:
        self.rate = max(rate, 0.0)
        self.burst = burst
        self.max_users = max_users
        self._buckets: OrderedDict[int, _Bucket] = OrderedDict()

    def _bucket(self, user_id: int, now: float) -> _Bucket:
        bucket = self._buckets.get(user_id)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.burst), updated=now)
            self._buckets[user_id] = bucket
            if len(self._buckets) > self.max_users:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(user_id)
            if self.rate:
                bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) / self.rate)
            else:
                bucket.tokens = float(self.burst)
            bucket.updated = now
        return bucket

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update) or self.rate <= 0 or event.pre_checkout_query:
            return await handler(event, data)  # pre-checkout must always be answered
        tg_user: User | None = data.get("event_from_user")
        if tg_user is None:
            return await handler(event, data)
        now = time.monotonic()
        bucket = self._bucket(tg_user.id, now)
        lang: str = data.get("lang") or language_from_code(tg_user.language_code)
        query = event.callback_query
        if query is not None and query.message is not None:
            screen = query.message
            text = getattr(screen, "text", None) or getattr(screen, "caption", None) or ""
            press = hash((screen.message_id, query.data or "", text))
            if bucket.last_press == press and now - bucket.last_press_at < self.double_press_window:
                await _silent(query.answer())
                return None
            bucket.last_press, bucket.last_press_at = press, now
        if event.message is not None and event.message.media_group_id:
            return await handler(event, data)
        if bucket.tokens < 1.0:
            warn, bucket.warned = not bucket.warned, True  # set before awaiting: updates run concurrently
            if query is not None:
                await _silent(query.answer(t("common.throttled", lang)))
            elif warn and event.message is not None:
                await _silent(event.message.answer(t("common.throttled", lang)))
            return None
        bucket.tokens -= 1.0
        bucket.warned = False
        return await handler(event, data)


async def _silent(call: Awaitable[Any]) -> None:
    try:
        await call
    except TelegramAPIError as exc:
        log.debug("throttle answer failed: %s", exc)
