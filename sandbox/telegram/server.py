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
import logging
import secrets
import time
from collections.abc import Iterator
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

from sandbox.threads import ServerThread

from .api import MESSAGE_EVENTS, Predicate, WaitTimeout
from .client import EmulatedUser
from .errors import ApiError, error_for_code, not_found, unauthorized
from .faults import ConnectionDropped, FaultsMixin
from .inspection import InspectionMixin
from .methods import BotMethods
from .params import MAX_UPLOAD_BYTES, Params, parse_request
from .stars import StarsMixin
from .state import JSON, ApiCall, EmulatorState
from .users import UsersMixin
from .webchat import WebChat
from .webhook import WebhookMixin

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

__all__ = ["MESSAGE_EVENTS", "BotAPIEmulator", "Predicate", "WaitTimeout"]


class BotAPIEmulator(WebhookMixin, FaultsMixin, UsersMixin, StarsMixin, InspectionMixin):
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
        webchat: bool = True,
        bot_refund_message: bool = False,
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
        # Whether the bot's own refundStarPayment also delivers a ``refunded_payment`` message to it. Telegram
        # shows the refund in the chat; whether the Bot API delivers that service message to the bot that made
        # the refund is not documented, so it is off by default (refunds by Telegram always deliver it).
        self.methods.bot_refund_message = bot_refund_message
        self.methods.post_refunded_message = self.post_refunded_message
        self.app = web.Application(client_max_size=max_upload_bytes + 1024 * 1024)
        self.app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        self.app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self.app.router.add_get("/", self._handle_index)
        self.app.router.add_get("/health", self._handle_health)
        #: The web chat page at /chat/ (a person talking to the bot in a browser); None when disabled.
        # The host it serves on is allowed besides loopback (an explicit --host 0.0.0.0 allows no more).
        served = (host,) if host not in ("0.0.0.0", "::", "") else ()
        self.webchat: WebChat | None = WebChat(self, allowed_hosts=served) if webchat else None
        if self.webchat is not None:
            self.webchat.install(self.app)
        self._users: dict[int, EmulatedUser] = {}
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: ServerThread | None = None
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
        self._thread = ServerThread(self, "bot-api-emulator")
        self._thread.start(timeout)
        return self

    def stop_in_thread(self, timeout: float = 10.0) -> None:
        """Stop a server started with :meth:`start_in_thread`."""
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.stop(timeout)

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

    @property
    def webchat_url(self) -> str:
        """The web chat page (``http://127.0.0.1:port/chat/``; a wildcard host is shown as 127.0.0.1)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/chat/"

    async def _handle_health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "bot": self.state.bot_user.get("username")})

    async def _handle_index(self, request: web.Request) -> web.Response:
        if self.webchat is not None and "text/html" in request.headers.get("Accept", ""):
            raise web.HTTPFound("/chat/")
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
