"""Outer middlewares on `update`, in the order `bot.build_dispatcher` registers them:

1. `DedupeMiddleware`: an update_id seen twice (a webhook redelivery) is handled once
   (Redis `SET NX PX` when configured, an in-memory TTL set otherwise).
2. `ThrottlingMiddleware`: a token bucket per user; floods are dropped with one hint (in the
   language of the user's Telegram client: it runs before the database is touched), and a button
   pressed twice on the same screen counts once.
3. `TextGuardMiddleware`: an update carrying text the database cannot store (NUL, lone
   surrogates) is refused politely before anything touches the database (see its docstring).
   (Then aiogram's FSM context, which holds the per-user events isolation lock.)
4. `UserMiddleware`: upserts the Telegram user (one SELECT in the common case), injects
   `user: UserContext` and `lang: str`; banned users get one polite message and nothing else.
   The profile's names are cleaned of what the database cannot store.

Errors are handled by `handlers.fallback` (an `errors` handler: log with context, apologise).
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiogram import BaseMiddleware, Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import (
    CallbackQuery,
    Chat,
    ExternalReplyInfo,
    InaccessibleMessage,
    Message,
    PreCheckoutQuery,
    TelegramObject,
    TextQuote,
    Update,
    User,
)
from pydantic import BaseModel

from botapp import bridge
from botapp.i18n import t
from botapp.services.text import is_storable, storable
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


# --- 3. text the database cannot store -----------------------------------------------------------------
# Not the user's input in this update: profiles (cleaned where they are stored, see `profile_of`) and
# other messages (the one replied to, quoted or pinned; the bot's own message under a button).
_NOT_INPUT = (User, Chat, Message, InaccessibleMessage, TextQuote, ExternalReplyInfo)


def has_unstorable_text(event: TelegramObject) -> bool:
    """True when a string of `event` (its text, caption, callback data, payload, file names, extra
    fields, ...) holds a NUL or a lone surrogate; profiles and other messages are not looked at.
    Iterative: a deeply nested extra field cannot exhaust the stack."""
    stack: list[Any] = [event]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if not is_storable(text=value):
                return True
        elif isinstance(value, BaseModel):
            if value is not event and isinstance(value, _NOT_INPUT):
                continue
            stack.extend(item for item in value.__dict__.values() if item is not None)
            if value.__pydantic_extra__:
                stack.extend(value.__pydantic_extra__.values())
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
    return False


class TextGuardMiddleware(BaseMiddleware):
    """Refuses, at the boundary, an update whose free text the database cannot store.

    PostgreSQL refuses NUL in text (and `\\u0000` in jsonb), and a lone UTF-16 surrogate cannot be
    encoded for any database; either used to crash the handler (the user saw the generic apology).
    Per field:

    - refused: everything the user sends in this update: message text and captions (prompts,
      typed promocodes, `/start ref_...` and `promo_...` deep-link payloads), callback data,
      pre-checkout payloads, file names, contacts, inline queries, unknown extra fields. A message
      gets a reply asking to send the text again without those characters (in the user's
      language), a callback query an alert, a pre-checkout query `ok=False` with an explanation;
      updates nobody answers (inline queries, channel posts, ...) are dropped. Cleaning these
      silently would change what the user asked for (a prompt, a code, a payment) behind their back.
    - cleaned: the sender's profile (first/last name, username), which the user does not type
      here and cannot quickly change: `profile_of` strips the characters before the upsert.
    - not looked at: other messages inside the update (replied to, quoted, pinned, the message
      under a button): the bot neither stores nor reads them.

    It runs before the user middleware, so a refused update writes nothing (a refused
    `/start ref_...` still leaves the user new for the corrected link); the language comes from
    one read of the user row, or from the Telegram client for a stranger. A banned user's update
    goes on to the user middleware (registered after this one), which refuses it as it refuses
    every update of a banned user: the handlers never see it, the profile stored is cleaned.
    A successful payment with such a payload cannot pass the pre-checkout; should one still arrive,
    it is logged as an error with its charge id for an operator and the user is told so.
    """

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        try:
            inner = event.event
        except Exception:  # an update type aiogram does not know: only extra fields, nothing to refuse
            return await handler(event, data)
        if not has_unstorable_text(inner):
            return await handler(event, data)
        tg_user: User | None = data.get("event_from_user")
        known = await bridge.known_user(tg_user.id) if tg_user is not None and not tg_user.is_bot else None
        if known is not None and known[1]:
            return await handler(event, data)  # banned: the user middleware refuses it (see above)
        log.info(
            "update %s (%s) from %s refused: text the database cannot store",
            event.update_id,
            event.event_type,
            tg_user.id if tg_user else None,
        )
        if tg_user is None or tg_user.is_bot:
            return None
        lang = known[0] if known is not None else language_from_code(tg_user.language_code)
        await self._refuse(inner, tg_user, lang)
        return None

    async def _refuse(self, inner: TelegramObject, tg_user: User, lang: str) -> None:
        try:
            if isinstance(inner, PreCheckoutQuery):
                await inner.answer(ok=False, error_message=t("common.unstorable_payment", lang))
            elif isinstance(inner, CallbackQuery):
                await inner.answer(t("common.unstorable_button", lang), show_alert=True)
            elif isinstance(inner, Message):
                paid = inner.successful_payment
                if paid is not None:
                    charge_id = storable(text=paid.telegram_payment_charge_id)
                    # The money was taken: this must reach an operator (the charge id lets them act).
                    log.error("successful payment not credited: unstorable payload, charge=%s", charge_id)
                    await inner.answer(t("pay.not_credited", lang, charge_id=html.escape(charge_id)))
                else:
                    await inner.answer(t("common.unstorable_text", lang))
        except TelegramAPIError as exc:  # blocked the bot, an old query: nothing more to do
            log.info("refusal to %s not delivered: %s", tg_user.id, exc)


# --- 4. user --------------------------------------------------------------------------------------------
def profile_of(user: User) -> TelegramProfile:
    """The profile to store; text the database cannot store is removed from it (see TextGuardMiddleware)."""
    return TelegramProfile(
        telegram_id=user.id,
        username=storable(text=user.username or ""),
        first_name=storable(text=user.first_name or ""),
        last_name=storable(text=user.last_name or ""),
        language_code=storable(text=user.language_code or ""),
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
