"""The web chat's HTTP side: the page, its JSON API under ``/chat/api/`` and the live event stream.

Every input is checked (known user, a message of that user's chat, sizes within the emulator's limits);
a bad request gets a 4xx with ``{"ok": false, "error": ...}``, never a 500. No authentication: it is a
local sandbox and the emulator listens on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import zlib
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from ..api import EmulatorAPI
from ..client import EmulatedUser
from ..media import MAX_PHOTO_SIDE, probe_image, resize_image, scaled
from ..methods import MAX_CAPTION, MAX_PHOTO_BYTES, MAX_TEXT
from ..state import JSON, Invoice
from .views import (
    LANGUAGE_RE,
    PAGE_EVENTS,
    USERNAME_RE,
    bot_texts_for,
    commands_for,
    event_view,
    message_view,
    sse_frame,
    user_view,
)

log = logging.getLogger("sandbox.telegram.webchat")
STATIC = Path(__file__).parent / "static"
#: Sandbox users the page offers; fixed ids, so the bot's database knows them across restarts.
PRESET_USERS: tuple[JSON, ...] = (
    {"id": 100001, "first_name": "Anna", "language_code": "ru"},
    {"id": 100002, "first_name": "Ben", "language_code": "en"},
    {"id": 100003, "first_name": "Chloe", "language_code": "en"},
)
MAX_JSON_BODY = 64 * 1024
MAX_ALBUM = 10
MAX_NAME = 64
HISTORY_LIMIT = 1000
KEEPALIVE_SECONDS = 15.0
INLINE_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/webp", "video/mp4", "video/webm", "video/quicktime"}
)
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class WebChatHost(EmulatorAPI, Protocol):
    """The emulator, as the web chat uses it."""

    def user(
        self,
        user_id: int | None = None,
        first_name: str = "Test",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "ru",
        is_premium: bool | None = None,
    ) -> EmulatedUser: ...


class BadInput(Exception):
    """A request the API refuses (status + reason, answered as JSON)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def _host_name(host: str) -> str:
    """The name of a Host header, without its port (`[::1]:8081` -> `[::1]`, `a.b:80` -> `a.b`)."""
    host = (host or "").strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def guard(allowed_hosts: frozenset[str]) -> Any:
    """The web chat only for this machine: a Host header not on loopback (or the configured host) is
    refused, which defeats DNS rebinding (a page of another site whose name was pointed at 127.0.0.1
    reading every chat); a POST whose Origin is another site's is refused (a page posting messages,
    uploads or "Pay" as a sandbox user). A request without Origin is not a browser's cross-site one."""
    hosts = LOOPBACK_HOSTS | {_host_name(h) for h in allowed_hosts}

    @web.middleware
    async def check(request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/chat"):
            return await handler(request)
        if _host_name(request.host) not in hosts:
            return web.json_response({"ok": False, "error": "this host is not allowed"}, status=403)
        origin = request.headers.get("Origin")
        own = f"{request.scheme}://{request.host}".lower()
        if (
            request.method not in ("GET", "HEAD", "OPTIONS")
            and origin is not None
            and origin.rstrip("/").lower() != own
        ):
            return web.json_response({"ok": False, "error": "cross-site request refused"}, status=403)
        return await handler(request)

    return check


@web.middleware
async def _json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    if not request.path.startswith("/chat/"):
        return await handler(request)
    try:
        return await handler(request)
    except BadInput as exc:
        return web.json_response({"ok": False, "error": exc.reason}, status=exc.status)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("web chat failed on %s %s", request.method, request.path)
        return web.json_response({"ok": False, "error": "internal error (see the emulator's log)"}, status=500)


class WebChat:
    """Routes of the web chat on the emulator's aiohttp application."""

    def __init__(
        self, emu: WebChatHost, presets: tuple[JSON, ...] = PRESET_USERS, allowed_hosts: tuple[str, ...] = ()
    ) -> None:
        self.emu = emu
        self.allowed_hosts = frozenset(allowed_hosts)
        self.state = emu.state
        self.presets = presets
        self.preset_ids = {int(p["id"]) for p in presets}
        #: Changes on every start of the emulator process: the page re-reads everything after a restart.
        self.instance = secrets.token_hex(8)
        self._paid: set[tuple[int, int]] = set()
        self._paying: set[tuple[int, str]] = set()
        self._presets_made = False

    def install(self, app: web.Application) -> None:
        """Add the page, the static files and the API to ``app``."""
        app.middlewares.append(guard(self.allowed_hosts))
        app.middlewares.append(_json_errors)
        r = app.router
        r.add_get("/chat", self._redirect)
        r.add_get("/chat/", self._index)
        r.add_static("/chat/static/", STATIC, show_index=False, follow_symlinks=False)
        r.add_get("/chat/api/users", self._users)
        r.add_post("/chat/api/users", self._create_user)
        r.add_get("/chat/api/history", self._history)
        r.add_get("/chat/api/commands", self._commands)
        r.add_post("/chat/api/send", self._send)
        r.add_post("/chat/api/press", self._press)
        r.add_post("/chat/api/upload", self._upload)
        r.add_get("/chat/api/invoice", self._invoice)
        r.add_post("/chat/api/pay", self._pay)
        r.add_post("/chat/api/block", self._block)
        r.add_get("/chat/api/files/{file_id}", self._file)
        r.add_get("/chat/api/events", self._events)
        r.add_route("*", "/chat/api/{tail:.*}", self._unknown)

    # ------------------------------------------------------------ page

    async def _redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/chat/")

    async def _index(self, request: web.Request) -> web.StreamResponse:
        response = web.FileResponse(STATIC / "index.html")
        response.headers["Content-Security-Policy"] = PAGE_CSP
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    async def _unknown(self, request: web.Request) -> web.Response:
        raise BadInput(404, f"no such endpoint: {request.method} {request.path}")

    # ------------------------------------------------------------ input checks

    async def _body(self, request: web.Request) -> JSON:
        if request.content_type != "application/json":
            raise BadInput(415, "send JSON (Content-Type: application/json)")
        if request.content_length is not None and request.content_length > MAX_JSON_BODY:
            raise BadInput(413, "request body too large")
        raw = bytearray()
        while chunk := await request.content.read(MAX_JSON_BODY):
            raw.extend(chunk)
            if len(raw) > MAX_JSON_BODY:
                raise BadInput(413, "request body too large")
        try:
            body = json.loads(bytes(raw) or b"null")
        except (ValueError, RecursionError):
            raise BadInput(400, "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise BadInput(400, "the body must be a JSON object")
        return body

    @staticmethod
    def _int(value: Any, name: str) -> int:
        if isinstance(value, bool):
            raise BadInput(400, f"{name} must be an integer")
        if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) <= 20:
            value = int(value)
        if not isinstance(value, int) or abs(value) >= 2**63:
            raise BadInput(400, f"{name} must be an integer")
        return value

    def _user(self, value: Any) -> EmulatedUser:
        self.ensure_presets()
        user_id = self._int(value, "user_id")
        with self.state.lock:
            known = user_id in self.state.users
        if not known:
            raise BadInput(404, f"unknown user {user_id}")
        return self.emu.user(user_id)

    def _bot_message(self, user: EmulatedUser, value: Any) -> JSON:
        message_id = self._int(value, "message_id")
        with self.state.lock:
            chat = self.state.chats.get(user.id)
            stored = chat.messages.get(message_id) if chat else None
            if stored is None or stored.deleted or not stored.from_bot:
                raise BadInput(404, f"no message {message_id} from the bot in this chat")
            return json.loads(json.dumps(stored.data))

    def ensure_presets(self) -> None:
        """Create the preset users and their chats (once; the page's first request does it, the CLI at start)."""
        if self._presets_made:
            return
        for preset in self.presets:
            self.emu.user(int(preset["id"]), str(preset["first_name"]), language_code=preset.get("language_code"))
        self._presets_made = True

    # ------------------------------------------------------------ users

    async def _users(self, request: web.Request) -> web.Response:
        self.ensure_presets()
        with self.state.lock:
            users = [user_view(info, preset=uid in self.preset_ids) for uid, info in self.state.users.items()]
        users.sort(key=lambda u: not u["preset"])
        return web.json_response({"ok": True, "users": users})

    async def _create_user(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        name = body.get("first_name")
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
            raise BadInput(400, f"first_name must be 1-{MAX_NAME} characters")
        name = name.strip()
        language = body.get("language_code", "en")
        if not isinstance(language, str) or not LANGUAGE_RE.match(language.lower()):
            raise BadInput(400, "language_code must look like 'en', 'ru' or 'pt-br'")
        language = language.lower()
        last_name = body.get("last_name")
        if last_name is not None and (not isinstance(last_name, str) or len(last_name) > MAX_NAME):
            raise BadInput(400, f"last_name must be at most {MAX_NAME} characters")
        username = body.get("username")
        if username not in (None, "") and (not isinstance(username, str) or not USERNAME_RE.match(username)):
            raise BadInput(400, "username must be 5-32 letters, digits or underscores, starting with a letter")
        self.ensure_presets()
        # The same name and language get the same id after a restart of the sandbox (its state is in memory,
        # the bot's database is not), so the bot keeps knowing the user.
        user_id = 2_000_000_000 + zlib.crc32(f"{name}|{language}".encode()) % 1_000_000_000
        with self.state.lock:
            while user_id in self.state.users:
                info = self.state.users[user_id]
                if info.get("first_name") == name and info.get("language_code") == language:
                    return web.json_response({"ok": True, "created": False, "user": user_view(info, preset=False)})
                user_id += 1
            user = self.emu.user(
                user_id, name, last_name=last_name or None, username=username or None, language_code=language
            )
            view = user_view(user.info, preset=False)
        return web.json_response({"ok": True, "created": True, "user": view}, status=201)

    async def _block(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        user = self._user(body.get("user_id"))
        blocked = body.get("blocked")
        if not isinstance(blocked, bool):
            raise BadInput(400, "blocked must be true or false")
        if blocked:
            self.emu.block_bot(user.id)
        else:
            self.emu.unblock_bot(user.id)
        return web.json_response({"ok": True, "blocked": blocked})

    # ------------------------------------------------------------ reading

    def _limit(self, request: web.Request) -> int:
        raw = request.query.get("limit", str(HISTORY_LIMIT))
        limit = self._int(raw, "limit")
        if not 1 <= limit <= HISTORY_LIMIT:
            raise BadInput(400, f"limit must be 1-{HISTORY_LIMIT}")
        return limit

    async def _history(self, request: web.Request) -> web.Response:
        user = self._user(request.query.get("user_id"))
        limit = self._limit(request)
        with self.state.lock:
            chat = self.state.chats[user.id]
            stored = [m for _, m in sorted(chat.messages.items()) if not m.deleted][-limit:]
            body = {
                "ok": True,
                "instance": self.instance,
                "seq": self.state.last_event_seq,
                "user": user_view(user.info, preset=user.id in self.preset_ids),
                "bot": bot_texts_for(self.state, user.info),
                "commands": commands_for(self.state, user.info),
                "blocked": chat.blocked,
                "reply_keyboard": chat.reply_keyboard,
                "messages": [message_view(m, (user.id, m.message_id) in self._paid) for m in stored],
                "limits": {
                    "text": MAX_TEXT,
                    "caption": MAX_CAPTION,
                    "photo_bytes": MAX_PHOTO_BYTES,
                    "file_bytes": self.emu.max_upload_bytes,
                    "album": MAX_ALBUM,
                },
            }
            payload = json.dumps(body, ensure_ascii=False)
        return web.Response(text=payload, content_type="application/json")

    async def _commands(self, request: web.Request) -> web.Response:
        user = self._user(request.query.get("user_id"))
        with self.state.lock:
            commands = commands_for(self.state, user.info)
            bot = bot_texts_for(self.state, user.info)
        return web.json_response({"ok": True, "commands": commands, "bot": bot})

    async def _file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        with self.state.lock:
            stored = self.state.files.get(file_id)
        if stored is None:
            raise BadInput(404, "unknown file")
        data = await asyncio.get_running_loop().run_in_executor(None, stored.content)
        mime = (stored.mime_type or "application/octet-stream").split(";")[0].strip().lower()
        inline = (mime in INLINE_TYPES or mime.startswith("audio/")) and request.query.get("download") is None
        headers = {
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=86400, immutable",
        }
        if not inline:
            name = stored.file_name or stored.file_path.rsplit("/", 1)[-1]
            ascii_name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:100] or "file"
            headers["Content-Disposition"] = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
        content_type = mime if inline else "application/octet-stream"
        return web.Response(body=data, content_type=content_type, headers=headers)

    async def _invoice(self, request: web.Request) -> web.Response:
        user = self._user(request.query.get("user_id"))
        invoice, _ = self._find_invoice(user, request.query.get("message_id"), request.query.get("link"))
        return web.json_response({"ok": True, "invoice": self._invoice_view(invoice, user)})

    # ------------------------------------------------------------ acting

    async def _send(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        user = self._user(body.get("user_id"))
        if body.get("contact") is True:
            phone = f"+999{user.id % 10**9:09d}"
            return web.json_response({"ok": True, "message": user.send_contact(phone)})
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise BadInput(400, "text must be a non-empty string")
        if len(text.encode("utf-16-le")) // 2 > MAX_TEXT:
            raise BadInput(400, f"text is longer than {MAX_TEXT} characters")
        with self.state.lock:
            blocked = self.state.chats[user.id].blocked
        if blocked:
            raise BadInput(409, "this user has blocked the bot: restart it first")
        return web.json_response({"ok": True, "message": user.send_text(text)})

    async def _press(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        user = self._user(body.get("user_id"))
        row, column = self._int(body.get("row"), "row"), self._int(body.get("column"), "column")
        message = self._bot_message(user, body.get("message_id"))
        rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
        if not (0 <= row < len(rows) and 0 <= column < len(rows[row])):
            raise BadInput(404, "no such button on this message")
        button = rows[row][column]
        data = button.get("callback_data")
        if not isinstance(data, str):
            raise BadInput(400, "this button sends nothing to the bot (not a callback button)")
        query, _ = self.emu.post_callback_query(user.id, message["message_id"], data)
        return web.json_response({"ok": True, "callback_query_id": query["id"]})

    async def _upload(self, request: web.Request) -> web.Response:
        if not request.content_type.startswith("multipart/"):
            raise BadInput(415, "send multipart/form-data with user_id, files and an optional caption")
        try:
            reader = await request.multipart()
        except Exception:
            raise BadInput(400, "malformed multipart body") from None
        fields: dict[str, str] = {}
        files: list[tuple[str, str | None, bytes]] = []
        total_cap = self.emu.max_upload_bytes * 2
        total = 0
        try:
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader):
                    raise BadInput(400, "nested multipart is not supported")
                if part.filename is None:
                    raw = bytearray()
                    while chunk := await part.read_chunk(16 * 1024):
                        raw.extend(chunk)
                        if len(raw) > MAX_JSON_BODY:
                            raise BadInput(413, f"field {part.name} too large")
                    fields[part.name or ""] = raw.decode("utf-8", "replace")
                    continue
                if len(files) >= MAX_ALBUM:
                    raise BadInput(400, f"at most {MAX_ALBUM} files at once")
                data = bytearray()
                while chunk := await part.read_chunk(256 * 1024):
                    data.extend(chunk)
                    total += len(chunk)
                    if len(data) > self.emu.max_upload_bytes or total > total_cap:
                        raise BadInput(413, f"a file is larger than {self.emu.max_upload_bytes} bytes")
                files.append((part.filename, part.headers.get("Content-Type"), bytes(data)))
        except BadInput:
            raise
        except Exception:
            raise BadInput(400, "malformed multipart body") from None
        user = self._user(fields.get("user_id"))
        caption = fields.get("caption", "").strip()
        if len(caption) > MAX_CAPTION:
            raise BadInput(400, f"caption is longer than {MAX_CAPTION} characters")
        if not files:
            raise BadInput(400, "no files in the request")
        if any(not data for _, _, data in files):
            raise BadInput(400, "a file is empty")
        images = [probe_image(data) for _, _, data in files]
        as_photos = all(info is not None for info in images) and all(len(d) <= MAX_PHOTO_BYTES for _, _, d in files)
        loop = asyncio.get_running_loop()
        contents: list[JSON] = []
        for (name, mime, data), info in zip(files, images, strict=True):
            if as_photos and info is not None:
                if max(info.width, info.height) > MAX_PHOTO_SIDE:  # clients send photos at most 2560 px
                    w, h = scaled(info.width, info.height, MAX_PHOTO_SIDE)
                    data = await loop.run_in_executor(None, resize_image, data, w, h)
                contents.append({"photo": self.emu.store_user_photo(data)})
            else:
                safe_name = (name or "file").replace("/", "_").replace("\\", "_")[-128:] or "file"
                contents.append({"document": self.emu.store_user_file("document", data, safe_name, mime)})
        group = str(secrets.randbits(63)) if len(contents) > 1 else None
        sent = []
        for index, content in enumerate(contents):
            if group:
                content["media_group_id"] = group
            if caption and index == 0:
                content["caption"] = caption
            sent.append(user.send_message(content))
        return web.json_response({"ok": True, "messages": sent})

    def _find_invoice(self, user: EmulatedUser, message_id: Any, link: Any) -> tuple[Invoice, str]:
        if link is not None:
            if not isinstance(link, str) or len(link) > 256:
                raise BadInput(400, "link must be an invoice link")
            try:
                return self.emu.resolve_invoice(link, user.id), f"link:{link}"
            except LookupError:
                raise BadInput(404, "no such invoice link") from None
        message = self._bot_message(user, message_id)
        try:
            return self.emu.resolve_invoice(message, user.id), f"message:{message['message_id']}"
        except LookupError:
            raise BadInput(404, "this message is not an invoice") from None

    def _invoice_view(self, invoice: Invoice, user: EmulatedUser) -> JSON:
        paid = invoice.message_id is not None and (user.id, invoice.message_id) in self._paid
        return {
            "title": invoice.title,
            "description": invoice.description,
            "currency": invoice.currency,
            "total_amount": invoice.total_amount,
            "prices": invoice.prices,
            "message_id": invoice.message_id,
            "paid": paid,
        }

    async def _pay(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        user = self._user(body.get("user_id"))
        invoice, key = self._find_invoice(user, body.get("message_id"), body.get("invoice_link"))
        if (
            invoice.message_id is not None
            and invoice.chat_id == user.id
            and (user.id, invoice.message_id) in self._paid
        ):
            raise BadInput(409, "this invoice is already paid")
        if (user.id, key) in self._paying:
            raise BadInput(409, "a payment of this invoice is in progress")
        self._paying.add((user.id, key))
        try:
            result = await user.apay(invoice.link if key.startswith("link:") else invoice.message_id)
        finally:
            self._paying.discard((user.id, key))
        if result.ok and invoice.message_id is not None and invoice.chat_id == user.id:
            self._paid.add((user.id, invoice.message_id))
        return web.json_response(
            {
                "ok": True,
                "paid": result.ok,
                "error_message": result.error_message,
                "charge_id": result.charge_id,
                "message": result.message,
                "invoice": self._invoice_view(invoice, user),
            }
        )

    # ------------------------------------------------------------ live events

    async def _events(self, request: web.Request) -> web.StreamResponse:
        raw = request.headers.get("Last-Event-ID") or request.query.get("since") or "0"
        since = self._int(raw, "since")
        state = self.state
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        with state.lock:
            last = state.last_event_seq
        resync = not 0 <= since <= last
        since = last if resync else since
        with contextlib.suppress(ConnectionError, RuntimeError):  # the page went away
            await response.write(b"retry: 1000\n\n")
            await response.write(sse_frame("hello", {"instance": self.instance, "seq": last, "resync": resync}))

            def fresh() -> list[Any] | bool | None:
                if state.closing:
                    return True
                return state.events[since:] or None

            while True:
                got = await state.wait_async(fresh, KEEPALIVE_SECONDS)
                if got is True or state.closing:
                    break
                if not got:
                    await response.write(b": keepalive\n\n")
                    continue
                with state.lock:
                    frames = [
                        sse_frame(None, event_view(state, e, self._paid), e.seq) for e in got if e.kind in PAGE_EVENTS
                    ]
                    since = got[-1].seq
                if frames:
                    await response.write(b"".join(frames))
        return response
