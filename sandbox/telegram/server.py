"""An in-process Telegram Bot API emulator for tests (aiohttp server, real aiogram clients work unchanged).

Typical use::

    async with BotAPIEmulator() as emu:                       # in the test's event loop
        bot = Bot(emu.token, session=AiohttpSession(api=TelegramAPIServer.from_base(emu.base_url)))
        user = emu.user(first_name="Ann")
        user.send_command("/start")
        reply = await emu.await_message(user.id)

    with BotAPIEmulator.run_in_thread() as emu:                # own loop in a background thread
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import ClientSession, ClientTimeout, MultipartReader, web

from .client import EmulatedUser, Expectation, MessageCursor, PaymentResult
from .errors import ApiError, error_for_code, not_found, unauthorized
from .media import probe_image
from .methods import BotMethods
from .params import MAX_UPLOAD_BYTES, Params, parse_request, read_multipart
from .state import (
    JSON,
    ApiCall,
    CallbackQueryRecord,
    EmulatorState,
    Event,
    FaultRule,
    Invoice,
    Payment,
    PreCheckoutRecord,
    StoredFile,
    Update,
    WebhookConfig,
    WebhookDelivery,
    now,
)

log = logging.getLogger("sandbox.telegram")

SEND_METHODS = frozenset(
    {
        "sendMessage",
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
        "sendInvoice",
    }
)
MESSAGE_EVENTS = ("bot_message", "bot_edit")
Predicate = Callable[[JSON], bool]


class WaitTimeout(AssertionError):
    """A wait helper timed out (an AssertionError so pytest reports it as a failed expectation)."""


class ConnectionDropped(Exception):
    """A scripted fault: the method ran, and the connection is dropped instead of answering."""


class BotAPIEmulator:
    """A Telegram Bot API emulator: HTTP server + state + fault injection + test inspection helpers."""

    def __init__(
        self,
        token: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_username: str = "emulator_bot",
        bot_first_name: str = "Emulator Bot",
        webhook_retry_delays: tuple[float, ...] = (0.05, 0.2, 0.5),
        webhook_timeout: float = 10.0,
        pre_checkout_timeout: float = 10.0,
        allow_http_webhook: bool = True,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
    ) -> None:
        if token is None:
            token = f"{7_000_000_000 + secrets.randbelow(10**8)}:AA{secrets.token_urlsafe(24)}"
        left, sep, _ = token.partition(":")
        if not sep or not left.isdigit():
            raise ValueError("token must look like '<bot id>:<secret>'")
        self.token = token
        self.bot_id = int(left)
        self.host = host
        self.port = port
        self.webhook_retry_delays = tuple(webhook_retry_delays)
        self.webhook_timeout = webhook_timeout
        self.pre_checkout_timeout = pre_checkout_timeout
        self.max_upload_bytes = max_upload_bytes
        self.state = EmulatorState(self.bot_id, bot_username, bot_first_name)
        self.methods = BotMethods(
            self.state,
            fetch_url=self._fetch_url,
            on_webhook_changed=self._on_webhook_changed,
            allow_http_webhook=allow_http_webhook,
        )
        self.app = web.Application(client_max_size=max_upload_bytes + 1024 * 1024)
        self.app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        self.app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self.app.router.add_get("/", self._handle_index)
        self._users: dict[int, EmulatedUser] = {}
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._http: ClientSession | None = None
        self._webhook_task: asyncio.Task[None] | None = None

    # ================================================================== lifecycle

    @property
    def base_url(self) -> str:
        """``http://host:port`` to pass to ``TelegramAPIServer.from_base``."""
        if self._runner is None:
            raise RuntimeError("the emulator is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def bot_user(self) -> JSON:
        """The bot's User object (what getMe returns)."""
        return dict(self.state.bot_user)

    @property
    def running(self) -> bool:
        """Whether the HTTP server is up."""
        return self._runner is not None

    async def start(self) -> BotAPIEmulator:
        """Start serving in the current event loop."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        self._loop = asyncio.get_running_loop()
        with self.state.lock:
            self.state.closing = False
        runner = web.AppRunner(
            self.app, handle_signals=False, access_log=None, shutdown_timeout=0.5, handler_cancellation=True
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("Bot API emulator listening on %s", self.base_url)
        return self

    async def stop(self) -> None:
        """Stop serving (wakes long polls and waiters, stops webhook delivery)."""
        with self.state.lock:
            self.state.closing = True
            self.state.notify()
        task, self._webhook_task = self._webhook_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._http is not None:
            await self._http.close()
            self._http = None
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> BotAPIEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start_in_thread(self, timeout: float = 10.0) -> BotAPIEmulator:
        """Start serving from a background thread with its own event loop."""
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._thread_loop = loop
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="bot-api-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("the emulator thread did not start in time")
        if errors:
            raise errors[0]
        return self

    def stop_in_thread(self, timeout: float = 10.0) -> None:
        """Stop a server started with :meth:`start_in_thread`."""
        loop, thread = self._thread_loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread, self._thread_loop = None, None

    @classmethod
    @contextlib.contextmanager
    def run_in_thread(cls, **kwargs: Any) -> Iterator[BotAPIEmulator]:
        """``with BotAPIEmulator.run_in_thread() as emu:`` — a started emulator in its own thread."""
        emu = cls(**kwargs)
        emu.start_in_thread()
        try:
            yield emu
        finally:
            emu.stop_in_thread()

    def __enter__(self) -> BotAPIEmulator:
        return self.start_in_thread()

    def __exit__(self, *exc: object) -> None:
        self.stop_in_thread()

    # ================================================================== HTTP layer

    async def _handle_index(self, request: web.Request) -> web.Response:
        return web.json_response({"emulator": "telegram-bot-api", "bot": self.state.bot_user.get("username")})

    async def _handle_api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(unauthorized().to_json(), status=401)
        try:
            params = await parse_request(request, self.max_upload_bytes)
            result = await self.execute(request.match_info["method"], params)
        except ConnectionDropped:
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError from None
        except ApiError as exc:
            return web.json_response(exc.to_json(), status=exc.error_code)
        except Exception:
            log.exception("emulator failed handling %s", request.match_info["method"])
            return web.json_response(
                {"ok": False, "error_code": 500, "description": "Internal Server Error"}, status=500
            )
        return web.json_response({"ok": True, "result": result})

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(unauthorized().to_json(), status=401)
        fault = self._take_fault("file", None)
        if fault is not None and fault.error_code is not None:  # e.g. 404 or 502 from the file server
            return web.json_response({"ok": False, "error_code": fault.error_code}, status=fault.error_code)
        with self.state.lock:
            stored = self.state.files_by_path.get(request.match_info["path"])
        if stored is None:
            return web.json_response(not_found().to_json(), status=404)
        return web.Response(body=stored.content(), content_type=stored.mime_type or "application/octet-stream")

    async def execute(self, method: str, params: Params | JSON, *, via: str = "http") -> Any:
        """Run a Bot API method with faults, flood control and call recording (used by the HTTP layer)."""
        if not isinstance(params, Params):
            params = Params(params)
        canonical = self.methods.canonical(method) or method
        chat_id = _loose_chat_id(params.raw("chat_id"))
        with self.state.lock:
            call = ApiCall(self.state.next_call_seq(), canonical, params.describe(), time.time(), chat_id, via=via)
            self.state.calls.append(call)
        try:
            if self.methods.canonical(method) is None:
                raise not_found()
            fault = self._take_fault(canonical, chat_id)
            if fault is not None and fault.after:
                result = await self.methods.call(method, params)  # it happened...
                with self.state.lock:
                    call.ok, call.result = True, copy.deepcopy(result)
                if fault.after == "reset":  # ...but the answer is lost
                    raise ConnectionDropped(canonical)
                await asyncio.sleep(fault.delay)
                return result
            if fault is not None:
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.error_code is not None:
                    raise error_for_code(fault.error_code, fault.description, fault.retry_after)
            if canonical in SEND_METHODS:
                self._check_flood(chat_id)
            result = await self.methods.call(method, params)
        except ApiError as exc:
            with self.state.lock:
                call.ok, call.error_code, call.description = False, exc.error_code, exc.description
            raise
        with self.state.lock:
            call.ok, call.result = True, copy.deepcopy(result)
            if canonical in SEND_METHODS:
                self.state.sent_times.append((time.monotonic(), chat_id if isinstance(chat_id, int) else None))
                del self.state.sent_times[:-10_000]
        return result

    async def _fetch_url(self, url: str) -> tuple[bytes, str | None]:
        session = self._session()
        async with session.get(url, timeout=ClientTimeout(total=10)) as resp:
            if resp.status != 200:
                raise ApiError(400, "Bad Request: failed to get HTTP URL content")
            data = await resp.read()
            return data, resp.headers.get("Content-Type")

    def _session(self) -> ClientSession:
        if self._http is None or self._http.closed:
            self._http = ClientSession()
        return self._http

    # ================================================================== webhook delivery

    def _on_webhook_changed(self) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._ensure_webhook_worker()
        else:
            loop.call_soon_threadsafe(self._ensure_webhook_worker)

    def _ensure_webhook_worker(self) -> None:
        with self.state.lock:
            wanted = self.state.webhook is not None and not self.state.closing
        if wanted and (self._webhook_task is None or self._webhook_task.done()):
            self._webhook_task = asyncio.get_running_loop().create_task(self._webhook_worker())

    async def _webhook_worker(self) -> None:
        state = self.state

        def next_update() -> tuple[Update, WebhookConfig] | str | None:
            if state.closing or state.webhook is None:
                return "stop"
            if state.pending:
                return state.pending[0], state.webhook
            return None

        while True:
            got = await state.wait_async(next_update, 3600.0)
            if got is None:
                continue
            if got == "stop":
                return
            assert not isinstance(got, str)
            update, hook = got
            await self._deliver(update, hook)
            with state.lock:
                if state.pending and state.pending[0] is update:
                    state.pending.pop(0)
                    state.notify()

    async def _deliver(self, update: Update, hook: WebhookConfig) -> bool:
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        body = json.dumps(update.payload, ensure_ascii=False)
        attempts = 1 + len(self.webhook_retry_delays)
        for attempt in range(attempts):
            status: int | None = None
            error: str | None = None
            try:
                async with self._session().post(
                    hook.url, data=body.encode(), headers=headers, timeout=ClientTimeout(total=self.webhook_timeout)
                ) as resp:
                    status = resp.status
                    if 200 <= status < 300:
                        await self._apply_webhook_reply(resp)
                    else:
                        error = f"Wrong response from the webhook: {status} {resp.reason}"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = f"Connection failed: {type(exc).__name__}: {exc}"
            with self.state.lock:
                self.state.webhook_deliveries.append(WebhookDelivery(update.update_id, attempt + 1, status, error))
                if error:
                    hook.last_error_date, hook.last_error_message = now(), error
                self.state.notify()
            if error is None:
                return True
            if attempt < attempts - 1:
                await asyncio.sleep(self.webhook_retry_delays[attempt])
        log.warning("webhook delivery of update %s failed after %s attempts", update.update_id, attempts)
        return False

    async def _apply_webhook_reply(self, resp: Any) -> None:
        """Execute a method returned in the webhook response body, as Telegram does."""
        content_type = resp.headers.get("Content-Type", "")
        params: Params | None = None
        try:
            if content_type.startswith("multipart/"):
                params = await read_multipart(MultipartReader(resp.headers, resp.content), self.max_upload_bytes)
            else:
                raw = await resp.read()
                if raw.strip()[:1] == b"{":
                    decoded = json.loads(raw)
                    params = Params(decoded) if isinstance(decoded, dict) else None
        except Exception:
            return
        if params is None or not params.has("method"):
            return
        method = str(params.values.pop("method"))
        try:
            await self.execute(method, params, via="webhook_reply")
        except ApiError as exc:
            log.info("webhook reply %s failed: %s", method, exc.description)

    # ================================================================== fault injection

    def block_bot(self, chat_id: int, *, notify: bool = True) -> None:
        """The user blocks the bot: sends to this chat answer 403 (``my_chat_member`` update if notify)."""
        self._set_blocked(chat_id, True, notify)

    def unblock_bot(self, chat_id: int, *, notify: bool = True) -> None:
        """The user unblocks the bot."""
        self._set_blocked(chat_id, False, notify)

    def _set_blocked(self, chat_id: int, blocked: bool, notify: bool) -> None:
        with self.state.lock:
            chat = self.state.chats[chat_id]
            if chat.blocked == blocked:
                return
            chat.blocked = blocked
            user = self.state.users.get(chat_id)
            if notify and user is not None:
                old, new = ("member", "kicked") if blocked else ("kicked", "member")
                bot = dict(self.state.bot_user)
                payload = {
                    "chat": chat.to_dict(),
                    "from": dict(user),
                    "date": now(),
                    "old_chat_member": _member(old, bot),
                    "new_chat_member": _member(new, bot),
                }
                self.state.enqueue_update("my_chat_member", payload)
            self.state.add_event("blocked" if blocked else "unblocked", chat_id, None, {})

    def fail_next(
        self,
        method: str,
        error_code: int = 429,
        *,
        retry_after: int | None = None,
        description: str | None = None,
        times: int = 1,
        chat_id: int | None = None,
    ) -> FaultRule:
        """Answer the next ``times`` calls of ``method`` ("*" = any) with an error (429 gets retry_after)."""
        if error_code == 429 and retry_after is None:
            retry_after = 1
        rule = FaultRule(method.lower(), error_code, description, retry_after, times, chat_id)
        with self.state.lock:
            self.state.faults.append(rule)
        return rule

    def delay_next(self, method: str, seconds: float, *, times: int = 1, chat_id: int | None = None) -> FaultRule:
        """Make the next ``times`` calls of ``method`` slow (to exercise client timeouts)."""
        rule = FaultRule(method.lower(), None, times=times, chat_id=chat_id, delay=seconds)
        with self.state.lock:
            self.state.faults.append(rule)
        return rule

    def lose_answer_next(
        self, method: str, *, mode: str = "hang", seconds: float = 30.0, times: int = 1, chat_id: int | None = None
    ) -> FaultRule:
        """The next ``times`` calls of ``method`` take effect (the message is sent), but the answer never
        arrives: ``mode="hang"`` holds it for ``seconds`` (the client times out), ``"reset"`` drops the
        connection. File downloads fail with ``fail_next("file", 404)``."""
        if mode not in ("hang", "reset"):
            raise ValueError(f"unknown mode {mode!r}")
        rule = FaultRule(method.lower(), None, times=times, chat_id=chat_id, delay=seconds, after=mode)
        with self.state.lock:
            self.state.faults.append(rule)
        return rule

    def clear_faults(self) -> None:
        """Forget every scripted fault and flood limit."""
        with self.state.lock:
            self.state.faults.clear()
            self.state.flood_per_chat = self.state.flood_global = None

    def set_flood_control(
        self, per_chat: tuple[int, float] | None = None, overall: tuple[int, float] | None = None
    ) -> None:
        """Enable automatic 429s: at most ``(count, seconds)`` sends per chat and/or overall."""
        with self.state.lock:
            self.state.flood_per_chat, self.state.flood_global = per_chat, overall
            self.state.sent_times.clear()

    def _take_fault(self, method: str, chat_id: int | str | None) -> FaultRule | None:
        with self.state.lock:
            found = next((rule for rule in self.state.faults if rule.matches(method, chat_id)), None)
            if found is not None:
                found.times -= 1
            self.state.faults = [r for r in self.state.faults if r.times > 0]
            return found

    def _check_flood(self, chat_id: int | str | None) -> None:
        with self.state.lock:
            moment = time.monotonic()
            limits = [(self.state.flood_global, None)]
            if isinstance(chat_id, int):
                limits.append((self.state.flood_per_chat, chat_id))
            for limit, scope in limits:
                if limit is None:
                    continue
                count, window = limit
                recent = [t for t, c in self.state.sent_times if moment - t < window and (scope is None or c == scope)]
                if len(recent) >= count:
                    raise error_for_code(429, retry_after=max(1, math.ceil(min(recent) + window - moment)))

    # ================================================================== users (test side)

    def user(
        self,
        user_id: int | None = None,
        first_name: str = "Test",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "ru",
        is_premium: bool | None = None,
    ) -> EmulatedUser:
        """Create (or fetch) an emulated Telegram user with a private chat with the bot."""
        with self.state.lock:
            if user_id is not None and user_id in self._users:
                return self._users[user_id]
            uid = user_id if user_id is not None else self.state.new_user_id()
            info: JSON = {"id": uid, "is_bot": False, "first_name": first_name}
            if last_name:
                info["last_name"] = last_name
            if username:
                info["username"] = username
            if language_code:
                info["language_code"] = language_code
            if is_premium:
                info["is_premium"] = True
            self.state.users[uid] = info
            self.state.ensure_private_chat(info)
            client = EmulatedUser(self, info)
            self._users[uid] = client
            return client

    def post_user_message(self, user_id: int, content: JSON, *, edit_of: int | None = None) -> tuple[JSON, int]:
        """Append a user's message (or edit one) and queue the update; returns (Message, update_id)."""
        with self.state.lock:
            user = self.state.users[user_id]
            chat = self.state.chats[user_id]
            if edit_of is not None:
                stored = chat.messages.get(edit_of)
                if stored is None or stored.from_bot or stored.deleted:
                    raise ValueError(f"message {edit_of} is not an existing message of this user")
                stored.data.update(content)
                stored.data["edit_date"] = now()
                event = self.state.add_event("user_edit", chat.id, edit_of, stored.data)
                chat.last_action_seq = event.seq
                update = self.state.enqueue_update("edited_message", stored.data)
                return copy.deepcopy(stored.data), update.update_id
            msg = self.state.add_message(chat, user, content, from_bot=False)
            event = self.state.add_event("user_message", chat.id, msg.message_id, msg.data)
            chat.last_action_seq = event.seq
            update = self.state.enqueue_update("message", msg.data)
            return copy.deepcopy(msg.data), update.update_id

    def post_callback_query(self, user_id: int, message_id: int | None, data: str | None) -> tuple[JSON, int]:
        """Queue a callback_query from a user for a message; returns (CallbackQuery, update_id)."""
        with self.state.lock:
            user = self.state.users[user_id]
            chat = self.state.chats[user_id]
            qid = self.state.new_query_id()
            query: JSON = {"id": qid, "from": dict(user), "chat_instance": chat.chat_instance}
            if message_id is not None:
                stored = chat.messages.get(message_id)
                if stored is not None and not stored.deleted:
                    query["message"] = copy.deepcopy(stored.data)
                else:
                    query["message"] = {"chat": chat.to_dict(), "message_id": message_id, "date": 0}
            if data is not None:
                query["data"] = data
            self.state.callback_queries[qid] = CallbackQueryRecord(qid, user_id, chat.id, message_id, data)
            event = self.state.add_event("user_callback", chat.id, message_id, query)
            chat.last_action_seq = event.seq
            update = self.state.enqueue_update("callback_query", query)
            return query, update.update_id

    def store_user_photo(self, data: bytes, width: int | None = None, height: int | None = None) -> list[JSON]:
        """Store a photo a user sends; returns its PhotoSize list (smallest first)."""
        info = probe_image(data)
        w = width or (info.width if info else 1280)
        h = height or (info.height if info else 960)
        largest = self.methods.register_photo(data, w, h)
        return self.methods.media_content("photo", largest)["photo"]

    def store_user_file(
        self, kind: str, data: bytes, file_name: str | None = None, mime_type: str | None = None, **meta: Any
    ) -> JSON:
        """Store a non-photo file a user sends; returns the message field content (e.g. a Document)."""
        extra = meta.pop("extra", None)
        stored = self.methods.store_media(kind, data, file_name, mime_type, extra=extra, **meta)
        return self.methods.media_content(kind, stored)[kind]

    def resolve_invoice(self, ref: Any, user_id: int) -> Invoice:
        """Find an invoice from a message (dict/aiogram object), a message id or an invoice link."""
        with self.state.lock:
            if isinstance(ref, str):
                invoice_id = self.state.invoice_by_link.get(ref)
            else:
                chat_id, message_id = _message_address(ref, user_id)
                invoice_id = self.state.invoice_by_message.get((chat_id, message_id))
            if invoice_id is None:
                raise LookupError(f"no invoice found for {ref!r}")
            return self.state.invoices[invoice_id]

    def start_pre_checkout(self, user_id: int, invoice: Invoice, timeout: float | None = None) -> PreCheckoutRecord:
        """Queue a pre_checkout_query for an invoice; the bot must answer before the deadline."""
        timeout = self.pre_checkout_timeout if timeout is None else timeout
        with self.state.lock:
            user = self.state.users[user_id]
            chat = self.state.chats[user_id]
            qid = self.state.new_query_id()
            record = PreCheckoutRecord(qid, user_id, chat.id, invoice, deadline=time.time() + timeout)
            self.state.pre_checkouts[qid] = record
            query = {
                "id": qid,
                "from": dict(user),
                "currency": invoice.currency,
                "total_amount": invoice.total_amount,
                "invoice_payload": invoice.payload,
            }
            event = self.state.add_event("user_pre_checkout", chat.id, invoice.message_id, query)
            chat.last_action_seq = event.seq
            self.state.enqueue_update("pre_checkout_query", query)
            return record

    def finish_payment(self, record: PreCheckoutRecord, charge_id: str | None = None) -> PaymentResult:
        """Complete a payment after the pre-checkout answer (or report the refusal/timeout)."""
        with self.state.lock:
            invoice = record.invoice
            base = {
                "pre_checkout_query_id": record.id,
                "currency": invoice.currency,
                "total_amount": invoice.total_amount,
                "invoice_payload": invoice.payload,
            }
            if not record.answered:
                record.expired = True  # a late answer gets "query is too old"
                return PaymentResult(ok=False, error_message="timeout: pre_checkout_query was not answered", **base)
            if not record.ok:
                return PaymentResult(ok=False, error_message=record.error_message, **base)
            payment = self.state.payments.get(charge_id or "")
            if payment is None:
                is_stars = invoice.currency == "XTR"
                charge = charge_id or (("stx" if is_stars else "") + secrets.token_urlsafe(24))
                payment = Payment(
                    telegram_payment_charge_id=charge,
                    provider_payment_charge_id=("" if is_stars else "prov_") + secrets.token_hex(10),
                    user_id=record.user_id,
                    chat_id=record.chat_id,
                    currency=invoice.currency,
                    total_amount=invoice.total_amount,
                    invoice_payload=invoice.payload,
                    date=now(),
                )
                self.state.payments[charge] = payment
            message, update_id = self._post_payment_message(payment)
            return PaymentResult(
                ok=True, charge_id=payment.telegram_payment_charge_id, message=message, update_id=update_id, **base
            )

    def _post_payment_message(self, payment: Payment) -> tuple[JSON, int]:
        successful = {
            "currency": payment.currency,
            "total_amount": payment.total_amount,
            "invoice_payload": payment.invoice_payload,
            "telegram_payment_charge_id": payment.telegram_payment_charge_id,
            "provider_payment_charge_id": payment.provider_payment_charge_id,
        }
        message, update_id = self.post_user_message(payment.user_id, {"successful_payment": successful})
        with self.state.lock:
            payment.message_ids.append(message["message_id"])
            self.state.add_event("payment", payment.chat_id, message["message_id"], successful)
        return message, update_id

    def replay_payment(self, charge_id: str) -> tuple[JSON, int]:
        """Send the same successful_payment again in a new message/update (to test idempotent crediting)."""
        with self.state.lock:
            payment = self.state.payments[charge_id]
        return self._post_payment_message(payment)

    # ================================================================== inspection

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

    def _guard_blocking(self) -> None:
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
        self._guard_blocking()
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


# ====================================================================== helpers


def _loose_chat_id(value: Any) -> int | str | None:
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        return str(value)


def _member(status: str, user: JSON) -> JSON:
    member: JSON = {"status": status, "user": user}
    if status == "kicked":
        member["until_date"] = 0
    return member


def _message_address(ref: Any, default_chat: int) -> tuple[int, int]:
    if isinstance(ref, int):
        return default_chat, ref
    if isinstance(ref, dict):
        return int(ref["chat"]["id"]), int(ref["message_id"])
    chat = getattr(ref, "chat", None)
    return int(getattr(chat, "id", default_chat)), int(ref.message_id)


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
