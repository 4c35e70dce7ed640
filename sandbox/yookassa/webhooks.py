"""Webhook notifications of the fake YooKassa: what YooKassa POSTs to the shop's HTTP notification URL.

The body is ``{"type": "notification", "event": "payment.succeeded", "object": {...the payment...}}`` (for
``refund.succeeded`` the object is the refund). YooKassa signs nothing: a shop checks that the request comes
from YooKassa's addresses (the SDK's ``SecurityHelper().is_ip_trusted(ip)``) and/or re-reads the object
through the API. The fake runs on loopback, so it cannot send from YooKassa's addresses: it puts
``source_ip`` (default ``185.71.76.1``, inside YooKassa's ``185.71.76.0/27``) in the ``source_ip_header``
header (default ``X-Forwarded-For``, what the shop sees behind a reverse proxy). A shop that reads the peer
address itself should be tested by calling its webhook view directly, with a request it builds from
``notification_body(...)``.

With ``webhook_url`` set, every status change sends the matching event (``payment.waiting_for_capture``,
``payment.succeeded``, ``payment.canceled``, ``refund.succeeded``; narrow with ``notify_events``), like a shop
that subscribed to them; ``notify(id, event)`` sends one more (duplicates, out-of-order events). A non-2xx
answer or a connection error is retried after each of ``webhook_retry_delays`` (YooKassa keeps retrying for
24 hours); every attempt is recorded in ``Notification.attempts``. Unlike YooKassa, plain ``http://`` URLs and
any port are accepted.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import ClientSession, ClientTimeout

from .model import JSON

if TYPE_CHECKING:
    from .model import Payment

EVENTS = ("payment.waiting_for_capture", "payment.succeeded", "payment.canceled", "refund.succeeded")


@dataclass
class Attempt:
    """One POST of a notification."""

    status: int | None
    error: str | None
    at: float = field(default_factory=time.time)


@dataclass
class Notification:
    """A notification and its delivery attempts."""

    event: str
    body: JSON
    url: str
    attempts: list[Attempt] = field(default_factory=list)
    delivered: bool = False
    done: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout: float = 5.0) -> bool:
        """Block until delivered or given up (True when delivered)."""
        self.done.wait(timeout)
        return self.delivered

    async def wait_async(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109
        """Async :meth:`wait`."""
        await asyncio.to_thread(self.done.wait, timeout)
        return self.delivered


def notification_body(event: str, obj: JSON) -> JSON:
    """The JSON YooKassa POSTs for an event."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}; one of {EVENTS}")
    return {"type": "notification", "event": event, "object": copy.deepcopy(obj)}


class WebhooksMixin:
    """Notification delivery (part of :class:`FakeYooKassa`)."""

    lock: threading.RLock
    payments: dict[str, Payment]
    refunds: dict[str, JSON]
    _loop: asyncio.AbstractEventLoop | None

    def init_webhooks(
        self,
        url: str | None,
        events: tuple[str, ...] | None,
        source_ip: str,
        source_ip_header: str | None,
        retry_delays: tuple[float, ...],
        timeout: float,
    ) -> None:
        self.webhook_url = url
        self.notify_events = tuple(events) if events is not None else EVENTS
        self.source_ip = source_ip
        self.source_ip_header = source_ip_header
        self.webhook_retry_delays = tuple(retry_delays)
        self.webhook_timeout = timeout
        self.notifications: list[Notification] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: ClientSession | None = None

    def set_webhook(self, url: str | None, events: tuple[str, ...] | None = None) -> None:
        """Set (or clear) the notification URL and the events it receives."""
        self.webhook_url = url
        self.notify_events = tuple(events) if events is not None else EVENTS

    def notify(self, object_id: str, event: str | None = None) -> Notification:
        """Send a notification about a payment or refund as it is now (event defaults to its status)."""
        with self.lock:
            if object_id in self.payments:
                obj = self.payments[object_id].view()
                event = event or "payment." + obj["status"]
            elif object_id in self.refunds:
                obj = copy.deepcopy(self.refunds[object_id])
                event = event or "refund.succeeded"
            else:
                raise KeyError(f"no payment or refund {object_id!r}")
        if not self.webhook_url:
            raise RuntimeError("no webhook_url is set")
        return self._send(event, obj, self.webhook_url)

    def auto_notify(self, event: str, obj: JSON) -> Notification | None:
        """Send ``event`` if a webhook URL is set and subscribed to it (called on every status change)."""
        if not self.webhook_url or event not in self.notify_events:
            return None
        return self._send(event, obj, self.webhook_url)

    def wait_notifications(self, count: int, timeout: float = 5.0) -> list[Notification]:
        """Block until ``count`` notifications have finished (delivered or given up); returns them all."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                finished = [n for n in self.notifications if n.done.is_set()]
            if len(finished) >= count or time.monotonic() > deadline:
                return finished
            time.sleep(0.01)

    def _send(self, event: str, obj: JSON, url: str) -> Notification:
        note = Notification(event, notification_body(event, obj), url)
        loop = self._loop
        if loop is None or loop.is_closed():
            raise RuntimeError("the fake YooKassa is not running")
        with self.lock:
            self.notifications.append(note)
        if _in_loop(loop):
            self._start(note)
        else:
            loop.call_soon_threadsafe(self._start, note)
        return note

    def _start(self, note: Notification) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(note))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, note: Notification) -> None:
        headers = {"Content-Type": "application/json"}
        if self.source_ip_header:
            headers[self.source_ip_header] = self.source_ip
        try:
            for delay in (0.0, *self.webhook_retry_delays):
                if delay:
                    await asyncio.sleep(delay)
                status, error = await self._post(note, headers)
                note.attempts.append(Attempt(status, error))
                if status is not None and 200 <= status < 300:
                    note.delivered = True
                    return
        finally:
            note.done.set()

    async def _post(self, note: Notification, headers: dict[str, str]) -> tuple[int | None, str | None]:
        if self._http is None or self._http.closed:
            self._http = ClientSession()
        try:
            async with self._http.post(
                note.url, json=note.body, headers=headers, timeout=ClientTimeout(total=self.webhook_timeout)
            ) as response:
                await response.read()
                return response.status, None
        except Exception as exc:  # any failure is a failed attempt, retried like YooKassa does
            return None, f"{type(exc).__name__}: {exc}"

    async def stop_webhooks(self) -> None:
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if self._http is not None:
            await self._http.close()
            self._http = None


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
