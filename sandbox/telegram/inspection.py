"""Inspection and waiting helpers: what the bot did, and waiting for it to do something."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable

from .api import MESSAGE_EVENTS, Predicate, WaitTimeout
from .client import Expectation, MessageCursor
from .ledger import Subscription
from .state import JSON, ApiCall, EmulatorState, Event, Invoice, Payment, StoredFile, WebhookConfig, WebhookDelivery

log = logging.getLogger("sandbox.telegram")


class InspectionMixin:
    """Read-only views of the emulator's state and the waits built on its events (part of :class:`BotAPIEmulator`)."""

    state: EmulatorState
    _loop: asyncio.AbstractEventLoop | None

    def calls(self, method: str | None = None, chat_id: int | None = None) -> list[ApiCall]:
        """Recorded API calls, optionally filtered by method (case-insensitive) and chat."""
        with self.state.lock:
            return [
                c
                for c in self.state.calls
                if (method is None or c.method.lower() == method.lower()) and (chat_id is None or c.chat_id == chat_id)
            ]

    def call_count(self, method: str, chat_id: int | None = None, *, ok: bool | None = None) -> int:
        """How many times a method was called (optionally only successful/failed ones)."""
        return sum(1 for c in self.calls(method, chat_id) if ok is None or c.ok == ok)

    def reset_calls(self) -> None:
        """Forget the call log."""
        with self.state.lock:
            self.state.calls.clear()

    def messages(self, chat_id: int, *, include_user: bool = False, include_deleted: bool = False) -> list[JSON]:
        """Current state of the bot's messages in a chat (after edits; deleted ones left out)."""
        with self.state.lock:
            chat = self.state.chats.get(chat_id)
            if chat is None:
                return []
            return [
                copy.deepcopy(m.data)
                for _, m in sorted(chat.messages.items())
                if (include_user or m.from_bot) and (include_deleted or not m.deleted)
            ]

    def last_message(self, chat_id: int, *, include_user: bool = False) -> JSON | None:
        """The newest non-deleted bot message in a chat."""
        found = self.messages(chat_id, include_user=include_user)
        return found[-1] if found else None

    def message(self, chat_id: int, message_id: int) -> JSON | None:
        """Current state of one message (None if unknown or deleted)."""
        with self.state.lock:
            chat = self.state.chats.get(chat_id)
            stored = chat.messages.get(message_id) if chat else None
            if stored is None or stored.deleted:
                return None
            return copy.deepcopy(stored.data)

    def is_deleted(self, chat_id: int, message_id: int) -> bool:
        """Whether the bot deleted a message."""
        with self.state.lock:
            chat = self.state.chats.get(chat_id)
            stored = chat.messages.get(message_id) if chat else None
            return bool(stored and stored.deleted)

    def reply_keyboard(self, chat_id: int) -> JSON | None:
        """The reply keyboard currently shown in a chat (ReplyKeyboardMarkup JSON)."""
        with self.state.lock:
            chat = self.state.chats.get(chat_id)
            return copy.deepcopy(chat.reply_keyboard) if chat else None

    def events(self, kind: str | None = None, chat_id: int | None = None, since: int = 0) -> list[Event]:
        """Observable events (bot_message, bot_edit, bot_delete, callback_answer, chat_action, ...)."""
        with self.state.lock:
            return [
                e
                for e in self.state.events[since:]
                if (kind is None or e.kind == kind) and (chat_id is None or e.chat_id == chat_id)
            ]

    def callback_answers(self, chat_id: int | None = None) -> list[JSON]:
        """answerCallbackQuery calls (text, show_alert, url, ... plus the query's data)."""
        return [e.data for e in self.events("callback_answer", chat_id)]

    def chat_actions(self, chat_id: int) -> list[str]:
        """sendChatAction actions sent to a chat, in order."""
        return [e.data["action"] for e in self.events("chat_action", chat_id)]

    def updates(self, kind: str | None = None) -> list[JSON]:
        """Every update created so far (including confirmed ones)."""
        with self.state.lock:
            return [copy.deepcopy(u.payload) for u in self.state.update_log if kind is None or u.type == kind]

    def pending_updates(self) -> list[JSON]:
        """Updates not yet confirmed (getUpdates) / delivered (webhook)."""
        with self.state.lock:
            return [copy.deepcopy(u.payload) for u in self.state.pending]

    def webhook_deliveries(self) -> list[WebhookDelivery]:
        """Every webhook POST attempt."""
        with self.state.lock:
            return list(self.state.webhook_deliveries)

    def webhook(self) -> WebhookConfig | None:
        """The current webhook configuration."""
        with self.state.lock:
            return copy.copy(self.state.webhook)

    def commands(self, scope: JSON | None = None, language_code: str | None = None) -> list[JSON]:
        """The command list stored by setMyCommands for a scope/language."""
        with self.state.lock:
            return copy.deepcopy(self.state.commands.get(self.state.scope_key(scope, language_code), []))

    def invoices(self) -> list[Invoice]:
        """Every invoice (sent or created as a link)."""
        with self.state.lock:
            return list(self.state.invoices.values())

    def payments(self) -> list[Payment]:
        """Every completed payment."""
        with self.state.lock:
            return list(self.state.payments.values())

    def star_transactions(self) -> list[JSON]:
        """The bot's Stars ledger as getStarTransactions returns it, oldest first (every page at once)."""
        with self.state.lock:
            return [t.to_json() for t in self.state.star_transactions]

    def star_balance(self) -> int:
        """The bot's Stars: payments in, refunds out (what getMyStarBalance answers)."""
        with self.state.lock:
            return sum(t.amount if t.incoming else -t.amount for t in self.state.star_transactions)

    def subscriptions(self, user_id: int | None = None) -> list[Subscription]:
        """Every Star subscription (of one user if given), oldest first; see ``emu.subscription(ref)``."""
        with self.state.lock:
            return [s for s in self.state.subscriptions.values() if user_id is None or s.user_id == user_id]

    def file(self, file_id: str) -> StoredFile:
        """A stored file by file_id (KeyError if unknown)."""
        with self.state.lock:
            return self.state.files[file_id]

    def file_bytes(self, file_id_or_message: str | JSON) -> bytes:
        """Bytes of a file_id, or of the media in a message (largest photo size)."""
        if isinstance(file_id_or_message, dict):
            file_id = _media_file_id(file_id_or_message)
            if file_id is None:
                raise LookupError("the message has no media")
        else:
            file_id = file_id_or_message
        return self.file(file_id).content()

    # ------------------------------------------------------------------ waiting

    def mark(self) -> int:
        """A position in the event stream: waits with ``since=mark`` only see what happens after it."""
        with self.state.lock:
            return self.state.last_event_seq

    def _default_since(self, chat_id: int | None) -> int:
        with self.state.lock:
            chat = self.state.chats.get(chat_id) if chat_id is not None else None
            return chat.last_action_seq if chat else 0

    def _finder(
        self, kinds: tuple[str, ...], chat_id: int | None, predicate: Predicate | None, since: int
    ) -> Callable[[], Event | None]:
        def check() -> Event | None:
            for event in self.state.events[since:]:
                wanted = event.kind in kinds and (chat_id is None or event.chat_id == chat_id)
                if wanted and (predicate is None or _safe(predicate, event.data)):
                    return event
            return None

        return check

    def guard_blocking(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return
        if running is self._loop:
            raise RuntimeError(
                "a blocking wait in the emulator's own event loop would deadlock; use the async variant "
                "(await emu.await_message(...)) or run the emulator with run_in_thread()"
            )

    def _timeout_error(self, what: str, chat_id: int | None, since: int, timeout: float) -> WaitTimeout:
        seen = [
            f"  {e.kind} #{e.message_id}: {_summary(e.data)}"
            for e in self.events(chat_id=chat_id, since=since)
            if e.kind in (*MESSAGE_EVENTS, "callback_answer")
        ]
        detail = "\n".join(seen) if seen else "  (nothing)"
        return WaitTimeout(
            f"timed out after {timeout}s waiting for {what} in chat {chat_id}; seen since mark:\n{detail}"
        )

    def wait_for_event(
        self,
        kinds: str | tuple[str, ...],
        chat_id: int | None = None,
        predicate: Predicate | None = None,
        *,
        since: int | None = None,
        timeout: float = 5.0,
    ) -> Event:
        """Block until an event of ``kinds`` (after ``since``; default: the chat's last user action)."""
        self.guard_blocking()
        kinds = (kinds,) if isinstance(kinds, str) else kinds
        start = self._default_since(chat_id) if since is None else since
        found = self.state.wait_sync(self._finder(kinds, chat_id, predicate, start), timeout)
        if found is None:
            raise self._timeout_error("/".join(kinds), chat_id, start, timeout)
        return found

    async def await_event(
        self,
        kinds: str | tuple[str, ...],
        chat_id: int | None = None,
        predicate: Predicate | None = None,
        *,
        since: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> Event:
        """Async :meth:`wait_for_event`."""
        kinds = (kinds,) if isinstance(kinds, str) else kinds
        start = self._default_since(chat_id) if since is None else since
        found = await self.state.wait_async(self._finder(kinds, chat_id, predicate, start), timeout)
        if found is None:
            raise self._timeout_error("/".join(kinds), chat_id, start, timeout)
        return found

    def wait_for_message(
        self,
        chat_id: int,
        predicate: Predicate | None = None,
        timeout: float = 5.0,
        *,
        since: int | None = None,
        include_edits: bool = True,
    ) -> JSON:
        """First bot message (or edit) in a chat matching ``predicate`` after ``since``.

        ``since`` defaults to the chat's last user action (send/press/pay), so "act, then wait" just works.
        Predicates that raise (e.g. KeyError on a photo message) count as "no match".
        """
        kinds = MESSAGE_EVENTS if include_edits else ("bot_message",)
        return self.wait_for_event(kinds, chat_id, predicate, since=since, timeout=timeout).data

    async def await_message(
        self,
        chat_id: int,
        predicate: Predicate | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        since: int | None = None,
        include_edits: bool = True,
    ) -> JSON:
        """Async :meth:`wait_for_message`."""
        kinds = MESSAGE_EVENTS if include_edits else ("bot_message",)
        return (await self.await_event(kinds, chat_id, predicate, since=since, timeout=timeout)).data

    def wait_for_callback_answer(
        self, chat_id: int | None = None, query_id: str | None = None, timeout: float = 5.0, *, since: int | None = None
    ) -> JSON:
        """The bot's answerCallbackQuery (for ``query_id`` if given)."""
        pred = None if query_id is None else (lambda d: d["callback_query_id"] == query_id)
        return self.wait_for_event("callback_answer", chat_id, pred, since=since, timeout=timeout).data

    async def await_callback_answer(
        self,
        chat_id: int | None = None,
        query_id: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        since: int | None = None,
    ) -> JSON:
        """Async :meth:`wait_for_callback_answer`."""
        pred = None if query_id is None else (lambda d: d["callback_query_id"] == query_id)
        return (await self.await_event("callback_answer", chat_id, pred, since=since, timeout=timeout)).data

    def cursor(self, chat_id: int, *, since: int | None = None) -> MessageCursor:
        """A cursor over the bot's messages/edits in a chat; each ``next()`` returns a newer one."""
        return MessageCursor(self, chat_id, self.mark() if since is None else since)

    def expect(
        self, chat_id: int, predicate: Predicate | None = None, timeout: float = 5.0, *, include_edits: bool = True
    ) -> Expectation:
        """``with emu.expect(chat) as reply: user.send_text(...)`` then ``reply.message`` (also ``async with``)."""
        return Expectation(self, chat_id, predicate, timeout, include_edits)


def _media_file_id(message: JSON) -> str | None:
    photo = message.get("photo")
    if photo:
        return str(photo[-1]["file_id"])
    for kind in ("video", "animation", "document", "audio", "voice", "sticker", "video_note"):
        if message.get(kind):
            return str(message[kind]["file_id"])
    return None


def _safe(predicate: Predicate, data: JSON) -> bool:
    try:
        return bool(predicate(data))
    except Exception:
        return False


def _summary(data: JSON) -> str:
    text = data.get("text") or data.get("caption") or data.get("callback_query_id") or ""
    kinds = [k for k in ("photo", "video", "document", "animation", "invoice") if k in data]
    extra = f" [{', '.join(kinds)}]" if kinds else ""
    if "text" in data or "caption" in data:
        text = repr(str(text)[:80])
    elif "show_alert" in data:
        text = f"answer {data.get('text')!r}"
    return f"{text}{extra}"
