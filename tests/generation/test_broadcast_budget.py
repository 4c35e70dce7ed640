"""A broadcast shares TELEGRAM_GLOBAL_RATE with the results: each of its free sends takes a slot of the
same global bucket (through the one sender and the process's limiter, Redis-backed with REDIS_URL, so
shared by every process) on top of its own BROADCAST_RATE pace, so a broadcast and result deliveries
together stay within Telegram's ~30 messages/s. A paid broadcast (allow_paid_broadcast: up to 1000/s,
beyond the free limit) takes only its own BROADCAST_PAID_RATE bucket and the chat's."""

from __future__ import annotations

import threading
import time

# Imported up front: the sender imports aiogram lazily, and two threads doing it at once can fail.
import aiogram.exceptions
import aiogram.types  # noqa: F401
import pytest
from django.utils import timezone

from botapp.models import Broadcast, TgUser
from botapp.services import alerts
from botapp.services import broadcasts as service
from botapp.telegram import sender as sender_module
from botapp.telegram.ratelimit import Bucket, RateLimiter

pytestmark = pytest.mark.django_db(transaction=True)


class RecordingLimiter(RateLimiter):
    """The process's limiter, noting the bucket keys of every reservation."""

    def __init__(self, inner: RateLimiter) -> None:
        self.inner = inner
        self.reserved: list[tuple[str, ...]] = []
        self._lock = threading.Lock()

    def reserve(self, buckets: list[Bucket], max_wait: float) -> float | None:
        with self._lock:
            self.reserved.append(tuple(b.key for b in buckets))
        return self.inner.reserve(buckets, max_wait)

    def penalize(self, bucket: Bucket, seconds: float) -> None:
        self.inner.penalize(bucket, seconds)


@pytest.fixture
def budget(settings, emulator, monkeypatch):
    """The process's sender pointed at the emulator over a recording limiter; the session's worker (if
    any) stopped, so that its beat does not run these broadcasts; no alerts."""
    from botapp.telegram.sender import close_sender, get_limiter

    from .conftest import _WORKERS

    for process in _WORKERS:
        process.stop()
    settings.BOT_TOKEN = emulator.token
    settings.TELEGRAM_API_URL = emulator.base_url
    settings.TELEGRAM_GLOBAL_RATE = settings.TELEGRAM_CHAT_RATE = 1000
    settings.TELEGRAM_GLOBAL_BURST = settings.TELEGRAM_CHAT_BURST = 50
    settings.TELEGRAM_MAX_WAIT_SECONDS = 5
    settings.TELEGRAM_REQUEST_TIMEOUT_SECONDS = 5
    settings.BROADCAST_RATE = settings.BROADCAST_PAID_RATE = 1000
    settings.BROADCAST_THREADS = 4
    settings.BROADCAST_LEASE_SECONDS = 3
    settings.ADMIN_IDS = []
    monkeypatch.setattr(alerts, "alert_operators", lambda **kw: True)
    recording = RecordingLimiter(get_limiter())
    monkeypatch.setattr(sender_module, "_limiter", recording)
    emulator.clear_faults()
    close_sender()
    yield recording
    close_sender()


def readers(emulator, make_user, n: int) -> list[TgUser]:
    return [make_user(telegram_id=emulator.user(language_code="en").id, language_code="en") for _ in range(n)]


def run_broadcast(text: str, **fields) -> Broadcast:
    broadcast = Broadcast.objects.create(
        text=text, status=Broadcast.Status.SENDING, started_at=timezone.now(), **fields
    )
    service.run_inline(broadcast_id=broadcast.pk)
    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.Status.DONE
    return broadcast


def test_free_broadcast_sends_take_the_global_bucket_paid_ones_do_not(budget, emulator, make_user):
    users = readers(emulator, make_user, 3)
    run_broadcast("Budget test: a free broadcast")
    free = [keys for keys in budget.reserved if any(key.startswith("chat:") for key in keys)]
    assert sorted(free) == sorted((f"chat:{u.telegram_id}", "global") for u in users)
    assert budget.reserved.count(("broadcast",)) == 3  # its own pace, on top of the global budget
    # A result delivery goes through the same sender and the same global bucket.
    budget.reserved.clear()
    sender_module.get_sender().send_message(users[0].telegram_id, "your result", repeatable=True)
    assert budget.reserved == [(f"chat:{users[0].telegram_id}", "global")]

    budget.reserved.clear()
    run_broadcast("Budget test: a paid broadcast", allow_paid_broadcast=True)
    paid = [keys for keys in budget.reserved if any(key.startswith("chat:") for key in keys)]
    assert sorted(paid) == sorted((f"chat:{u.telegram_id}",) for u in users)
    assert budget.reserved.count(("broadcast:paid",)) == 3


def test_a_broadcast_and_results_together_stay_within_the_global_rate(budget, settings, emulator, make_user):
    """10 messages/s overall: 5 results and a 5-recipient broadcast at BROADCAST_RATE=1000 sent at the
    same time take at least 0.9 s in all (each alone would be done far sooner: the broadcast's pace
    allows all 5 at once, the results alone need 0.4 s)."""
    settings.TELEGRAM_GLOBAL_RATE = 10
    settings.TELEGRAM_GLOBAL_BURST = 1
    sender_module.close_sender()
    users = readers(emulator, make_user, 5)
    results_chat = emulator.user(language_code="en").id
    sender = sender_module.get_sender()
    errors: list[BaseException] = []

    def deliver_results() -> None:
        try:
            for i in range(5):
                sender.send_message(results_chat, f"result {i}", repeatable=True)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    results = threading.Thread(target=deliver_results)
    started = time.monotonic()
    results.start()
    run_broadcast("Budget test: with the results")
    results.join(10)
    assert not errors and not results.is_alive()
    chats = {results_chat, *(u.telegram_id for u in users)}
    times = sorted(c.time for c in emulator.calls("sendMessage") if c.ok and c.chat_id in chats)
    assert len(times) == 10
    # 10 slots 0.1 s apart: the last one at least 0.9 s after the first (a little less for wake-up jitter).
    assert times[-1] - times[0] >= 0.8
    assert time.monotonic() - started >= 0.8
