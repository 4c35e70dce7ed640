"""A fake YooKassa API v3 server that the official ``yookassa`` SDK talks to (aiohttp; Django-free, SDK-free).

Point the SDK at it (the SDK's base URL is the class attribute ``Configuration.api_url``, which
``Configuration.configure`` sets from its ``api_url`` keyword)::

    Configuration.configure(fake.shop_id, fake.secret_key, api_url=fake.api_url)   # or **fake.sdk_settings()

Served (HTTP Basic auth ``shop_id:secret_key`` on every ``/v3`` call; POSTs need ``Idempotence-Key``):

- ``POST /v3/payments``, ``GET /v3/payments`` (newest first, ``limit``/``cursor``/``status``), ``GET /v3/payments/{id}``
- ``POST /v3/payments/{id}/capture``, ``POST /v3/payments/{id}/cancel``
- ``POST /v3/refunds``, ``GET /v3/refunds`` (``payment_id``, ``created_at.gte``), ``GET /v3/refunds/{id}``
- ``GET /checkout/payments/v2/contract?orderId=...``: the page a ``confirmation_url`` opens (Pay / Cancel buttons,
  then back to ``return_url``), for people using the sandbox in a browser.

Idempotency as YooKassa documents it: the same key with the same request answers what the first request
answered (nothing is done twice); the same key with a different request is ``400 invalid_request``
"Idempotence key duplicated"; keys are per shop, at most 64 characters. A request that ends in a 500 before
taking effect stores nothing, so a retry with the same key runs it.

Test-side hooks (thread-safe): ``pay(id)`` (the user pays: succeeded, or waiting_for_capture with
``capture=false``), ``cancel(id, reason)`` (expired, declined, ...), ``notify(id, event)`` (a webhook, see
``webhooks.py``); faults: ``fail_next``, ``delay_next``, ``lose_answer_next``; records: ``requests``.

The SDK is synchronous (``requests``): run the fake in its own thread (``with FakeYooKassa() as fake``) or, when
it serves in your event loop (``async with``), call the SDK through ``asyncio.to_thread`` -- a blocking SDK call
in the loop that serves the fake never gets its answer.

Mind the SDK: it sets no HTTP timeout (a server that never answers blocks the caller forever: give the call
your own timeout), and a dropped connection surfaces as ``AttributeError`` (it reads ``e.response.status_code``
of a ``requests.ConnectionError`` whose ``response`` is None), not as a YooKassa error.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from sandbox.threads import ServerThread

from . import model
from .checkout import CHECKOUT_PATH, CheckoutPages
from .model import JSON, ApiFailure, Payment, invalid
from .webhooks import WebhooksMixin

log = logging.getLogger("sandbox.yookassa")

OPERATIONS = (
    "create_payment",
    "list_payments",
    "get_payment",
    "capture_payment",
    "cancel_payment",
    "create_refund",
    "list_refunds",
    "get_refund",
)


@dataclass
class RecordedRequest:
    """One API request as received and how it was answered."""

    operation: str
    method: str
    path: str
    headers: dict[str, str]
    json: Any
    status: int | None = None
    replayed: bool = False
    at: float = field(default_factory=time.time)

    @property
    def idempotence_key(self) -> str | None:
        """The Idempotence-Key header."""
        return self.headers.get("Idempotence-Key")


@dataclass
class Fault:
    """A scripted failure of the next ``times`` calls of an operation ("*" = any)."""

    operation: str
    status: int | None = None
    applied: bool = False
    delay: float = 0.0
    lose: str | None = None  # "reset" or "hang"
    times: int = 1


class _Dropped(Exception):
    """Drop the connection without answering."""


class FakeYooKassa(WebhooksMixin):
    """The fake. ``async with FakeYooKassa() as fake`` (current loop) or ``with FakeYooKassa() as fake`` (thread)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        shop_id: str = "100500",
        secret_key: str = "test_fake_secret_key",
        gateway_id: str = "100700",
        test: bool = True,
        commission: Decimal | str = "0.035",
        webhook_url: str | None = None,
        notify_events: tuple[str, ...] | None = None,
        source_ip: str = "185.71.76.1",
        source_ip_header: str | None = "X-Forwarded-For",
        webhook_retry_delays: tuple[float, ...] = (0.05, 0.2, 0.5),
        webhook_timeout: float = 5.0,
    ) -> None:
        self.host, self.port = host, port
        self.shop_id, self.secret_key, self.gateway_id = shop_id, secret_key, gateway_id
        self.test = test
        self.commission = Decimal(str(commission))
        self.lock = threading.RLock()
        self.payments: dict[str, Payment] = {}
        self.refunds: dict[str, JSON] = {}
        self.saved_methods: dict[str, JSON] = {}
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self._idempotency: dict[tuple[str, str], tuple[str, int, JSON]] = {}
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: ServerThread | None = None
        self.checkout = CheckoutPages(self)
        self.init_webhooks(
            webhook_url, notify_events, source_ip, source_ip_header, webhook_retry_delays, webhook_timeout
        )

    # ================================================================== lifecycle

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:port``."""
        if self._runner is None:
            raise RuntimeError("the fake YooKassa is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """What the SDK's ``Configuration.configure(..., api_url=...)`` takes (``{base_url}/v3``)."""
        return self.base_url + "/v3"

    def sdk_settings(self) -> dict[str, str]:
        """Keyword arguments for ``yookassa.Configuration.configure(**fake.sdk_settings())``."""
        return {"account_id": self.shop_id, "secret_key": self.secret_key, "api_url": self.api_url}

    def make_app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application()
        app.router.add_route("*", "/v3/{path:.*}", self._handle_api)
        app.router.add_get("/health", _health)
        self.checkout.install(app)
        return app

    async def start(self) -> FakeYooKassa:
        """Serve in the current event loop."""
        self._loop = asyncio.get_running_loop()
        runner = web.AppRunner(self.make_app(), handle_signals=False, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, self.host, self.port).start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("fake YooKassa listening on %s", self.base_url)
        return self

    async def stop(self) -> None:
        """Stop serving (pending webhook deliveries are dropped)."""
        await self.stop_webhooks()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeYooKassa:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start_in_thread(self, timeout: float = 10.0) -> FakeYooKassa:
        """Serve from a daemon thread with its own event loop."""
        self._thread = ServerThread(self, "fake-yookassa")
        self._thread.start(timeout)
        return self

    def stop_thread(self, timeout: float = 10.0) -> None:
        """Stop a server started with :meth:`start_in_thread`."""
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.stop(timeout)

    def __enter__(self) -> FakeYooKassa:
        return self.start_in_thread()

    def __exit__(self, *exc: object) -> None:
        self.stop_thread()

    # ================================================================== test-side hooks

    def payment(self, payment_id: str) -> JSON:
        """The payment object as the API shows it now (KeyError if unknown)."""
        with self.lock:
            return self.payments[payment_id].view()

    def pay(self, payment_id: str, *, card_last4: str = "4477") -> JSON:
        """The user completes the payment: ``succeeded`` (``capture=true``) or ``waiting_for_capture``."""
        with self.lock:
            payment = self.payments[payment_id]
            model.mark_paid(payment, commission=self.commission, card_last4=card_last4)
            if payment.save_method:
                self.saved_methods[payment.id] = copy.deepcopy(payment.data["payment_method"])
            view = payment.view()
        self.auto_notify("payment." + view["status"], view)
        return view

    def cancel(self, payment_id: str, reason: str = "expired_on_confirmation") -> JSON:
        """The payment fails or expires (not the merchant's cancel: that is the API's ``/cancel``)."""
        with self.lock:
            payment = self.payments[payment_id]
            model.cancel(payment, reason, by_merchant=False)
            view = payment.view()
        self.auto_notify("payment.canceled", view)
        return view

    def fail_next(self, operation: str = "*", status: int = 500, *, applied: bool = False, times: int = 1) -> Fault:
        """Answer the next ``times`` calls of ``operation`` with ``status`` and YooKassa's error body.
        ``applied=True``: the operation takes effect first (a 500 whose result is unknown to the caller)."""
        return self._add_fault(Fault(_op(operation), status=status, applied=applied, times=times))

    def delay_next(self, operation: str = "*", seconds: float = 1.0, *, times: int = 1) -> Fault:
        """Make the next calls slow (before they take effect)."""
        return self._add_fault(Fault(_op(operation), delay=seconds, times=times))

    def lose_answer_next(
        self, operation: str = "*", *, mode: str = "reset", seconds: float = 30.0, times: int = 1
    ) -> Fault:
        """The next calls take effect, but the answer is lost: ``reset`` drops the connection, ``hang`` holds the
        answer for ``seconds`` first (the SDK has no timeout of its own: the caller's timeout must fire)."""
        if mode not in ("reset", "hang"):
            raise ValueError(f"unknown mode {mode!r}")
        return self._add_fault(Fault(_op(operation), applied=True, lose=mode, delay=seconds, times=times))

    def clear_faults(self) -> None:
        """Forget scripted faults."""
        with self.lock:
            self.faults.clear()

    def requests_for(self, operation: str) -> list[RecordedRequest]:
        """Recorded requests of one operation."""
        with self.lock:
            return [r for r in self.requests if r.operation == operation]

    def _add_fault(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def _take_fault(self, operation: str) -> Fault | None:
        with self.lock:
            found = next((f for f in self.faults if f.times > 0 and f.operation in ("*", operation)), None)
            if found is not None:
                found.times -= 1
            self.faults = [f for f in self.faults if f.times > 0]
            return found

    # ================================================================== HTTP

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        operation, handler = self._route(request.method, request.match_info["path"].strip("/"), dict(request.query))
        record = RecordedRequest(operation, request.method, request.path, dict(request.headers), body)
        with self.lock:
            self.requests.append(record)
        try:
            status, answer = await self._answer(request, operation, handler, body, record)
        except _Dropped:
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError from None
        record.status = status
        return web.json_response(answer, status=status)

    async def _answer(
        self,
        request: web.Request,
        operation: str,
        handler: Callable[[Any], JSON] | None,
        body: Any,
        record: RecordedRequest,
    ) -> tuple[int, JSON]:
        try:
            if handler is None:
                raise ApiFailure(404, "Requested resource is not found", code="not_found")  # approximate
            self._authenticate(request)
            fault = self._take_fault(operation)
            if fault is not None and fault.delay and fault.lose is None:
                await asyncio.sleep(fault.delay)
            if fault is not None and fault.status is not None and not fault.applied:
                raise ApiFailure(fault.status, _fault_description(fault.status))
            if body is None or not isinstance(body, dict):
                raise invalid("Invalid JSON in the request body")  # approximate
            if request.method == "POST":
                status, answer = self._idempotent(request, operation, handler, body, record)
            else:
                status, answer = 200, self._run(handler, body)
            if fault is not None and fault.lose == "reset":
                raise _Dropped
            if fault is not None and fault.lose == "hang":
                await asyncio.sleep(fault.delay)
            if fault is not None and fault.status is not None:
                raise ApiFailure(fault.status, _fault_description(fault.status))
            return status, answer
        except ApiFailure as failure:
            return failure.status, failure.body()

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"{self.shop_id}:{self.secret_key}".encode()).decode()
        if header != expected:
            raise ApiFailure(  # approximate wording
                401, "Login or password is incorrect: check the shopId and the secret key", code="invalid_credentials"
            )

    def _idempotent(
        self, request: web.Request, operation: str, handler: Callable[[Any], JSON], body: JSON, record: RecordedRequest
    ) -> tuple[int, JSON]:
        key = request.headers.get("Idempotence-Key")
        if not key:
            raise invalid("Idempotence key is missing", "Idempotence-Key")  # approximate
        if len(key) > 64:
            raise invalid("Idempotence key is too long", "Idempotence-Key")  # approximate
        fingerprint = request.method + " " + request.path + " " + json.dumps(body, sort_keys=True)
        with self.lock:
            seen = self._idempotency.get((self.shop_id, key))
            if seen is not None:
                if seen[0] != fingerprint:
                    raise invalid("Idempotence key duplicated", "Idempotence-Key")
                record.replayed = True
                return seen[1], copy.deepcopy(seen[2])
            try:
                answer = self._run(handler, body)
            except ApiFailure as failure:
                if failure.status < 500:
                    self._idempotency[(self.shop_id, key)] = (fingerprint, failure.status, failure.body())
                raise
            self._idempotency[(self.shop_id, key)] = (fingerprint, 200, copy.deepcopy(answer))
            return 200, answer

    def _run(self, handler: Callable[[Any], JSON], body: JSON) -> JSON:
        with self.lock:
            return handler(body)

    def _route(self, method: str, path: str, query: dict[str, str]) -> tuple[str, Callable[[Any], JSON] | None]:
        parts = path.split("/")
        if len(parts) == 1 and parts[0] in ("payments", "refunds") and method == "GET":
            return f"list_{parts[0]}", lambda _: self.list_objects(parts[0], query)
        if parts[0] == "payments":
            if len(parts) == 1 and method == "POST":
                return "create_payment", self._create_payment
            pid = parts[1]
            if len(parts) == 2 and method == "GET":
                return "get_payment", lambda _: self._get_payment(pid).view()
            if len(parts) == 3 and method == "POST" and parts[2] in ("capture", "cancel"):
                action = self._capture if parts[2] == "capture" else self._cancel
                return f"{parts[2]}_payment", lambda body: action(pid, body)
        if parts[0] == "refunds":
            if len(parts) == 1 and method == "POST":
                return "create_refund", self._create_refund
            if len(parts) == 2 and method == "GET":
                return "get_refund", lambda _: self._get_refund(parts[1])
        return "unknown", None

    # ================================================================== operations (lock held)

    def _create_payment(self, body: JSON) -> JSON:
        payment = model.new_payment(
            body,
            shop_id=self.shop_id,
            gateway_id=self.gateway_id,
            test=self.test,
            checkout_url=self.base_url + CHECKOUT_PATH,
        )
        saved = body.get("payment_method_id")
        if saved is not None:
            method = self.saved_methods.get(str(saved))
            if method is None:
                raise invalid("Payment method with this id is not found or not saved", "payment_method_id")  # approx.
            payment.data["payment_method"] = copy.deepcopy(method)
            payment.save_method = True
        self.payments[payment.id] = payment
        if saved is not None:  # an autopayment with a saved method needs no confirmation
            model.mark_paid(payment, commission=self.commission)
            self.auto_notify("payment." + payment.status, payment.view())
        return payment.view()

    def _get_payment(self, payment_id: str) -> Payment:
        payment = self.payments.get(payment_id)
        if payment is None:
            raise ApiFailure(404, "Payment doesn't exist or access denied", "payment_id")  # approximate
        return payment

    def _capture(self, payment_id: str, body: JSON) -> JSON:
        payment = self._get_payment(payment_id)
        model.capture(payment, body, commission=self.commission)
        self.auto_notify("payment.succeeded", payment.view())
        return payment.view()

    def _cancel(self, payment_id: str, body: JSON) -> JSON:
        payment = self._get_payment(payment_id)
        model.cancel(payment, "canceled_by_merchant", by_merchant=True)
        self.auto_notify("payment.canceled", payment.view())
        return payment.view()

    def _create_refund(self, body: JSON) -> JSON:
        payment = self._get_payment(str(body.get("payment_id") or ""))
        refund = model.new_refund(payment, body)
        self.refunds[refund["id"]] = refund
        self.auto_notify("refund.succeeded", copy.deepcopy(refund))
        return copy.deepcopy(refund)

    def _get_refund(self, refund_id: str) -> JSON:
        refund = self.refunds.get(refund_id)
        if refund is None:
            raise ApiFailure(404, "Refund doesn't exist or access denied", "refund_id")  # approximate
        return copy.deepcopy(refund)

    def list_objects(self, kind: str, query: dict[str, str]) -> JSON:
        """GET /payments or /refunds: newest first, ``limit`` 1..100 (default 10), an opaque ``cursor``."""
        with self.lock:
            if kind == "payments":
                items = [p.view() for p in self.payments.values()]
                wanted = query.get("status")
                items = [i for i in items if wanted is None or i["status"] == wanted]
            else:
                items = [copy.deepcopy(r) for r in self.refunds.values()]
                wanted = query.get("payment_id")
                items = [i for i in items if wanted is None or i["payment_id"] == wanted]
        items.reverse()
        if query.get("created_at.gte"):  # the one date filter we need (YooKassa has .gt, .lte, .lt too)
            try:
                since = datetime.fromisoformat(query["created_at.gte"].replace("Z", "+00:00"))
            except ValueError:
                raise invalid("Invalid created_at.gte", "created_at.gte") from None  # approximate
            items = [i for i in items if datetime.fromisoformat(i["created_at"].replace("Z", "+00:00")) >= since]
        try:
            limit = int(query.get("limit", 10))
            start = int(base64.urlsafe_b64decode(query["cursor"]).decode()) if query.get("cursor") else 0
        except ValueError:
            raise invalid("Invalid limit or cursor") from None  # approximate
        if not 1 <= limit <= 100:
            raise invalid("Invalid limit", "limit")  # approximate
        out: JSON = {"type": "list", "items": items[start : start + limit]}
        if start + limit < len(items):
            out["next_cursor"] = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
        return out


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def _op(operation: str) -> str:
    if operation != "*" and operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}; one of {OPERATIONS} or '*'")
    return operation


def _fault_description(status: int) -> str:
    return {
        429: "Too many requests. Try again later",
        500: "Internal server error. The result of the request is unknown: repeat it with the same idempotence key",
    }.get(status, f"Injected failure {status}")
