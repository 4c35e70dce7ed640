"""Outer middlewares on `update`, in the order `bot.build_dispatcher` registers them:

1. `DedupeMiddleware`: an update_id seen twice (a webhook redelivery) is handled once
   (Redis `SET NX PX` when configured, an in-memory TTL set otherwise).
2. `ThrottlingMiddleware`: a token bucket per user (one Redis hash updated by a Lua script when
   configured, shared by every process; in memory otherwise); floods are dropped with one hint (in
   the language of the user's Telegram client: it runs before the database is touched), and a
   button pressed twice on the same screen counts once. Pre-checkouts and successful or refunded
   payments are never throttled.
3. `TextGuardMiddleware`: an update carrying text the database cannot store (NUL, lone
   surrogates) is refused politely before anything touches the database (see its docstring).
   (Then aiogram's FSM context, which holds the per-user events isolation lock.)
4. `UserMiddleware`: upserts the Telegram user (one SELECT in the common case), injects
   `user: UserContext` and `lang: str`; banned users get one polite message and nothing else (but a
   `refunded_payment` of theirs is still recorded: the ledger follows the money).
   The profile's names are cleaned of what the database cannot store.

Errors are handled by `handlers.fallback` (an `errors` handler: log with context, apologise).
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
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
def is_refund(event: TelegramObject) -> bool:
    """A `refunded_payment` message: Telegram gave a payment back, the ledger must follow."""
    return isinstance(event, Update) and event.message is not None and event.message.refunded_payment is not None


def moves_money(event: TelegramObject) -> bool:
    """A successful or refunded payment: never throttled away (the money moved on Telegram's side)."""
    return is_refund(event) or (
        isinstance(event, Update) and event.message is not None and event.message.successful_payment is not None
    )


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
        # Money that already moved on Telegram's side is booked for a banned user too: a refund is taken
        # back, and a payment (a subscription's renewal has no pre-checkout to refuse) is credited.
        if user.is_banned and not moves_money(event):
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
class Verdict(StrEnum):
    """What the throttle decided about one update of a user."""

    OK = "ok"  # a token was taken: handle it
    FREE = "free"  # a later part of an album whose first part was let through: handled without a token
    DOUBLE = "double"  # the same button pressed again on the same screen: answered and dropped
    WARN = "warn"  # no token: dropped, and this is the first drop since the last pass (hint once)
    QUIET = "quiet"  # no token: dropped silently (a hint was already given)


class ThrottleStore(Protocol):
    async def hit(
        self, key: str, *, rate: float, burst: int, press: str | None, press_window: float, album: str | None
    ) -> Verdict:
        """Refill the bucket `key` (one token per `rate` seconds, at most `burst`), then decide:
        DOUBLE when `press` equals the last press within `press_window` seconds (else `press` is
        remembered); for a part of the `album` seen last, what its first part got (FREE when it was let
        through, else QUIET); else take a token (OK) or WARN/QUIET without one (an album's first part
        is remembered with its verdict: the album costs one token)."""
        ...

    async def close(self) -> None: ...


@dataclass
class _Bucket:
    tokens: float
    updated: float
    warned: bool = False
    last_press: str | None = None
    last_press_at: float = 0.0
    album: str | None = None  # the media group seen last, and whether its first part was let through
    album_ok: bool = False


class MemoryThrottleStore:
    """The buckets in this process (polling, one web process, tests); the least recent beyond
    `max_keys` are forgotten."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _bucket(self, key: str, now: float, rate: float, burst: int) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=float(burst), updated=now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            if rate > 0:
                bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.updated) / rate)
            else:
                bucket.tokens = float(burst)
            bucket.updated = now
        return bucket

    async def hit(
        self, key: str, *, rate: float, burst: int, press: str | None, press_window: float, album: str | None
    ) -> Verdict:
        # No await in here: one update's decision is atomic with respect to the others.
        now = time.monotonic()
        bucket = self._bucket(key, now, rate, burst)
        if press is not None:
            if bucket.last_press == press and now - bucket.last_press_at < press_window:
                return Verdict.DOUBLE
            bucket.last_press, bucket.last_press_at = press, now
        if album is not None and bucket.album == album:
            return Verdict.FREE if bucket.album_ok else Verdict.QUIET
        if bucket.tokens < 1.0:
            warn, bucket.warned = not bucket.warned, True
            verdict = Verdict.WARN if warn else Verdict.QUIET
        else:
            bucket.tokens -= 1.0
            bucket.warned = False
            verdict = Verdict.OK
        if album is not None:
            bucket.album, bucket.album_ok = album, verdict is Verdict.OK
        return verdict

    async def close(self) -> None:
        self._buckets.clear()


# The same decision as MemoryThrottleStore.hit, atomically in Redis (a script runs alone), on Redis'
# clock (one clock for every process). KEYS[1]: the bucket (a hash). ARGV: rate, burst, press ('' for
# none), press window, album ('' for none: a later part of the album seen last gets what its first part
# got), TTL in ms (a bucket idle that long is full again: forgetting it
# changes nothing).
_THROTTLE_HIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated', 'warned', 'press', 'press_at', 'album', 'album_ok')
local tokens = tonumber(state[1])
if tokens == nil then
  tokens = burst
elseif rate > 0 then
  tokens = math.min(burst, tokens + math.max(0, now - (tonumber(state[2]) or now)) / rate)
else
  tokens = burst
end
local warned = state[3] == '1'
local press = ARGV[3]
local verdict = nil
if press ~= '' then
  if state[4] == press and now - (tonumber(state[5]) or 0) < tonumber(ARGV[4]) then
    verdict = 'double'
  else
    redis.call('HSET', KEYS[1], 'press', press, 'press_at', string.format('%.6f', now))
  end
end
local album = ARGV[5]
if verdict == nil and album ~= '' and state[6] == album then
  if state[7] == '1' then verdict = 'free' else verdict = 'quiet' end
end
if verdict == nil then
  if tokens < 1 then
    if warned then verdict = 'quiet' else verdict = 'warn' end
    warned = true
  else
    tokens = tokens - 1
    warned = false
    verdict = 'ok'
  end
  if album ~= '' then
    redis.call('HSET', KEYS[1], 'album', album, 'album_ok', verdict == 'ok' and '1' or '0')
  end
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'updated', string.format('%.6f', now),
  'warned', warned and '1' or '0')
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return verdict
"""


class RedisThrottleStore:
    """Buckets shared by every web/bot process using this Redis: in webhook mode one user's updates
    reach several processes, and they must draw on one budget."""

    def __init__(self, redis: Any, prefix: str, *, owns_client: bool = True) -> None:
        self.redis = redis
        self.prefix = prefix
        self.owns_client = owns_client  # False when the FSM storage shares (and closes) the client
        self._hit = redis.register_script(_THROTTLE_HIT)

    @staticmethod
    def ttl_ms(*, rate: float, burst: int, press_window: float) -> int:
        """How long an idle bucket matters: until it is full again and the press window is over."""
        return math.ceil((burst * max(rate, 0.0) + press_window) * 1000) + 1000

    async def hit(
        self, key: str, *, rate: float, burst: int, press: str | None, press_window: float, album: str | None
    ) -> Verdict:
        ttl = self.ttl_ms(rate=rate, burst=burst, press_window=press_window)
        args = [repr(float(rate)), burst, press or "", repr(float(press_window)), album or "", ttl]
        verdict = await self._hit(keys=[f"{self.prefix}:{key}"], args=args)
        return Verdict(verdict.decode() if isinstance(verdict, bytes) else verdict)

    async def close(self) -> None:
        if self.owns_client:
            await self.redis.aclose()


def press_id(message_id: int, data: str, text: str) -> str:
    """A stable id of "this button on this screen" (the same in every process, unlike hash())."""
    raw = f"{message_id}\x1f{data}\x1f{text}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


class ThrottlingMiddleware(BaseMiddleware):
    """A token bucket per user: `burst` updates at once, then one per `rate` seconds.

    The buckets live in a `ThrottleStore`: Redis when configured (shared by all processes, so a
    user's flood split between several web processes meets one budget), this process's memory
    otherwise. An album (a media group) costs one token: its first part decides for the album, the
    later parts follow (handled free when it was let through, dropped silently when not).
    A second press of the same button on the same screen (same message, same text: the user did
    not see a new screen in between) within `double_press_window` seconds is answered and dropped.
    """

    double_press_window = 1.0

    def __init__(self, rate: float, burst: int = 10, store: ThrottleStore | None = None) -> None:
        self.rate = max(rate, 0.0)
        self.burst = burst
        self.store: ThrottleStore = store if store is not None else MemoryThrottleStore()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update) or self.rate <= 0 or event.pre_checkout_query or moves_money(event):
            return await handler(event, data)  # pre-checkout must always be answered; money is never dropped
        tg_user: User | None = data.get("event_from_user")
        if tg_user is None:
            return await handler(event, data)
        lang: str = data.get("lang") or language_from_code(tg_user.language_code)
        query = event.callback_query
        press = None
        if query is not None and query.message is not None:
            screen = query.message
            text = getattr(screen, "text", None) or getattr(screen, "caption", None) or ""
            press = press_id(screen.message_id, query.data or "", text)
        bot: Bot = data["bot"]
        verdict = await self.store.hit(
            f"{bot.id}:{tg_user.id}",
            rate=self.rate,
            burst=self.burst,
            press=press,
            press_window=self.double_press_window,
            album=event.message.media_group_id if event.message is not None else None,
        )
        if verdict is Verdict.DOUBLE and query is not None:
            await _silent(query.answer())
            return None
        if verdict in (Verdict.OK, Verdict.FREE):
            return await handler(event, data)
        if query is not None:
            await _silent(query.answer(t("common.throttled", lang)))
        elif verdict is Verdict.WARN and event.message is not None:
            await _silent(event.message.answer(t("common.throttled", lang)))
        return None


async def _silent(call: Awaitable[Any]) -> None:
    try:
        await call
    except TelegramAPIError as exc:
        log.debug("throttle answer failed: %s", exc)
