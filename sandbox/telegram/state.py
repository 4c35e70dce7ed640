"""The emulator's state model (chats, users, messages, files, updates, invoices, payments).

Everything lives in one :class:`EmulatorState` guarded by a re-entrant ``threading.RLock``; state
changes wake both thread waiters (a ``Condition``) and asyncio waiters in any event loop.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .ledger import StarTransaction, Subscription

T = TypeVar("T")
JSON = dict[str, Any]

#: Update types delivered when allowed_updates is empty / not set.
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

FILE_ID_PREFIX: dict[str, str] = {
    "photo": "AgACAgIAAxkBAAI",
    "video": "BAACAgIAAxkBAAI",
    "document": "BQACAgIAAxkBAAI",
    "animation": "CgACAgIAAxkBAAI",
    "sticker": "CAACAgIAAxkBAAI",
    "voice": "AwACAgIAAxkBAAI",
    "audio": "CQACAgIAAxkBAAI",
    "video_note": "DQACAgIAAxkBAAI",
}
FILE_FOLDER: dict[str, str] = {
    "photo": "photos",
    "video": "videos",
    "document": "documents",
    "animation": "animations",
    "sticker": "stickers",
    "voice": "voice",
    "audio": "music",
    "video_note": "video_notes",
}


def now() -> int:
    """Unix time as Telegram sends it."""
    return int(time.time())


@dataclass
class StoredFile:
    """A file known to the emulator (uploaded by the bot or sent by a user)."""

    file_id: str
    file_unique_id: str
    kind: str
    file_path: str
    data: bytes | None
    mime_type: str | None = None
    file_name: str | None = None
    width: int | None = None
    height: int | None = None
    duration: int | None = None
    #: For lazily generated photo thumbnails: the source file to resize.
    source: StoredFile | None = None
    #: For photos: file_ids of every PhotoSize of the same photo, smallest first.
    photo_group: list[str] = field(default_factory=list)
    extra: JSON = field(default_factory=dict)

    def content(self) -> bytes:
        """The file bytes (thumbnails are rendered on first access)."""
        if self.data is None:
            from .media import resize_image

            src = self.source.content() if self.source else b""
            self.data = resize_image(src, self.width or 1, self.height or 1)
        return self.data

    @property
    def size(self) -> int | None:
        """Size in bytes if known without rendering."""
        return None if self.data is None else len(self.data)

    def base_dict(self) -> JSON:
        """file_id, file_unique_id and file_size when known."""
        out: JSON = {"file_id": self.file_id, "file_unique_id": self.file_unique_id}
        if self.size is not None:
            out["file_size"] = self.size
        return out

    def as_photo_size(self) -> JSON:
        """A PhotoSize object."""
        return {**self.base_dict(), "width": self.width or 0, "height": self.height or 0}

    def as_media(self) -> JSON:
        """A Video/Document/Animation/Voice/Audio/Sticker-like object."""
        out = self.base_dict()
        if self.kind in ("video", "animation", "sticker", "video_note") or self.width is not None:
            out["width"] = self.width or 0
            out["height"] = self.height or 0
        if self.kind in ("video", "animation", "voice", "audio", "video_note"):
            out["duration"] = self.duration or 0
        if self.kind == "video_note":
            out["length"] = out.pop("width")
            out.pop("height", None)
        if self.file_name and self.kind in ("document", "video", "animation", "audio"):
            out["file_name"] = self.file_name
        if self.mime_type and self.kind != "sticker":
            out["mime_type"] = self.mime_type
        out.update(self.extra)
        return out

    def as_file(self) -> JSON:
        """A File object as getFile returns it."""
        data = self.content()
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(data),
            "file_path": self.file_path,
        }


@dataclass
class StoredMessage:
    """One message in a chat, from the bot or from the user."""

    chat_id: int
    message_id: int
    from_bot: bool
    data: JSON
    deleted: bool = False
    edit_count: int = 0
    #: A reply keyboard (or its removal) sent with this message; not part of the Message JSON.
    reply_keyboard: JSON | None = None


@dataclass
class Chat:
    """A chat (private chats with emulated users; the model allows others)."""

    id: int
    type: str = "private"
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    title: str | None = None
    blocked: bool = False
    next_message_id: int = 1
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    last_action_seq: int = 0
    menu_button: JSON | None = None
    #: The reply keyboard currently shown to the user (None when removed / never sent).
    reply_keyboard: JSON | None = None
    chat_instance: str = field(default_factory=lambda: str(secrets.randbits(62) - 2**61))

    def to_dict(self) -> JSON:
        """The Chat object embedded in messages."""
        out: JSON = {"id": self.id, "type": self.type}
        for key in ("title", "username", "first_name", "last_name"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out


@dataclass
class Update:
    """An update created by the emulator (kept for inspection even after confirmation)."""

    update_id: int
    type: str
    payload: JSON
    created: float = field(default_factory=time.time)
    filtered: bool = False


@dataclass
class Event:
    """Something observable happened (bot sent/edited/deleted a message, answered a query...)."""

    seq: int
    kind: str
    chat_id: int | None
    message_id: int | None
    data: JSON
    time: float = field(default_factory=time.time)


@dataclass
class CallbackQueryRecord:
    """A callback query sent by a user and the bot's answer to it."""

    id: str
    user_id: int
    chat_id: int
    message_id: int | None
    data: str | None
    created: float = field(default_factory=time.time)
    answered: bool = False
    answer: JSON | None = None


@dataclass
class Invoice:
    """An invoice sent as a message (chat_id/message_id) or created as a link (slug)."""

    id: str
    title: str
    description: str
    payload: str
    currency: str
    prices: list[JSON]
    provider_token: str = ""
    start_parameter: str = ""
    chat_id: int | None = None
    message_id: int | None = None
    link: str | None = None
    extra: JSON = field(default_factory=dict)
    #: Seconds between charges for a Star subscription link (createInvoiceLink only); None for one-off invoices.
    subscription_period: int | None = None

    @property
    def total_amount(self) -> int:
        """Sum of the price items."""
        return sum(int(p["amount"]) for p in self.prices)


@dataclass
class PreCheckoutRecord:
    """A pre_checkout_query and the bot's answer."""

    id: str
    user_id: int
    chat_id: int
    invoice: Invoice
    created: float = field(default_factory=time.time)
    deadline: float = 0.0
    answered: bool = False
    expired: bool = False
    ok: bool | None = None
    error_message: str | None = None


@dataclass
class Payment:
    """A completed payment (successful_payment) and its refund state."""

    telegram_payment_charge_id: str
    provider_payment_charge_id: str
    user_id: int
    chat_id: int
    currency: str
    total_amount: int
    invoice_payload: str
    date: int
    message_ids: list[int] = field(default_factory=list)
    refunded: bool = False
    #: For Star subscriptions: the subscription, whether it is the first charge, and the paid-up-to date.
    subscription_id: str | None = None
    is_first_recurring: bool = False
    subscription_expiration_date: int | None = None

    def successful_payment(self) -> JSON:
        """The SuccessfulPayment object of this charge."""
        out: JSON = {
            "currency": self.currency,
            "total_amount": self.total_amount,
            "invoice_payload": self.invoice_payload,
            "telegram_payment_charge_id": self.telegram_payment_charge_id,
            "provider_payment_charge_id": self.provider_payment_charge_id,
        }
        if self.subscription_id is not None:
            out["subscription_expiration_date"] = self.subscription_expiration_date
            out["is_recurring"] = True
            if self.is_first_recurring:
                out["is_first_recurring"] = True
        return out

    def refunded_payment(self) -> JSON:
        """The RefundedPayment object of this charge."""
        out: JSON = {
            "currency": self.currency,
            "total_amount": self.total_amount,
            "invoice_payload": self.invoice_payload,
            "telegram_payment_charge_id": self.telegram_payment_charge_id,
        }
        if self.provider_payment_charge_id:
            out["provider_payment_charge_id"] = self.provider_payment_charge_id
        return out


@dataclass
class ApiCall:
    """One Bot API request as received, with its outcome."""

    seq: int
    method: str
    params: JSON
    time: float
    chat_id: int | str | None = None
    ok: bool | None = None
    error_code: int | None = None
    description: str | None = None
    result: Any = None
    #: "http" for requests, "webhook_reply" for methods returned in a webhook response.
    via: str = "http"


@dataclass
class FaultRule:
    """A scripted failure (or delay) for the next ``times`` calls of a method."""

    method: str
    error_code: int | None
    description: str | None = None
    retry_after: int | None = None
    times: int = 1
    chat_id: int | None = None
    delay: float = 0.0
    # "hang": run the method, then hold the answer for ``delay`` s (the client times out);
    # "reset": run the method, then drop the connection without answering.
    after: str | None = None

    def matches(self, method: str, chat_id: int | str | None) -> bool:
        """Whether this rule applies to a call."""
        if self.times <= 0:
            return False
        if self.method not in ("*", method.lower()):
            return False
        return self.chat_id is None or self.chat_id == chat_id


@dataclass
class UploadRefusal:
    """A file Telegram will not take (``refuse_upload``): uploads whose file name contains ``name``
    (or for which ``predicate(file_name, data)`` is true) are refused with 400 ``description``."""

    description: str
    name: str | None = None
    predicate: Callable[[str | None, bytes], bool] | None = None
    times: int | None = None  # None: until clear_faults
    refused: int = 0

    def matches(self, file_name: str | None, data: bytes) -> bool:
        """Whether this refusal applies to an upload."""
        if self.times is not None and self.times <= 0:
            return False
        if self.name is not None and self.name not in (file_name or ""):
            return False
        return self.predicate is None or bool(self.predicate(file_name, data))


@dataclass
class WebhookConfig:
    """What setWebhook stored."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    allowed_updates: list[str] | None = None
    ip_address: str | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class WebhookDelivery:
    """One POST attempt of an update to the webhook."""

    update_id: int
    attempt: int
    status: int | None
    error: str | None
    time: float = field(default_factory=time.time)


class EmulatorState:
    """All mutable state plus the wake-up machinery; every access goes through ``lock``."""

    def __init__(self, bot_id: int, bot_username: str, bot_first_name: str) -> None:
        self.lock = threading.RLock()
        self._cond = threading.Condition(self.lock)
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.bot_user: JSON = {
            "id": bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.users: dict[int, JSON] = {}
        self.chats: dict[int, Chat] = {}
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        self.pending: list[Update] = []
        self.update_log: list[Update] = []
        self.events: list[Event] = []
        self.calls: list[ApiCall] = []
        self.invoices: dict[str, Invoice] = {}
        self.invoice_by_message: dict[tuple[int, int], str] = {}
        self.invoice_by_link: dict[str, str] = {}
        self.payments: dict[str, Payment] = {}
        #: The bot's Stars ledger, oldest first (what getStarTransactions pages through).
        self.star_transactions: list[StarTransaction] = []
        self.subscriptions: dict[str, Subscription] = {}
        self.subscription_by_charge: dict[str, str] = {}
        self.callback_queries: dict[str, CallbackQueryRecord] = {}
        self.pre_checkouts: dict[str, PreCheckoutRecord] = {}
        self.commands: dict[str, list[JSON]] = {}
        self.bot_texts: dict[str, str] = {}
        self.default_menu_button: JSON = {"type": "default"}
        self.webhook: WebhookConfig | None = None
        self.webhook_deliveries: list[WebhookDelivery] = []
        self.allowed_updates: list[str] | None = None
        self.faults: list[FaultRule] = []
        self.upload_refusals: list[UploadRefusal] = []
        self.flood_per_chat: tuple[int, float] | None = None
        self.flood_global: tuple[int, float] | None = None
        self.sent_times: list[tuple[float, int | None]] = []
        self.closing = False
        self.poll_generation = 0
        self._update_ids = itertools.count(1)
        self._event_seq = itertools.count(1)
        self._call_seq = itertools.count(1)
        self._file_seq = itertools.count(1)
        self._user_ids = itertools.count(1_000_001)
        self._query_seq = itertools.count(1)
        self.last_event_seq = 0

    # ------------------------------------------------------------ wake-ups

    def notify(self) -> None:
        """Wake every waiter (call with the lock held)."""
        self._cond.notify_all()
        waiters, self._async_waiters = self._async_waiters, []
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, fut)
            except RuntimeError:  # loop closed
                pass

    def wait_sync(self, check: Callable[[], T | None], timeout: float) -> T | None:
        """Block the current thread until ``check()`` returns non-None or the timeout passes."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = check()
                if result is not None:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closing:
                    return None
                self._cond.wait(remaining)

    async def wait_async(self, check: Callable[[], T | None], timeout: float) -> T | None:  # noqa: ASYNC109
        """Await until ``check()`` returns non-None or the timeout passes (any event loop)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self.lock:
                result = check()
                if result is not None:
                    return result
                if self.closing:
                    return None
                fut: asyncio.Future[None] = loop.create_future()
                self._async_waiters.append((loop, fut))
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(fut, remaining)
            except TimeoutError:
                pass
            finally:
                with self.lock:
                    self._async_waiters = [w for w in self._async_waiters if w[1] is not fut]

    # ------------------------------------------------------------ ids

    def new_user_id(self) -> int:
        """A fresh user id."""
        with self.lock:
            uid = next(self._user_ids)
            while uid in self.users:
                uid = next(self._user_ids)
            return uid

    def new_query_id(self) -> str:
        """A unique numeric-looking query id (callback / pre-checkout)."""
        return f"{secrets.randbelow(10**9) + 10**9}{next(self._query_seq):09d}"

    def new_file(self, kind: str, data: bytes | None, ext: str, **fields: Any) -> StoredFile:
        """Register a file with generated ids and path."""
        with self.lock:
            n = next(self._file_seq)
            file_id = FILE_ID_PREFIX.get(kind, "BQACAgIAAxkBAAI") + secrets.token_urlsafe(40)
            unique = "AQAD" + secrets.token_urlsafe(9)
            path = f"{FILE_FOLDER.get(kind, 'documents')}/file_{n}.{ext}"
            stored = StoredFile(file_id, unique, kind, path, data, **fields)
            self.files[file_id] = stored
            self.files_by_path[path] = stored
            return stored

    # ------------------------------------------------------------ chats and messages

    def ensure_private_chat(self, user: JSON) -> Chat:
        """Get or create the private chat with a user."""
        with self.lock:
            chat = self.chats.get(user["id"])
            if chat is None:
                chat = Chat(id=user["id"])
                self.chats[chat.id] = chat
            chat.first_name = user.get("first_name")
            chat.last_name = user.get("last_name")
            chat.username = user.get("username")
            return chat

    def add_message(self, chat: Chat, sender: JSON, content: JSON, *, from_bot: bool) -> StoredMessage:
        """Append a message to a chat, numbering it in the chat's shared sequence."""
        with self.lock:
            mid = chat.next_message_id
            chat.next_message_id += 1
            data: JSON = {"message_id": mid, "from": dict(sender), "chat": chat.to_dict(), "date": now()}
            data.update(content)
            msg = StoredMessage(chat.id, mid, from_bot, data)
            chat.messages[mid] = msg
            return msg

    def add_event(self, kind: str, chat_id: int | None, message_id: int | None, data: JSON) -> Event:
        """Record an observable event and wake waiters."""
        with self.lock:
            seq = next(self._event_seq)
            event = Event(seq, kind, chat_id, message_id, copy.deepcopy(data))
            self.events.append(event)
            self.last_event_seq = seq
            self.notify()
            return event

    # ------------------------------------------------------------ updates

    def enqueue_update(self, kind: str, obj: JSON) -> Update:
        """Create an update; it is dropped (``filtered``) if allowed_updates excludes its type."""
        with self.lock:
            uid = next(self._update_ids)
            update = Update(uid, kind, {"update_id": uid, kind: copy.deepcopy(obj)})
            allowed = self.webhook.allowed_updates if self.webhook else self.allowed_updates
            if allowed:
                update.filtered = kind not in allowed
            else:
                update.filtered = kind in DEFAULT_EXCLUDED_UPDATES
            self.update_log.append(update)
            if not update.filtered:
                self.pending.append(update)
            self.notify()
            return update

    def confirm(self, offset: int | None) -> None:
        """Drop updates below ``offset`` (negative: keep only the last ``-offset``)."""
        with self.lock:
            if offset is None or offset == 0:
                return
            if offset < 0:
                self.pending = self.pending[offset:]
            else:
                self.pending = [u for u in self.pending if u.update_id >= offset]

    # ------------------------------------------------------------ misc

    def next_call_seq(self) -> int:
        """Sequence number for the call log."""
        return next(self._call_seq)

    @staticmethod
    def scope_key(scope: JSON | None, language_code: str | None) -> str:
        """Storage key for per-scope, per-language bot settings."""
        scope = scope or {"type": "default"}
        return json.dumps(scope, sort_keys=True) + "|" + (language_code or "")


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
