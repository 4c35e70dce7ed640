"""The one Telegram sender for code outside the bot's update handlers (workers, broadcasts).

A synchronous facade over aiogram's `Bot`: each process runs one background thread with an event loop
that owns the Bot and its aiohttp session; callers (Celery threads) submit coroutines to it with
`asyncio.run_coroutine_threadsafe` and wait for the answer.

Every call passes the rate limiter first (`botapp.telegram.ratelimit`; Redis-backed when REDIS_URL is
set, so all processes share one budget):

- messages (results, failure notices, broadcasts): the chat's bucket (about 1/s, short bursts) and the
  global one (about 30/s; 25/s by default). They wait up to TELEGRAM_MAX_WAIT_SECONDS for a slot;
  beyond that `RetryLater` tells the task to reschedule itself instead of holding a worker.
- best-effort calls (chat actions, status-message edits, deletes): the chat's bucket and a separate
  "aux" budget, only when a slot is free right now; otherwise they are skipped (never delay results).
  With a shared (Redis) limiter such a call first takes a slot of the aux budget in this process:
  when this process alone has used it up, the shared budget is used up too, and the call is skipped
  without a round trip to Redis (a thousand videos in flight ask for a chat action on every poll).

Errors: a 429 pushes the chat's bucket back by `retry_after` (and the global one by at most a second
when another chat had a 429 within GLOBAL_FLOOD_WINDOW: the bot's overall limit, not one chat's) and
the call is retried after it (or `RetryLater` if it is longer than the wait budget); a 403 marks the
user `bot_blocked` and raises `BotBlocked`; a 400 (Telegram refused the file or the message) raises
`SendRejected`; network errors and 5xx are retried twice, then `TelegramUnavailable` (a `RetryLater`),
except for sends (messages and files), which are never repeated once the request may have reached
Telegram: a timeout, a reset after the connection was made or a 5xx raise `OutcomeUnknown`, and only a
failure to connect at all is retried. Error texts are redacted (`botapp.redaction`): a file URL holds
the bot token.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import BufferedInputFile, InputMediaDocument, InputMediaPhoto, InputMediaVideo
from aiohttp import ClientConnectorError, ClientError, ClientResponseError

from botapp.redaction import error_text

from .media import DOCUMENT, PHOTO, VIDEO
from .ratelimit import Bucket, MemoryRateLimiter, RateLimiter, RedisRateLimiter

log = logging.getLogger(__name__)
GLOBAL_FLOOD_WINDOW = 1.0  # seconds: two chats with a 429 within it mean the overall limit was hit


class TelegramError(Exception):
    """Base of the sender's errors."""


class BotBlocked(TelegramError):
    """403: the user blocked the bot (or the chat is gone). The user is marked `bot_blocked`."""


class SendRejected(TelegramError):
    """Telegram refused the request for good (400: a file it will not take, a deleted message...)."""


class RetryLater(TelegramError):
    """Not now: flood control or our own limit needs more than the wait budget; retry in `retry_in` s."""

    def __init__(self, message: str, retry_in: float) -> None:
        super().__init__(message)
        self.retry_in = retry_in


class TelegramUnavailable(RetryLater):
    """Network errors or 5xx from the Bot API server, after retries."""


class OutcomeUnknown(TelegramError):
    """A send may have reached Telegram, but its answer never arrived (a timeout, a connection reset
    after the request went out, a 5xx). Sending it again could send it twice, so the sender does not
    retry it: the caller decides (a paid result is never re-sent blindly; see botapp/engine/delivery.py)."""


def _never_sent(exc: BaseException) -> bool:
    """True when a network error happened before the request could reach the server (no connection)."""
    return isinstance(exc.__cause__, ClientConnectorError)


@dataclass(frozen=True)
class SentMessage:
    chat_id: int
    message_id: int
    method: str = "message"
    file_id: str | None = None
    file_unique_id: str | None = None


@dataclass(frozen=True)
class AlbumItem:
    """One item of `send_media_group`: PHOTO / VIDEO / DOCUMENT, from bytes (uploaded) or a file_id."""

    method: str
    file: bytes | str
    filename: str = "file"
    caption: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None


@dataclass(frozen=True)
class StarLedgerEntry:
    """One line of the bot's Stars ledger (getStarTransactions), flattened.

    `kind`: "payment" (an incoming invoice payment from a user: `source` is a TransactionPartnerUser
    with transaction_type "invoice_payment"), "refund" (the same id going back to the user: `receiver`
    is a TransactionPartnerUser), or "other" (withdrawals, ads, gifts... not ours to compare)."""

    id: str
    amount: int
    date: datetime
    kind: str
    user_id: int | None = None
    invoice_payload: str | None = None
    subscription_period: int | None = None

    @classmethod
    def of(cls, item: Any) -> StarLedgerEntry:
        source, receiver = getattr(item, "source", None), getattr(item, "receiver", None)
        partner, kind = None, "other"
        if getattr(source, "type", None) == "user" and getattr(source, "transaction_type", None) == "invoice_payment":
            partner, kind = source, "payment"
        elif getattr(receiver, "type", None) == "user" and source is None:
            partner, kind = receiver, "refund"
        user = getattr(partner, "user", None)
        return cls(
            id=item.id,
            amount=int(item.amount),
            date=item.date,
            kind=kind,
            user_id=getattr(user, "id", None),
            invoice_payload=getattr(partner, "invoice_payload", None),
            subscription_period=getattr(partner, "subscription_period", None),
        )


@dataclass(frozen=True)
class SenderLimits:
    global_rate: float = 25.0
    global_burst: int = 5
    chat_rate: float = 1.0
    chat_burst: int = 3
    aux_rate: float = 10.0
    max_wait: float = 10.0
    request_timeout: int = 60
    upload_timeout: int = 300


class _LoopThread:
    """A daemon thread running an asyncio loop; `run(coro)` executes it there and waits."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Awaitable[Any], timeout: float) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.loop.is_running():
            self.loop.close()


class TelegramSender:
    """Thread-safe; one per process (see `get_sender`)."""

    def __init__(
        self,
        *,
        token: str,
        api_url: str = "https://api.telegram.org",
        limiter: RateLimiter | None = None,
        limits: SenderLimits | None = None,
        on_blocked: Callable[[int], None] | None = None,
    ) -> None:
        self.token = token
        self.api_url = api_url.rstrip("/")
        self.limiter = limiter or MemoryRateLimiter()
        self.limits = limits or SenderLimits()
        self.on_blocked = on_blocked
        self._loop: _LoopThread | None = None
        self._bot: Any = None
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.global_bucket = Bucket("global", self.limits.global_rate, self.limits.global_burst)
        self.aux_bucket = Bucket("aux", self.limits.aux_rate, max(1, int(self.limits.aux_rate)))
        # This process's own draws on the aux budget: a subset of the shared bucket's (see the docstring).
        self._aux_here = None if isinstance(self.limiter, MemoryRateLimiter) else MemoryRateLimiter()
        self._recent_429: dict[int | str, float] = {}  # chat -> when it last got a 429 (this process)

    # --- plumbing ---------------------------------------------------------------------------------
    def _overall_flood(self, chat_id: int | str) -> bool:
        """After a 429 in `chat_id`: whether another chat had one within GLOBAL_FLOOD_WINDOW seconds."""
        now = time.monotonic()
        with self._lock:
            recent = {chat: at for chat, at in self._recent_429.items() if now - at < GLOBAL_FLOOD_WINDOW}
            overall = any(chat != chat_id for chat in recent)
            recent[chat_id] = now
            self._recent_429 = recent
        return overall

    def _aux_used_up_here(self, buckets: list[Bucket], best_effort: bool) -> bool:
        """A best-effort call that this process alone has no aux slot for (none is left in the shared
        budget either, which counts this process's draws and more): skipped without asking Redis."""
        if not best_effort or self._aux_here is None or self.aux_bucket not in buckets:
            return False
        return self._aux_here.reserve([self.aux_bucket], 0.0) is None

    def chat_bucket(self, chat_id: int | str) -> Bucket:
        return Bucket(f"chat:{chat_id}", self.limits.chat_rate, self.limits.chat_burst)

    def _ensure(self) -> tuple[_LoopThread, Any]:
        if self._loop is not None and self._pid == os.getpid():
            return self._loop, self._bot
        with self._lock:
            if self._loop is None or self._pid != os.getpid():  # first use, or a forked child
                loop = _LoopThread("telegram-sender")
                self._bot = loop.run(self._make_bot(), 30)
                self._pid = os.getpid()
                self._loop = loop  # published last: other threads read _loop without the lock
        return self._loop, self._bot

    async def _make_bot(self) -> Any:
        session = AiohttpSession(api=TelegramAPIServer.from_base(self.api_url))
        return Bot(
            self.token,
            session=session,
            default=DefaultBotProperties(parse_mode="HTML", link_preview_is_disabled=True),
        )

    def close(self) -> None:
        with self._lock:
            loop, bot = self._loop, self._bot
            self._loop = self._bot = None
        if loop is None or self._pid != os.getpid():
            return
        try:
            loop.run(bot.session.close(), 10)
        except Exception:  # pragma: no cover - best effort at shutdown
            log.debug("closing the Telegram session failed", exc_info=True)
        loop.stop()

    def _call(
        self,
        chat_id: int | str,
        make: Callable[[Any], Awaitable[Any]],
        *,
        best_effort: bool = False,
        repeatable: bool = True,
        timeout: float | None = None,
        patience: float | None = None,
        what: str = "call",
        paid: bool = False,
        marks_blocked: bool = True,
        buckets: list[Bucket] | None = None,
    ) -> Any:
        """Run `make(bot, request_timeout)` within the limits; see the module docstring for the error
        policy. A call that is not `repeatable` (a send) is never repeated after an unknown outcome:
        `OutcomeUnknown` is raised instead. A `paid` broadcast message (allow_paid_broadcast) is over
        Telegram's free 30/s: it takes the chat's bucket only (the caller paces it). `marks_blocked=False`:
        a 403 raises `BotBlocked` without marking the user (a call that is not a message to the chat).
        `buckets`: the rate buckets to take instead of the chat's and the global one (reads that send
        nothing to anybody)."""
        loop, bot = self._ensure()
        chat = self.chat_bucket(chat_id)
        if buckets is None:
            buckets = [chat] if paid else [chat, self.aux_bucket if best_effort else self.global_bucket]
        timeout = float(timeout or self.limits.request_timeout)
        failures = 0
        while True:
            if patience is None:
                patience = 0.0 if best_effort else self.limits.max_wait
            if self._aux_used_up_here(buckets, best_effort):
                return None
            wait = self.limiter.reserve(buckets, patience)
            if wait is None:
                if best_effort:
                    return None
                raise RetryLater(f"{what}: rate limit for chat {chat_id}", self.limits.max_wait)
            if wait > 0:
                time.sleep(wait)
            try:
                return loop.run(make(bot, int(timeout)), timeout + 5)
            except TelegramRetryAfter as exc:
                retry_after = float(exc.retry_after or 1)
                log.warning("telegram 429 on %s in chat %s: retry after %ss", what, chat_id, retry_after)
                # Most floods are one chat's: a lone 429 slows that chat down. A second one from
                # another chat within GLOBAL_FLOOD_WINDOW is the bot's overall limit: then the whole
                # bot slows down for a moment too (and every further 429 keeps pushing it back).
                self.limiter.penalize(chat, retry_after)
                if self._overall_flood(chat_id):
                    self.limiter.penalize(self.global_bucket, min(retry_after, 1.0))
                failures += 1
                if best_effort:
                    return None
                if retry_after > self.limits.max_wait or failures > 3:
                    raise RetryLater(f"{what}: flood control for {retry_after}s", retry_after) from exc
                # Wait out the chat's flood control before booking again: a booking made now would
                # take the global slot `retry_after` ahead, holding every other chat's send back.
                time.sleep(retry_after)
            except TelegramForbiddenError as exc:
                log.info("telegram 403 on %s in chat %s: %s", what, chat_id, exc.message)
                if self.on_blocked is not None and marks_blocked:
                    try:
                        self.on_blocked(int(chat_id))
                    except Exception:
                        log.exception("could not mark chat %s as blocked", chat_id)
                if best_effort:
                    return None
                raise BotBlocked(exc.message) from exc
            except (TelegramBadRequest, TelegramNotFound, TelegramEntityTooLarge) as exc:
                if best_effort:
                    log.debug("telegram refused best-effort %s in chat %s: %s", what, chat_id, exc.message)
                    return None
                raise SendRejected(exc.message) from exc
            except (TelegramNetworkError, TelegramServerError, concurrent.futures.TimeoutError, TimeoutError) as exc:
                failures += 1
                log.warning("telegram %s in chat %s failed (%d): %s", what, chat_id, failures, error_text(exc))
                if best_effort:
                    return None
                if not repeatable and not _never_sent(exc):
                    raise OutcomeUnknown(f"{what}: {error_text(exc)}") from exc
                if failures >= 3:
                    raise TelegramUnavailable(f"{what}: {error_text(exc)}", 5.0 * failures) from exc
                time.sleep(0.5 * 2**failures)

    # --- messages ---------------------------------------------------------------------------------
    def send_message(
        self,
        chat_id: int,
        text: str,
        *,
        reply_markup: Any = None,
        best_effort: bool = False,
        repeatable: bool = False,
        allow_paid_broadcast: bool = False,
    ) -> SentMessage | None:
        """Send a text. Not `repeatable` (the default): an unknown outcome raises `OutcomeUnknown`
        rather than risking the same message twice; `repeatable=True` for short notices where a
        duplicate is better than none. `allow_paid_broadcast`: Telegram's paid broadcast (0.1 Star a
        message, up to 1000/s; not limited by the global bucket)."""
        paid = {"allow_paid_broadcast": True} if allow_paid_broadcast else {}
        message = self._call(
            chat_id,
            lambda bot, rt: bot.send_message(
                chat_id=chat_id, text=text, reply_markup=reply_markup, request_timeout=rt, **paid
            ),
            best_effort=best_effort,
            repeatable=repeatable,
            what="sendMessage",
            paid=allow_paid_broadcast,
        )
        return SentMessage(chat_id, message.message_id) if message is not None else None

    def edit_text(self, chat_id: int, message_id: int, text: str, *, reply_markup: Any = None) -> bool:
        """Best effort (status messages): False when skipped or refused."""
        result = self._call(
            chat_id,
            lambda bot, rt: bot.edit_message_text(
                chat_id=chat_id, message_id=message_id, text=text, reply_markup=reply_markup, request_timeout=rt
            ),
            best_effort=True,
            what="editMessageText",
        )
        return result is not None

    def delete_message(self, chat_id: int, message_id: int) -> bool:
        """Best effort, but it waits a few seconds for the chat's slot: a status message deleted right
        after the result would otherwise be skipped (the result used the chat's burst) and linger."""
        result = self._call(
            chat_id,
            lambda bot, rt: bot.delete_message(chat_id=chat_id, message_id=message_id, request_timeout=rt),
            best_effort=True,
            patience=min(5.0, self.limits.max_wait),
            what="deleteMessage",
        )
        return bool(result)

    def chat_action(self, chat_id: int, action: str) -> bool:
        result = self._call(
            chat_id,
            lambda bot, rt: bot.send_chat_action(chat_id=chat_id, action=action, request_timeout=rt),
            best_effort=True,
            what="sendChatAction",
        )
        return bool(result)

    def send_file(
        self,
        chat_id: int,
        method: str,
        file: bytes | str,
        *,
        filename: str = "file",
        caption: str | None = None,
        reply_markup: Any = None,
        width: int | None = None,
        height: int | None = None,
        duration: float | None = None,
        allow_paid_broadcast: bool = False,
    ) -> SentMessage:
        """Send a photo / video / document from bytes (uploaded) or a Telegram file_id (re-sent).
        Never repeated after an unknown outcome: that raises `OutcomeUnknown`. `allow_paid_broadcast`:
        as in `send_message`."""
        payload: Any = BufferedInputFile(file, filename=filename) if isinstance(file, bytes) else file
        common: dict[str, Any] = {"chat_id": chat_id, "caption": caption, "reply_markup": reply_markup}
        if allow_paid_broadcast:
            common["allow_paid_broadcast"] = True
        if method == PHOTO:

            def make(bot, rt):
                return bot.send_photo(photo=payload, **common, request_timeout=rt)
        elif method == VIDEO:
            extra = {
                "width": width or None,
                "height": height or None,
                "duration": round(duration) if duration else None,
                "supports_streaming": True,
            }

            def make(bot, rt):
                return bot.send_video(video=payload, **extra, **common, request_timeout=rt)
        elif method == DOCUMENT:

            def make(bot, rt):
                return bot.send_document(document=payload, **common, request_timeout=rt)
        else:
            raise ValueError(f"unknown send method {method!r}")
        uploading = isinstance(file, bytes)
        timeout = self.limits.upload_timeout if uploading else self.limits.request_timeout
        message = self._call(
            chat_id, make, timeout=timeout, repeatable=False, what=f"send_{method}", paid=allow_paid_broadcast
        )
        return _sent(message, method)

    def send_media_group(self, chat_id: int, items: list[AlbumItem]) -> list[SentMessage]:
        """sendMediaGroup: 2 to 10 photos and videos, or documents only, as one album (one request,
        one SentMessage per item, in order). Telegram takes no buttons on an album (the method has
        no reply_markup): send them in a message of their own. Telegram refuses the whole album when
        it refuses one item (400 "failed to send message #N ...": nothing was sent) -> `SendRejected`;
        never repeated after an unknown outcome (`OutcomeUnknown`)."""
        if not 2 <= len(items) <= 10:
            raise ValueError("an album has 2 to 10 items")
        media: list[Any] = []
        for item in items:
            payload: Any = (
                BufferedInputFile(item.file, filename=item.filename) if isinstance(item.file, bytes) else item.file
            )
            if item.method == PHOTO:
                media.append(InputMediaPhoto(media=payload, caption=item.caption))
            elif item.method == VIDEO:
                media.append(
                    InputMediaVideo(
                        media=payload,
                        caption=item.caption,
                        width=item.width or None,
                        height=item.height or None,
                        duration=round(item.duration) if item.duration else None,
                        supports_streaming=True,
                    )
                )
            elif item.method == DOCUMENT:
                media.append(InputMediaDocument(media=payload, caption=item.caption))
            else:
                raise ValueError(f"unknown album item method {item.method!r}")
        uploading = any(isinstance(item.file, bytes) for item in items)
        messages = self._call(
            chat_id,
            lambda bot, rt: bot.send_media_group(chat_id=chat_id, media=media, request_timeout=rt),
            timeout=self.limits.upload_timeout if uploading else self.limits.request_timeout,
            repeatable=False,
            what="sendMediaGroup",
        )
        return [_sent(message, item.method) for message, item in zip(messages, items, strict=True)]

    # --- Telegram Stars ---------------------------------------------------------------------------
    def refund_star_payment(self, user_id: int, charge_id: str) -> None:
        """refundStarPayment: give a Stars payment back to the user. Never repeated after an unknown
        outcome (`OutcomeUnknown`: ask Telegram again later, it answers CHARGE_ALREADY_REFUNDED if the
        first one went through); Telegram's refusal (CHARGE_NOT_FOUND, CHARGE_ALREADY_REFUNDED...) raises
        `SendRejected` with its text. Takes the user's chat bucket and the global one; a 403 does not mark
        the user as having blocked the bot (this is not a message to them)."""
        self._call(
            user_id,
            lambda bot, rt: bot.refund_star_payment(
                user_id=user_id, telegram_payment_charge_id=charge_id, request_timeout=rt
            ),
            repeatable=False,
            what="refundStarPayment",
            marks_blocked=False,
        )

    def star_transactions(self, offset: int = 0, limit: int = 100) -> list[StarLedgerEntry]:
        """One page of getStarTransactions (oldest first): `limit` (1..100) transactions from `offset`.
        A read: retried on network errors like any repeatable call, paced by the "aux" budget
        (TELEGRAM_AUX_RATE), not by the messages' buckets."""
        result = self._call(
            "star-transactions",
            lambda bot, rt: bot.get_star_transactions(offset=offset, limit=limit, request_timeout=rt),
            what="getStarTransactions",
            marks_blocked=False,
            buckets=[self.aux_bucket],
        )
        return [StarLedgerEntry.of(item) for item in result.transactions]

    # --- files ------------------------------------------------------------------------------------
    def download(self, file_id: str, *, max_bytes: int) -> bytes:
        """A file a user sent (getFile + download). Raises SendRejected if unknown or over `max_bytes`."""
        loop, bot = self._ensure()

        async def fetch() -> bytes:
            info = await bot.get_file(file_id)
            if info.file_size and info.file_size > max_bytes:
                raise _TooLarge(info.file_size)
            if not info.file_path:
                raise SendRejected("the file has no path (too big for getFile)")
            buffer = await bot.download_file(info.file_path, timeout=self.limits.request_timeout)
            return buffer.getvalue()

        for attempt in range(3):
            wait = self.limiter.reserve([self.aux_bucket], self.limits.max_wait)
            if wait:
                time.sleep(wait)
            try:
                data = loop.run(fetch(), self.limits.request_timeout + 10)
            except _TooLarge as exc:
                raise FileTooLarge(exc.size) from exc
            except (TelegramBadRequest, TelegramNotFound) as exc:
                raise SendRejected(exc.message) from exc
            except ClientResponseError as exc:
                # The file server answered an error. Its message holds the file URL, and the URL holds
                # the bot token: only the status is kept (from None: not even in a traceback).
                if exc.status < 500 and exc.status != 429:
                    raise SendRejected(f"file download: HTTP {exc.status}") from None
                if attempt == 2:
                    raise TelegramUnavailable(f"file download: HTTP {exc.status}", 5.0) from None
                time.sleep(0.5 * 2**attempt)
                continue
            except (TelegramNetworkError, ClientError, concurrent.futures.TimeoutError, TimeoutError) as exc:
                if attempt == 2:
                    raise TelegramUnavailable(f"download: {error_text(exc)}", 5.0) from None
                time.sleep(0.5 * 2**attempt)
                continue
            if len(data) > max_bytes:
                raise FileTooLarge(len(data))
            return data
        raise TelegramUnavailable("download failed", 5.0)  # pragma: no cover


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


class FileTooLarge(SendRejected):
    def __init__(self, size: int) -> None:
        super().__init__(f"file of {size} bytes is over the limit")
        self.size = size


def _sent(message: Any, method: str) -> SentMessage:
    media = None
    if getattr(message, "photo", None):
        media = message.photo[-1]
    else:
        for name in ("video", "animation", "document"):
            media = getattr(message, name, None)
            if media is not None:
                break
    return SentMessage(
        chat_id=message.chat.id,
        message_id=message.message_id,
        method=method,
        file_id=getattr(media, "file_id", None),
        file_unique_id=getattr(media, "file_unique_id", None),
    )


# --- the process's sender ------------------------------------------------------------------------
_sender: TelegramSender | None = None
_sender_lock = threading.Lock()
_limiter: RateLimiter | None = None
_limiter_lock = threading.Lock()


def _mark_blocked(chat_id: int) -> None:
    if chat_id > 0:  # private chats: the chat id is the user's Telegram id
        from botapp.services.users import mark_bot_blocked

        mark_bot_blocked(telegram_id=chat_id)


def get_limiter() -> RateLimiter:
    """The process's limiter: Redis-backed with REDIS_URL (shared by all processes), else in memory."""
    global _limiter
    from django.conf import settings

    if _limiter is None:
        with _limiter_lock:
            if _limiter is None:
                url = getattr(settings, "REDIS_URL", "")
                _limiter = RedisRateLimiter(url) if url else MemoryRateLimiter()
    return _limiter


def get_sender() -> TelegramSender | None:
    """The process's sender, or None when no BOT_TOKEN is configured."""
    global _sender
    from django.conf import settings

    if not settings.BOT_TOKEN:
        return None
    api_url = settings.TELEGRAM_API_URL.rstrip("/")
    sender = _sender
    if sender is not None and sender.token == settings.BOT_TOKEN and sender.api_url == api_url:
        return sender
    limiter = get_limiter()
    with _sender_lock:
        if _sender is not None and _sender.token == settings.BOT_TOKEN and _sender.api_url == api_url:
            return _sender
        if _sender is not None:
            _sender.close()
        _sender = TelegramSender(
            token=settings.BOT_TOKEN,
            api_url=api_url,
            limiter=limiter,
            limits=SenderLimits(
                global_rate=settings.TELEGRAM_GLOBAL_RATE,
                global_burst=settings.TELEGRAM_GLOBAL_BURST,
                chat_rate=settings.TELEGRAM_CHAT_RATE,
                chat_burst=settings.TELEGRAM_CHAT_BURST,
                aux_rate=settings.TELEGRAM_AUX_RATE,
                max_wait=settings.TELEGRAM_MAX_WAIT_SECONDS,
                request_timeout=settings.TELEGRAM_REQUEST_TIMEOUT_SECONDS,
                upload_timeout=settings.TELEGRAM_UPLOAD_TIMEOUT_SECONDS,
            ),
            on_blocked=_mark_blocked,
        )
        return _sender


def close_sender() -> None:
    global _sender
    with _sender_lock:
        sender, _sender = _sender, None
    if sender is not None:
        sender.close()
