"""Bot API method implementations on top of :class:`~sandbox.telegram.state.EmulatorState`.

The HTTP layer (server.py) parses requests into :class:`Params` and calls :meth:`BotMethods.call`;
errors are raised as :class:`ApiError` with Telegram's descriptions.
"""

from __future__ import annotations

import copy
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

from .errors import ApiError, bad_request, conflict, forbidden
from .formatting import parse_text
from .media import (
    extension_for,
    guess_mime,
    photo_size_plan,
    probe_image,
    probe_mp4,
    resize_image,
)
from .params import Params, Upload
from .state import (
    JSON,
    Chat,
    EmulatorState,
    Invoice,
    StoredFile,
    StoredMessage,
    WebhookConfig,
    now,
)

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
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
_NOT_MODIFIED = (
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


class BotMethods:
    """Implements the supported Bot API methods."""

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
        self.handlers: dict[str, tuple[str, Handler]] = {}
        for name in (
            "getMe",
            "logOut",
            "close",
            "getUpdates",
            "setWebhook",
            "deleteWebhook",
            "getWebhookInfo",
            "sendMessage",
            "editMessageText",
            "editMessageReplyMarkup",
            "editMessageCaption",
            "editMessageMedia",
            "deleteMessage",
            "deleteMessages",
            "answerCallbackQuery",
            "sendChatAction",
            "sendPhoto",
            "sendVideo",
            "sendDocument",
            "sendAnimation",
            "sendAudio",
            "sendVoice",
            "sendSticker",
            "sendVideoNote",
            "sendMediaGroup",
            "copyMessage",
            "forwardMessage",
            "getFile",
            "setMyCommands",
            "getMyCommands",
            "deleteMyCommands",
            "setMyDescription",
            "getMyDescription",
            "setMyShortDescription",
            "getMyShortDescription",
            "setMyName",
            "getMyName",
            "setChatMenuButton",
            "getChatMenuButton",
            "getChat",
            "setMessageReaction",
            "sendInvoice",
            "createInvoiceLink",
            "answerPreCheckoutQuery",
            "refundStarPayment",
        ):
            self.handlers[name.lower()] = (name, getattr(self, "m_" + name))

    def canonical(self, method: str) -> str | None:
        """The canonical method name (Telegram method names are case-insensitive)."""
        entry = self.handlers.get(method.lower())
        return entry[0] if entry else None

    async def call(self, method: str, params: Params) -> Any:
        """Run a method; raises ApiError (404 for unknown methods)."""
        entry = self.handlers.get(method.lower())
        if entry is None:
            raise ApiError(404, "Not Found")
        return await entry[1](params)

    # ------------------------------------------------------------ helpers

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
            if _normalized(before) == _normalized(after):
                raise bad_request(_NOT_MODIFIED)
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

    # ------------------------------------------------------------ files

    def register_photo(self, data: bytes, width: int, height: int) -> StoredFile:
        """Store a photo with Telegram-like PhotoSizes; returns the largest size."""
        plan = photo_size_plan(width, height)
        original = StoredFile("", "", "photo", "", data, width=width, height=height)
        sizes: list[StoredFile] = []
        for index, (w, h) in enumerate(plan):
            is_largest = index == len(plan) - 1
            if (w, h) == (width, height):
                content: bytes | None = data
            elif is_largest:
                content = resize_image(data, w, h)
            else:
                content = None
            sizes.append(
                self.state.new_file("photo", content, "jpg", width=w, height=h, source=original, mime_type="image/jpeg")
            )
        group = [s.file_id for s in sizes]
        for s in sizes:
            s.photo_group = group
        return sizes[-1]

    def store_photo_upload(self, data: bytes) -> StoredFile:
        """Validate a photo the bot uploads (size, decodability, dimensions) and store it."""
        if len(data) > MAX_PHOTO_BYTES:
            raise bad_request("PHOTO_SAVE_FILE_INVALID")
        info = probe_image(data)
        if info is None:
            raise bad_request("IMAGE_PROCESS_FAILED")
        w, h = info.width, info.height
        if w + h > 10000 or max(w, h) > 20 * min(w, h):
            raise bad_request("PHOTO_INVALID_DIMENSIONS")
        return self.register_photo(data, w, h)

    def store_media(
        self,
        kind: str,
        data: bytes,
        file_name: str | None,
        content_type: str | None,
        *,
        width: int | None = None,
        height: int | None = None,
        duration: int | None = None,
        extra: JSON | None = None,
    ) -> StoredFile:
        """Store a non-photo file with best-effort metadata."""
        default_mime = {
            "voice": "audio/ogg",
            "audio": "audio/mpeg",
            "video": "video/mp4",
            "animation": "video/mp4",
            "video_note": "video/mp4",
            "sticker": "image/webp",
        }.get(kind, "application/octet-stream")
        mime = content_type if content_type and content_type != "application/octet-stream" else None
        mime = mime or guess_mime(file_name, data, default_mime)
        if kind in ("video", "animation", "video_note"):
            probed = probe_mp4(data)
            if probed:
                width = width or probed[0] or None
                height = height or probed[1] or None
                duration = duration if duration is not None else probed[2]
            width, height = width or 640, height or 360
        elif kind == "sticker":
            info = probe_image(data)
            width = width or (info.width if info else 512)
            height = height or (info.height if info else 512)
            extra = {"type": "regular", "is_animated": False, "is_video": False, **(extra or {})}
        elif kind == "document":
            file_name = file_name or "document"
        ext = PurePosixPath(file_name).suffix.lstrip(".") if file_name and "." in file_name else extension_for(mime)
        return self.state.new_file(
            kind,
            data,
            ext or "bin",
            mime_type=mime,
            file_name=file_name if kind in ("document", "video", "animation", "audio") else None,
            width=width if kind in ("video", "animation", "sticker", "video_note") else None,
            height=height if kind in ("video", "animation", "sticker", "video_note") else None,
            duration=duration if kind in ("video", "animation", "voice", "audio", "video_note") else None,
            extra=extra or {},
        )

    async def resolve_file(
        self, value: Upload | str, kind: str, p: Params | None = None, spec: JSON | None = None
    ) -> StoredFile:
        """Turn an upload, URL or file_id into a stored file of the requested kind."""
        data: bytes
        file_name: str | None
        content_type: str | None = None
        if isinstance(value, Upload):
            data, file_name, content_type = value.data, value.filename, value.content_type
        elif value.startswith(("http://", "https://")):
            if self.fetch_url is None:
                raise bad_request("failed to get HTTP URL content")
            try:
                data, content_type = await self.fetch_url(value)
            except ApiError:
                raise
            except Exception:
                raise bad_request("failed to get HTTP URL content") from None
            file_name = PurePosixPath(urlparse(value).path).name or None
        else:
            with self.state.lock:
                stored = self.state.files.get(value)
            if stored is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
            if (kind == "photo") != (stored.kind == "photo"):
                raise bad_request(f"can't use file of type {stored.kind.title()} as {kind.title()}")
            return stored
        if not data:
            raise bad_request("file must be non-empty")
        if kind == "photo":
            return self.store_photo_upload(data)

        def num(name: str) -> int | None:
            if spec is not None and spec.get(name) is not None:
                return int(spec[name])
            return p.get_int(name) if p is not None else None

        extra: JSON = {}
        if kind == "sticker" and p is not None and p.get_str("emoji"):
            extra["emoji"] = p.get_str("emoji")
        if kind == "audio":
            for key in ("performer", "title"):
                val = (spec or {}).get(key) or (p.get_str(key) if p is not None else None)
                if val:
                    extra[key] = val
        return self.store_media(
            kind,
            data,
            file_name,
            content_type,
            width=num("width"),
            height=num("height"),
            duration=num("duration"),
            extra=extra,
        )

    def media_content(self, kind: str, stored: StoredFile) -> JSON:
        """Message fields for a media file."""
        with self.state.lock:
            if kind == "photo":
                group = stored.photo_group or [stored.file_id]
                return {"photo": [self.state.files[fid].as_photo_size() for fid in group]}
            media = stored.as_media()
            if kind == "animation":
                doc = {k: v for k, v in media.items() if k not in ("width", "height", "duration")}
                return {"animation": media, "document": doc}
            if kind == "document":
                media = {k: v for k, v in media.items() if k not in ("width", "height", "duration")}
            return {kind: media}

    async def send_media(self, p: Params, kind: str) -> JSON:
        """Shared body of sendPhoto/sendVideo/sendDocument/..."""
        chat = self.target_for(p)
        caption, cents = ("", [])
        if kind not in ("sticker", "video_note"):
            caption, cents = self.formatted(p, "caption", "caption_entities", caption=True)
        inline, keyboard = self.markup(p)
        reply = self.reply_to(chat, p)
        value = p.get_input_file(kind)
        if value is None:
            raise bad_request(f"there is no {kind} in the request")
        stored = await self.resolve_file(value, kind, p)
        content = self.media_content(kind, stored)
        if caption:
            content["caption"] = caption
            if cents:
                content["caption_entities"] = cents
        if p.get_bool("has_spoiler"):
            content["has_media_spoiler"] = True
        if p.get_bool("show_caption_above_media"):
            content["show_caption_above_media"] = True
        return self.bot_send(chat, content, inline=inline, keyboard=keyboard, reply=reply, p=p)

    # ------------------------------------------------------------ bot info

    async def m_getMe(self, p: Params) -> JSON:
        return dict(self.state.bot_user)

    async def m_logOut(self, p: Params) -> bool:
        return True

    async def m_close(self, p: Params) -> bool:
        return True

    # ------------------------------------------------------------ updates / webhook

    async def m_getUpdates(self, p: Params) -> list[JSON]:
        offset = p.get_int("offset")
        limit = min(max(p.get_int("limit", default=100) or 100, 1), 100)
        timeout = max(p.get_int("timeout", default=0) or 0, 0)
        allowed = p.get_json("allowed_updates")
        state = self.state
        with state.lock:
            if state.webhook is not None:
                raise conflict(
                    "can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
                )
            if isinstance(allowed, list):
                state.allowed_updates = list(allowed) or None
            state.confirm(offset)
            state.poll_generation += 1
            generation = state.poll_generation
            state.notify()

        def check() -> list[JSON] | str | None:
            if state.poll_generation != generation:
                return "terminated"
            if state.webhook is not None:
                return "webhook"
            if state.closing:
                return []
            if state.pending:
                return [copy.deepcopy(u.payload) for u in state.pending[:limit]]
            return None

        if timeout:
            result = await state.wait_async(check, float(timeout))
        else:
            with state.lock:
                result = check()
        if result == "terminated":
            raise conflict("terminated by other getUpdates request; make sure that only one bot instance is running")
        if result == "webhook":
            raise conflict(
                "can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
            )
        return result if isinstance(result, list) else []

    async def m_setWebhook(self, p: Params) -> bool:
        url = p.get_str("url") or ""
        if not url:
            return await self.m_deleteWebhook(p)
        parsed = urlparse(url)
        if parsed.scheme not in ("https", "http") or not parsed.netloc:
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if parsed.scheme == "http" and not self.allow_http_webhook:
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.get_str("secret_token")
        if secret is not None and secret != "" and not _SECRET_RE.match(secret):
            raise bad_request("secret token contains unallowed characters")
        allowed = p.get_json("allowed_updates")
        with self.state.lock:
            previous = self.state.webhook
            self.state.webhook = WebhookConfig(
                url=url,
                secret_token=secret or None,
                max_connections=p.get_int("max_connections", default=40) or 40,
                allowed_updates=(list(allowed) or None)
                if isinstance(allowed, list)
                else (previous.allowed_updates if previous else self.state.allowed_updates),
                ip_address=p.get_str("ip_address"),
            )
            if p.get_bool("drop_pending_updates"):
                self.state.pending.clear()
            self.state.notify()
        self.on_webhook_changed()
        return True

    async def m_deleteWebhook(self, p: Params) -> bool:
        with self.state.lock:
            self.state.webhook = None
            if p.get_bool("drop_pending_updates"):
                self.state.pending.clear()
            self.state.notify()
        self.on_webhook_changed()
        return True

    async def m_getWebhookInfo(self, p: Params) -> JSON:
        with self.state.lock:
            hook = self.state.webhook
            info: JSON = {
                "url": hook.url if hook else "",
                "has_custom_certificate": False,
                "pending_update_count": len(self.state.pending),
            }
            if hook:
                info["max_connections"] = hook.max_connections
                if hook.allowed_updates:
                    info["allowed_updates"] = list(hook.allowed_updates)
                if hook.ip_address:
                    info["ip_address"] = hook.ip_address
                if hook.last_error_date:
                    info["last_error_date"] = hook.last_error_date
                    info["last_error_message"] = hook.last_error_message or ""
            return info

    # ------------------------------------------------------------ messages

    async def m_sendMessage(self, p: Params) -> JSON:
        chat = self.target_for(p)
        text, entities = self.formatted(p, "text", "entities", caption=False)
        inline, keyboard = self.markup(p)
        reply = self.reply_to(chat, p)
        content: JSON = {"text": text}
        if entities:
            content["entities"] = entities
        preview = p.get_json("link_preview_options")
        if isinstance(preview, dict) and preview.get("is_disabled"):
            content["link_preview_options"] = {"is_disabled": True}
        return self.bot_send(chat, content, inline=inline, keyboard=keyboard, reply=reply, p=p)

    async def m_editMessageText(self, p: Params) -> JSON:
        msg = self.editable(p)
        if "text" not in msg.data:
            raise bad_request("there is no text in the message to edit")
        text, entities = self.formatted(p, "text", "entities", caption=False)
        inline, _ = self.markup(p, inline_only=True)
        return self.commit_edit(msg, {"text": text, "entities": entities}, inline, ("text", "entities"))

    async def m_editMessageCaption(self, p: Params) -> JSON:
        msg = self.editable(p)
        if not any(k in msg.data for k in MEDIA_KINDS if k not in ("sticker", "video_note")):
            raise bad_request("there is no caption in the message to edit")
        caption, entities = self.formatted(p, "caption", "caption_entities", caption=True)
        inline, _ = self.markup(p, inline_only=True)
        changes = {"caption": caption or None, "caption_entities": entities}
        return self.commit_edit(msg, changes, inline, ("caption", "caption_entities"))

    async def m_editMessageReplyMarkup(self, p: Params) -> JSON:
        msg = self.editable(p)
        inline, _ = self.markup(p, inline_only=True)
        return self.commit_edit(msg, {}, inline, ())

    async def m_editMessageMedia(self, p: Params) -> JSON:
        msg = self.editable(p)
        if not any(k in msg.data for k in ("photo", "video", "animation", "document", "audio")):
            raise bad_request("there is no media in the message to edit")
        spec = p.get_json("media", required=True)
        if not isinstance(spec, dict) or spec.get("type") not in ("photo", "video", "animation", "document", "audio"):
            raise bad_request("can't parse InputMedia: media type is invalid")
        kind = str(spec["type"])
        media_ref = p.resolve_attach(str(spec.get("media") or ""))
        if media_ref == "":
            raise bad_request("there is no media in the request")
        stored = await self.resolve_file(media_ref, kind, p, spec)
        sub = Params(
            {
                "caption": spec.get("caption"),
                "parse_mode": spec.get("parse_mode"),
                "caption_entities": spec.get("caption_entities"),
            }
        )
        caption, entities = self.formatted(sub, "caption", "caption_entities", caption=True)
        inline, _ = self.markup(p, inline_only=True)
        changes: JSON = {k: None for k in ("photo", "video", "animation", "document", "audio")}
        changes.update(self.media_content(kind, stored))
        changes["caption"] = caption or None
        changes["caption_entities"] = entities
        compare = tuple(changes)
        with self.state.lock:
            same_file = _file_key(msg.data) == _file_key(changes)
        if same_file:
            compare = ("caption", "caption_entities")
        return self.commit_edit(msg, changes, inline, compare)

    async def m_deleteMessage(self, p: Params) -> bool:
        chat = self.chat_for(p)
        mid = p.get_int("message_id", required=True)
        with self.state.lock:
            msg = chat.messages.get(mid or 0)
            if msg is None or msg.deleted:
                raise bad_request("message to delete not found")
            msg.deleted = True
            self.state.add_event("bot_delete", chat.id, msg.message_id, msg.data)
        return True

    async def m_deleteMessages(self, p: Params) -> bool:
        chat = self.chat_for(p)
        ids = p.get_json("message_ids", required=True)
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("message_ids must be a non-empty list of at most 100 ids")
        with self.state.lock:
            for mid in ids:
                msg = chat.messages.get(int(mid))
                if msg is not None and not msg.deleted:
                    msg.deleted = True
                    self.state.add_event("bot_delete", chat.id, msg.message_id, msg.data)
        return True

    async def m_answerCallbackQuery(self, p: Params) -> bool:
        qid = p.get_str("callback_query_id", required=True) or ""
        text = p.get_str("text")
        if text and len(text) > MAX_CALLBACK_ANSWER:
            raise bad_request("MESSAGE_TOO_LONG")
        with self.state.lock:
            record = self.state.callback_queries.get(qid)
            if record is None or record.answered:
                raise bad_request(_QUERY_INVALID)
            record.answered = True
            record.answer = {
                "callback_query_id": qid,
                "text": text,
                "show_alert": p.get_bool("show_alert"),
                "url": p.get_str("url"),
                "cache_time": p.get_int("cache_time", default=0),
                "user_id": record.user_id,
                "chat_id": record.chat_id,
                "message_id": record.message_id,
                "data": record.data,
            }
            self.state.add_event("callback_answer", record.chat_id, record.message_id, record.answer)
        return True

    async def m_sendChatAction(self, p: Params) -> bool:
        chat = self.target_for(p)
        action = p.get_str("action", required=True)
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self.state.add_event("chat_action", chat.id, None, {"action": action})
        return True

    async def m_setMessageReaction(self, p: Params) -> bool:
        chat = self.chat_for(p)
        self.state.add_event("reaction", chat.id, p.get_int("message_id"), {"reaction": p.get_json("reaction")})
        return True

    async def m_sendPhoto(self, p: Params) -> JSON:
        return await self.send_media(p, "photo")

    async def m_sendVideo(self, p: Params) -> JSON:
        return await self.send_media(p, "video")

    async def m_sendDocument(self, p: Params) -> JSON:
        return await self.send_media(p, "document")

    async def m_sendAnimation(self, p: Params) -> JSON:
        return await self.send_media(p, "animation")

    async def m_sendAudio(self, p: Params) -> JSON:
        return await self.send_media(p, "audio")

    async def m_sendVoice(self, p: Params) -> JSON:
        return await self.send_media(p, "voice")

    async def m_sendSticker(self, p: Params) -> JSON:
        return await self.send_media(p, "sticker")

    async def m_sendVideoNote(self, p: Params) -> JSON:
        return await self.send_media(p, "video_note")

    async def m_sendMediaGroup(self, p: Params) -> list[JSON]:
        chat = self.target_for(p)
        items = p.get_json("media", required=True)
        if not isinstance(items, list):
            raise bad_request("can't parse media JSON object")
        if not 2 <= len(items) <= 10:
            raise bad_request("wrong number of media in the group: must include 2-10 items")
        kinds = [str(item.get("type")) if isinstance(item, dict) else "" for item in items]
        if any(k not in ("photo", "video", "document", "audio") for k in kinds):
            raise bad_request("can't parse InputMedia: media type is invalid")
        for special in ("document", "audio"):
            if special in kinds and any(k != special for k in kinds):
                raise bad_request(f"{special.upper()}_GROUP_MIXED: {special}s can't be mixed with other media types")
        reply = self.reply_to(chat, p)
        prepared: list[JSON] = []
        for item, kind in zip(items, kinds, strict=True):
            ref = p.resolve_attach(str(item.get("media") or ""))
            if ref == "":
                raise bad_request("there is no media in the request")
            stored = await self.resolve_file(ref, kind, None, item)
            sub = Params(
                {
                    "caption": item.get("caption"),
                    "parse_mode": item.get("parse_mode"),
                    "caption_entities": item.get("caption_entities"),
                }
            )
            caption, entities = self.formatted(sub, "caption", "caption_entities", caption=True)
            content = self.media_content(kind, stored)
            if caption:
                content["caption"] = caption
                if entities:
                    content["caption_entities"] = entities
            if item.get("has_spoiler"):
                content["has_media_spoiler"] = True
            prepared.append(content)
        group_id = str(secrets.randbits(63))
        sent: list[JSON] = []
        for index, content in enumerate(prepared):
            content["media_group_id"] = group_id
            sent.append(self.bot_send(chat, content, reply=reply if index == 0 else None, p=p))
        return sent

    def _source_content(self, p: Params, verb: str, *, drop: tuple[str, ...]) -> tuple[JSON, JSON]:
        """A deep copy of the message named by from_chat_id/message_id, and its content without the
        fields a copied or forwarded message gets anew (plus `drop`)."""
        source_chat = self.chat_for(p, "from_chat_id")
        mid = p.get_int("message_id", required=True)
        with self.state.lock:
            source = source_chat.messages.get(mid or 0)
            if source is None or source.deleted:
                raise bad_request(f"message to {verb} not found")
            data = copy.deepcopy(source.data)
        renewed = ("message_id", "from", "chat", "date", "edit_date", "reply_markup", "reply_to_message", *drop)
        return data, {k: v for k, v in data.items() if k not in renewed}

    async def m_copyMessage(self, p: Params) -> JSON:
        chat = self.target_for(p)
        _, content = self._source_content(p, "copy", drop=("media_group_id",))
        if p.has("caption"):
            caption, entities = self.formatted(p, "caption", "caption_entities", caption=True)
            content["caption"] = caption
            content.pop("caption_entities", None)
            if entities:
                content["caption_entities"] = entities
        inline, keyboard = self.markup(p)
        sent = self.bot_send(chat, content, inline=inline, keyboard=keyboard, reply=self.reply_to(chat, p), p=p)
        return {"message_id": sent["message_id"]}

    async def m_forwardMessage(self, p: Params) -> JSON:
        chat = self.target_for(p)
        source, content = self._source_content(p, "forward", drop=("forward_origin",))
        content["forward_origin"] = {"type": "user", "sender_user": source["from"], "date": source["date"]}
        return self.bot_send(chat, content, p=p)

    async def m_getFile(self, p: Params) -> JSON:
        file_id = p.get_str("file_id", required=True) or ""
        with self.state.lock:
            stored = self.state.files.get(file_id)
        if stored is None:
            raise bad_request("invalid file_id")
        data = stored.content()
        if len(data) > MAX_DOWNLOAD_BYTES:
            raise bad_request("file is too big")
        return stored.as_file()

    # ------------------------------------------------------------ commands, descriptions, menu, chat

    async def m_setMyCommands(self, p: Params) -> bool:
        commands = p.get_json("commands", required=True)
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        cleaned: list[JSON] = []
        for item in commands:
            if not isinstance(item, dict):
                raise bad_request("can't parse BotCommand")
            command = str(item.get("command", "")).lstrip("/")
            description = str(item.get("description", ""))
            if not _COMMAND_RE.match(command):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": command, "description": description})
        key = self.state.scope_key(p.get_json("scope"), p.get_str("language_code"))
        with self.state.lock:
            if cleaned:
                self.state.commands[key] = cleaned
            else:
                self.state.commands.pop(key, None)
        return True

    async def m_getMyCommands(self, p: Params) -> list[JSON]:
        key = self.state.scope_key(p.get_json("scope"), p.get_str("language_code"))
        with self.state.lock:
            return copy.deepcopy(self.state.commands.get(key, []))

    async def m_deleteMyCommands(self, p: Params) -> bool:
        key = self.state.scope_key(p.get_json("scope"), p.get_str("language_code"))
        with self.state.lock:
            self.state.commands.pop(key, None)
        return True

    def _set_text(self, kind: str, field: str, limit: int, p: Params) -> bool:
        value = p.get_str(field) or ""
        if len(value) > limit:
            raise bad_request(f"{field.upper()}_INVALID")
        key = kind + "|" + (p.get_str("language_code") or "")
        with self.state.lock:
            if value:
                self.state.bot_texts[key] = value
            else:
                self.state.bot_texts.pop(key, None)
        return True

    def _get_text(self, kind: str, p: Params) -> str:
        with self.state.lock:
            return self.state.bot_texts.get(kind + "|" + (p.get_str("language_code") or ""), "")

    async def m_setMyDescription(self, p: Params) -> bool:
        return self._set_text("description", "description", 512, p)

    async def m_getMyDescription(self, p: Params) -> JSON:
        return {"description": self._get_text("description", p)}

    async def m_setMyShortDescription(self, p: Params) -> bool:
        return self._set_text("short_description", "short_description", 120, p)

    async def m_getMyShortDescription(self, p: Params) -> JSON:
        return {"short_description": self._get_text("short_description", p)}

    async def m_setMyName(self, p: Params) -> bool:
        return self._set_text("name", "name", 64, p)

    async def m_getMyName(self, p: Params) -> JSON:
        return {"name": self._get_text("name", p) or self.state.bot_user["first_name"]}

    async def m_setChatMenuButton(self, p: Params) -> bool:
        button = p.get_json("menu_button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in ("default", "commands", "web_app"):
            raise bad_request("can't parse menu button")
        with self.state.lock:
            if p.has("chat_id"):
                self.chat_for(p).menu_button = button
            else:
                self.state.default_menu_button = button
        return True

    async def m_getChatMenuButton(self, p: Params) -> JSON:
        with self.state.lock:
            if p.has("chat_id"):
                return copy.deepcopy(self.chat_for(p).menu_button or self.state.default_menu_button)
            return copy.deepcopy(self.state.default_menu_button)

    async def m_getChat(self, p: Params) -> JSON:
        chat = self.chat_for(p)
        with self.state.lock:
            info = chat.to_dict()
        info.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": True,
                    "limited_gifts": True,
                    "unique_gifts": True,
                    "premium_subscription": True,
                    "gifts_from_channels": True,
                },
            }
        )
        return info

    # ------------------------------------------------------------ payments

    def build_invoice(self, p: Params) -> Invoice:
        """Validate invoice parameters (Telegram Stars rules for XTR)."""
        title = p.get_str("title", required=True) or ""
        description = p.get_str("description", required=True) or ""
        payload = p.get_str("payload", required=True) or ""
        currency = (p.get_str("currency", required=True) or "").upper()
        provider_token = p.get_str("provider_token") or ""
        prices = p.get_json("prices", required=True)
        if not 1 <= len(title) <= 32:
            raise bad_request("INVOICE_TITLE_INVALID")
        if not 1 <= len(description) <= 255:
            raise bad_request("INVOICE_DESCRIPTION_INVALID")
        if not 1 <= len(payload.encode("utf-8")) <= 128:
            raise bad_request("INVOICE_PAYLOAD_INVALID")
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise bad_request("CURRENCY_INVALID")
        if not isinstance(prices, list) or not prices:
            raise bad_request("CURRENCY_TOTAL_AMOUNT_INVALID")
        cleaned: list[JSON] = []
        for price in prices:
            if not isinstance(price, dict) or not price.get("label"):
                raise bad_request("can't parse LabeledPrice")
            amount = price.get("amount")
            try:
                amount_int = int(amount)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise bad_request('field "amount" must be of type Integer') from None
            if isinstance(amount, float) and amount != amount_int:
                raise bad_request('field "amount" must be of type Integer')
            cleaned.append({"label": str(price["label"]), "amount": amount_int})
        if currency == "XTR":
            if provider_token:
                raise bad_request(
                    "PAYMENT_PROVIDER_INVALID: provider_token must be empty for payments in Telegram Stars"
                )
            if len(cleaned) != 1:
                raise bad_request("STARS_INVOICE_INVALID: exactly one price must be specified for Telegram Stars")
        elif not provider_token:
            raise bad_request("PAYMENT_PROVIDER_INVALID")
        if sum(c["amount"] for c in cleaned) <= 0:
            raise bad_request("CURRENCY_TOTAL_AMOUNT_INVALID")
        extra = {k: p.raw(k) for k in ("photo_url", "max_tip_amount", "need_name", "need_email") if p.has(k)}
        return Invoice(
            id=secrets.token_hex(8),
            title=title,
            description=description,
            payload=payload,
            currency=currency,
            prices=cleaned,
            provider_token=provider_token,
            start_parameter=p.get_str("start_parameter") or "",
            extra=extra,
        )

    async def m_sendInvoice(self, p: Params) -> JSON:
        chat = self.target_for(p)
        invoice = self.build_invoice(p)
        inline, _ = self.markup(p, inline_only=True)
        if inline and not inline["inline_keyboard"][0][0].get("pay"):
            raise bad_request("REPLY_MARKUP_BUY_EMPTY")
        content: JSON = {
            "invoice": {
                "title": invoice.title,
                "description": invoice.description,
                "start_parameter": invoice.start_parameter,
                "currency": invoice.currency,
                "total_amount": invoice.total_amount,
            }
        }
        with self.state.lock:
            sent = self.bot_send(chat, content, inline=inline, reply=self.reply_to(chat, p), p=p)
            invoice.chat_id, invoice.message_id = chat.id, sent["message_id"]
            self.state.invoices[invoice.id] = invoice
            self.state.invoice_by_message[(chat.id, sent["message_id"])] = invoice.id
        return sent

    async def m_createInvoiceLink(self, p: Params) -> str:
        invoice = self.build_invoice(p)
        invoice.link = "https://t.me/$" + secrets.token_urlsafe(18)
        with self.state.lock:
            self.state.invoices[invoice.id] = invoice
            self.state.invoice_by_link[invoice.link] = invoice.id
        return invoice.link

    async def m_answerPreCheckoutQuery(self, p: Params) -> bool:
        qid = p.get_str("pre_checkout_query_id", required=True) or ""
        ok = p.get_bool("ok")
        error_message = p.get_str("error_message")
        if not ok and not error_message:
            raise bad_request("ERROR_MESSAGE_EMPTY")
        with self.state.lock:
            record = self.state.pre_checkouts.get(qid)
            if record is None or record.answered or record.expired or time.time() > record.deadline:
                raise bad_request(_QUERY_INVALID)
            record.answered, record.ok, record.error_message = True, ok, None if ok else error_message
            self.state.add_event(
                "pre_checkout_answer", record.chat_id, None, {"id": qid, "ok": ok, "error_message": error_message}
            )
        return True

    async def m_refundStarPayment(self, p: Params) -> bool:
        user_id = p.get_int("user_id", required=True)
        charge_id = p.get_str("telegram_payment_charge_id", required=True) or ""
        with self.state.lock:
            payment = self.state.payments.get(charge_id)
            if payment is None or payment.user_id != user_id or payment.currency != "XTR":
                raise bad_request("CHARGE_NOT_FOUND")
            if payment.refunded:
                raise bad_request("CHARGE_ALREADY_REFUNDED")
            payment.refunded = True
            self.state.add_event(
                "refund", payment.chat_id, None, {"telegram_payment_charge_id": charge_id, "user_id": user_id}
            )
        return True


def _normalized(values: JSON) -> JSON:
    return {k: v for k, v in values.items() if v not in (None, [], "")}


def _file_key(data: JSON) -> str | None:
    for kind in ("photo", "video", "animation", "document", "audio"):
        value = data.get(kind)
        if value:
            item = value[-1] if isinstance(value, list) else value
            return f"{kind}:{item.get('file_unique_id')}"
    return None
