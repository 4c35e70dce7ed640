"""Shared pieces of the Bot API methods: limits, validation, chat lookup, formatting, sending, editing."""

from __future__ import annotations

import copy
import re
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import bad_request, forbidden
from ..formatting import parse_text
from ..params import Params
from ..state import JSON, Chat, EmulatorState, StoredMessage, now

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
MAX_CALLBACK_ANSWER = 200

BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
MEDIA_KINDS = ("photo", "video", "animation", "document", "audio", "voice", "sticker", "video_note")
COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)

Handler = Callable[[Params], Awaitable[Any]]
UrlFetcher = Callable[[str], Awaitable[tuple[bytes, str | None]]]


def validate_inline_keyboard(rows: Any) -> list[list[JSON]]:
    """Check an inline keyboard like Telegram does and return it."""
    if not isinstance(rows, list) or any(not isinstance(row, list) for row in rows):
        raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
    total = 0
    for row in rows:
        for button in row:
            total += 1
            if not isinstance(button, dict):
                raise bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
            text = button.get("text")
            if not isinstance(text, str) or not text.strip():
                raise bad_request("can't parse inline keyboard button: Text must be non-empty")
            actions = [k for k in BUTTON_ACTIONS if k in button and button[k] is not None and button[k] is not False]
            if not actions:
                raise bad_request(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                )
            if "callback_data" in button:
                data = button["callback_data"]
                if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA:
                    raise bad_request("BUTTON_DATA_INVALID")
            if "url" in button:
                url = str(button["url"])
                if not url.startswith(("http://", "https://", "tg://")):
                    raise bad_request("BUTTON_URL_INVALID")
    if total > 100:
        raise bad_request("REPLY_MARKUP_TOO_LONG")
    return rows


class MethodsBase:
    """State, collaborators and the helpers every group of methods uses."""

    def __init__(
        self,
        state: EmulatorState,
        *,
        fetch_url: UrlFetcher | None = None,
        on_webhook_changed: Callable[[], None] | None = None,
        allow_http_webhook: bool = True,
    ) -> None:
        self.state = state
        self.fetch_url = fetch_url
        self.on_webhook_changed = on_webhook_changed or (lambda: None)
        self.allow_http_webhook = allow_http_webhook

    def chat_for(self, p: Params, name: str = "chat_id") -> Chat:
        """Resolve chat_id (int or @username) to a known chat."""
        cid = p.get_chat_id(name)
        with self.state.lock:
            if isinstance(cid, str):
                wanted = cid.lstrip("@").lower()
                for chat in self.state.chats.values():
                    if (chat.username or "").lower() == wanted:
                        return chat
                raise bad_request("chat not found")
            chat = self.state.chats.get(int(cid))  # type: ignore[arg-type]
            if chat is None:
                raise bad_request("chat not found")
            return chat

    def target_for(self, p: Params, name: str = "chat_id") -> Chat:
        """A chat the bot writes to (403 if the user blocked the bot)."""
        chat = self.chat_for(p, name)
        if chat.blocked:
            raise forbidden("bot was blocked by the user")
        return chat

    @staticmethod
    def formatted(p: Params, field: str, entities_field: str, *, caption: bool) -> tuple[str, list[JSON]]:
        """Parse text or caption with parse_mode/entities and enforce length limits."""
        raw = p.get_str(field) or ""
        entities = p.get_json(entities_field)
        parse_mode = p.get_str("parse_mode")
        text, ents = parse_text(raw, parse_mode, entities if isinstance(entities, list) else None)
        if caption:
            if len(text) > MAX_CAPTION:
                raise bad_request("message caption is too long")
        else:
            if not text.strip():
                raise bad_request("message text is empty")
            if len(text) > MAX_TEXT:
                raise bad_request("message is too long")
        return text, ents

    @staticmethod
    def markup(p: Params, *, inline_only: bool = False) -> tuple[JSON | None, JSON | None]:
        """(inline markup for the message, reply-keyboard markup for the chat) from reply_markup."""
        value = p.get_json("reply_markup")
        if value is None:
            return None, None
        if not isinstance(value, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in value:
            return {"inline_keyboard": validate_inline_keyboard(value["inline_keyboard"])}, None
        if inline_only:
            raise bad_request("inline keyboard expected")
        if "keyboard" in value:
            rows = value["keyboard"]
            if not isinstance(rows, list) or any(not isinstance(r, list) for r in rows):
                raise bad_request('field "keyboard" of the ReplyKeyboardMarkup must be an Array of Arrays')
            for row in rows:
                for button in row:
                    text = button if isinstance(button, str) else (button or {}).get("text")
                    if not isinstance(text, str) or not text:
                        raise bad_request("can't parse keyboard button: Text must be non-empty")
            return None, value
        if value.get("remove_keyboard") or value.get("force_reply"):
            return None, value
        raise bad_request("can't parse reply keyboard markup JSON object")

    def reply_to(self, chat: Chat, p: Params) -> JSON | None:
        """The replied-to message snapshot for reply_parameters / reply_to_message_id."""
        params = p.get_json("reply_parameters")
        mid: int | None = None
        allow_missing = p.get_bool("allow_sending_without_reply")
        if isinstance(params, dict) and params.get("message_id") is not None:
            mid = int(params["message_id"])
            allow_missing = bool(params.get("allow_sending_without_reply", allow_missing))
        elif p.has("reply_to_message_id"):
            mid = p.get_int("reply_to_message_id")
        if mid is None:
            return None
        with self.state.lock:
            target = chat.messages.get(mid)
            if target is None or target.deleted:
                if allow_missing:
                    return None
                raise bad_request("message to be replied not found")
            snapshot = copy.deepcopy(target.data)
        snapshot.pop("reply_to_message", None)
        return snapshot

    def bot_send(
        self,
        chat: Chat,
        content: JSON,
        *,
        inline: JSON | None = None,
        keyboard: JSON | None = None,
        reply: JSON | None = None,
        p: Params | None = None,
    ) -> JSON:
        """Store a bot message, emit a ``bot_message`` event and return the Message JSON."""
        if reply:
            content["reply_to_message"] = reply
        if inline:
            content["reply_markup"] = inline
        if p is not None and p.get_bool("protect_content"):
            content["has_protected_content"] = True
        with self.state.lock:
            msg = self.state.add_message(chat, self.state.bot_user, content, from_bot=True)
            if keyboard is not None:
                msg.reply_keyboard = keyboard
                removed = keyboard.get("remove_keyboard") or keyboard.get("force_reply")
                chat.reply_keyboard = None if removed else keyboard
            self.state.add_event("bot_message", chat.id, msg.message_id, msg.data)
            return copy.deepcopy(msg.data)

    def editable(self, p: Params) -> StoredMessage:
        """The bot message addressed by chat_id + message_id for edits."""
        if p.has("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self.target_for(p)
        mid = p.get_int("message_id", required=True)
        with self.state.lock:
            msg = chat.messages.get(mid or 0)
            if msg is None or msg.deleted:
                raise bad_request("message to edit not found")
            if not msg.from_bot:
                raise bad_request("message can't be edited")
            return msg

    def commit_edit(self, msg: StoredMessage, changes: JSON, inline: JSON | None, compare: tuple[str, ...]) -> JSON:
        """Apply an edit (keyboard removed when not given), or 400 when nothing changes."""
        with self.state.lock:
            before = {k: msg.data.get(k) for k in (*compare, "reply_markup")}
            after = {k: changes.get(k) for k in compare}
            after["reply_markup"] = inline
            if normalized(before) == normalized(after):
                raise bad_request(NOT_MODIFIED)
            for key, value in changes.items():
                if value is None or value == []:
                    msg.data.pop(key, None)
                else:
                    msg.data[key] = value
            if inline:
                msg.data["reply_markup"] = inline
            else:
                msg.data.pop("reply_markup", None)
            msg.data["edit_date"] = now()
            msg.edit_count += 1
            self.state.add_event("bot_edit", msg.chat_id, msg.message_id, msg.data)
            return copy.deepcopy(msg.data)


def normalized(values: JSON) -> JSON:
    return {k: v for k, v in values.items() if v not in (None, [], "")}
