"""Broadcasts sent in this process (the runner of botapp.services.broadcasts, its threads, the real
sender) to the Bot API emulator over HTTP: outcomes per recipient (sent, 403, 400, 429, a lost
answer), the photo uploaded once, paid broadcasts, the preview to ADMIN_IDS, pause / cancel, a runner
that died mid-send, and the operators' alert when it ends (once)."""

from __future__ import annotations

import io
import threading
import time
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from botapp.models import Broadcast, BroadcastRecipient, TgUser
from botapp.services import alerts
from botapp.services import broadcasts as service

from .conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
R = BroadcastRecipient.Status


@pytest.fixture
def bcast(settings, emulator, tmp_path, monkeypatch):
    """The sender pointed at the emulator, fast limits; the session's worker process (if any) stopped
    (its beat would run these broadcasts too); runners are not queued: tests run them here."""
    from botapp.telegram.sender import close_sender

    from .conftest import _WORKERS

    for process in _WORKERS:
        process.stop()
    settings.BOT_TOKEN = emulator.token
    settings.TELEGRAM_API_URL = emulator.base_url
    settings.MEDIA_ROOT = str(tmp_path)
    settings.TELEGRAM_GLOBAL_RATE = settings.TELEGRAM_CHAT_RATE = 1000
    settings.TELEGRAM_MAX_WAIT_SECONDS = 3
    settings.TELEGRAM_REQUEST_TIMEOUT_SECONDS = 2
    settings.BROADCAST_RATE = 500
    settings.BROADCAST_THREADS = 4
    settings.BROADCAST_LEASE_SECONDS = 3
    settings.ADMIN_IDS = []
    dispatched: list[int] = []
    monkeypatch.setattr(service, "_dispatch", lambda broadcast_id, countdown=None: dispatched.append(broadcast_id))
    alerted: list[dict] = []
    monkeypatch.setattr(alerts, "alert_operators", lambda **kw: alerted.append(kw) or True)
    emulator.clear_faults()
    close_sender()
    yield type("Ctx", (), {"dispatched": dispatched, "alerted": alerted})
    emulator.clear_faults()
    close_sender()


def people(emulator, make_user, n: int, **fields) -> list[TgUser]:
    users = []
    for _ in range(n):
        emu_user = emulator.user(first_name="Reader", language_code=fields.get("language_code", "en"))
        users.append(make_user(telegram_id=emu_user.id, **{"language_code": "en", **fields}))
    return users


def texts(emulator, user: TgUser) -> list[dict]:
    return [m for m in emulator.messages(user.telegram_id) if "Hello" in (m.get("text") or m.get("caption") or "")]


def states(broadcast: Broadcast) -> dict[int, str]:
    return dict(BroadcastRecipient.objects.filter(broadcast=broadcast).values_list("user_id", "status"))


def png(size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_every_outcome_once_and_the_operators_are_told_once(bcast, emulator, make_user):
    users = people(emulator, make_user, 8)
    blocked, refused, flooded, lost = users[:4]
    emulator.block_bot(blocked.telegram_id, notify=False)
    emulator.fail_next("sendMessage", 400, description="Bad Request: chat not found", chat_id=refused.telegram_id)
    emulator.fail_next("sendMessage", 429, retry_after=1, chat_id=flooded.telegram_id)
    emulator.lose_answer_next("sendMessage", mode="reset", chat_id=lost.telegram_id)
    broadcast = Broadcast.objects.create(text="<b>Hello</b> &amp; welcome", button_screen="top")

    service.start(broadcast_id=broadcast.pk)
    assert bcast.dispatched == [broadcast.pk]
    service.run_inline(broadcast_id=broadcast.pk)

    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.Status.DONE
    got = states(broadcast)
    assert got[blocked.pk] == R.BLOCKED and TgUser.objects.get(pk=blocked.pk).bot_blocked
    assert got[refused.pk] == R.FAILED
    assert "chat not found" in BroadcastRecipient.objects.get(broadcast=broadcast, user=refused).error
    assert got[flooded.pk] == R.SENT  # waited out the 429, then sent
    assert got[lost.pk] == R.UNKNOWN  # it arrived, but the answer was lost: never sent again
    assert [u.pk for u in users if got[u.pk] == R.SENT] == [u.pk for u in users[2:] if u is not lost]
    for user in users:
        expected = 1 if got[user.pk] in (R.SENT, R.UNKNOWN) else 0
        assert len(texts(emulator, user)) == expected, user
    message = texts(emulator, users[5])[0]
    assert message["text"] == "Hello & welcome"
    button = message["reply_markup"]["inline_keyboard"][0][0]
    assert (button["text"], button["callback_data"]) == ("💳 Top up", "sc:top")  # the user's language
    assert (broadcast.delivered, broadcast.blocked, broadcast.failed, broadcast.unknown, broadcast.total) == (
        5, 1, 1, 1, 8,
    )  # fmt: skip
    assert [a["key"] for a in bcast.alerted] == ["broadcast_finished"]
    assert bcast.alerted[0]["delivered"] == 5 and bcast.alerted[0]["unknown"] == 1

    service.run_inline(broadcast_id=broadcast.pk)  # nothing left: no second send, no second alert
    assert len(bcast.alerted) == 1
    assert sum(len(texts(emulator, u)) for u in users) == 6


def test_segments_decide_who_gets_it(bcast, emulator, make_user):
    english = people(emulator, make_user, 3)
    russian = people(emulator, make_user, 2, language_code="ru")
    banned = people(emulator, make_user, 1, is_banned=True)[0]
    broadcast = Broadcast.objects.create(text="Hello", language="en")
    service.start(broadcast_id=broadcast.pk)
    service.run_inline(broadcast_id=broadcast.pk)
    assert set(states(broadcast)) == {u.pk for u in english}
    assert all(len(texts(emulator, u)) == 1 for u in english)
    assert all(texts(emulator, u) == [] for u in [*russian, banned])


def test_a_photo_is_uploaded_once_then_sent_by_file_id(bcast, emulator, make_user):
    users = people(emulator, make_user, 5)
    broadcast = Broadcast(text="Hello with a picture", button_url="https://example.com/x", button_text="Open")
    broadcast.photo.save("promo.png", ContentFile(png()), save=True)
    service.start(broadcast_id=broadcast.pk)
    service.run_inline(broadcast_id=broadcast.pk)
    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.Status.DONE and broadcast.delivered == 5
    assert broadcast.photo_file_id
    photos = emulator.calls("sendPhoto")
    assert len(photos) == 5
    reused = [c for c in photos if c.params.get("photo") == broadcast.photo_file_id]
    assert len(reused) == 4  # one upload, four by file_id
    for user in users:
        (message,) = texts(emulator, user)
        assert message["caption"] == "Hello with a picture" and "photo" in message


def test_paid_broadcast_asks_telegram_for_it(bcast, settings, emulator, make_user):
    people(emulator, make_user, 3)
    broadcast = Broadcast.objects.create(text="Hello, paid", allow_paid_broadcast=True)
    service.start(broadcast_id=broadcast.pk)
    service.run_inline(broadcast_id=broadcast.pk)
    calls = [c for c in emulator.calls("sendMessage") if c.params.get("text") == "Hello, paid"]
    assert len(calls) == 3
    assert all(str(c.params.get("allow_paid_broadcast")).lower() == "true" for c in calls)
    free = Broadcast.objects.create(text="Hello, free")
    service.start(broadcast_id=free.pk)
    service.run_inline(broadcast_id=free.pk)
    free_calls = [c for c in emulator.calls("sendMessage") if c.params.get("text") == "Hello, free"]
    assert len(free_calls) == 3 and all("allow_paid_broadcast" not in c.params for c in free_calls)


def test_preview_goes_to_the_operators_only(bcast, settings, emulator, make_user):
    readers = people(emulator, make_user, 2)
    operator = emulator.user(first_name="Operator", language_code="en")
    stranger = emulator.user(first_name="Blocked operator")
    emulator.block_bot(stranger.id, notify=False)
    settings.ADMIN_IDS = [operator.id, stranger.id]
    settings.LANGUAGE_CODE = "en"
    broadcast = Broadcast.objects.create(text="<i>Hello</i>, preview", button_screen="main")
    result = service.preview(broadcast_id=broadcast.pk)
    assert result.sent == [operator.id] and list(result.failed) == [stranger.id]
    (message,) = [m for m in emulator.messages(operator.id) if m.get("text") == "Hello, preview"]
    assert message["reply_markup"]["inline_keyboard"][0][0]["text"] == "🏠 Main menu"
    assert all(texts(emulator, u) == [] for u in readers)
    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.Status.DRAFT  # a preview starts nothing


def test_a_row_left_sending_by_a_dead_runner_is_unknown_and_not_resent(bcast, emulator, make_user):
    users = people(emulator, make_user, 4)
    broadcast = Broadcast.objects.create(text="Hello again")
    service.start(broadcast_id=broadcast.pk)
    # A runner that prepared the rows, claimed one, and died (its lease expired).
    Broadcast.objects.filter(pk=broadcast.pk).update(runner_token="dead", runner_until=timezone.now())
    assert service._take(broadcast.pk, "first")
    service._prepare(Broadcast.objects.get(pk=broadcast.pk), "first", threading.Event())
    BroadcastRecipient.objects.filter(broadcast=broadcast, user=users[0]).update(status=R.SENDING, claim_token="first")
    Broadcast.objects.filter(pk=broadcast.pk).update(runner_until=timezone.now() - timedelta(seconds=1))

    service.run_inline(broadcast_id=broadcast.pk)
    got = states(broadcast)
    assert got[users[0].pk] == R.UNKNOWN
    assert texts(emulator, users[0]) == []  # never sent blindly
    assert all(got[u.pk] == R.SENT and len(texts(emulator, u)) == 1 for u in users[1:])
    assert Broadcast.objects.get(pk=broadcast.pk).status == Broadcast.Status.DONE


def test_a_live_runner_is_not_doubled(bcast, emulator, make_user):
    people(emulator, make_user, 2)
    broadcast = Broadcast.objects.create(text="Hello")
    service.start(broadcast_id=broadcast.pk)
    Broadcast.objects.filter(pk=broadcast.pk).update(runner_token="alive", runner_until=timezone.now() + timedelta(60))
    assert service.run(broadcast_id=broadcast.pk) is None
    assert not BroadcastRecipient.objects.filter(broadcast=broadcast).exists()
    assert service.tick() == {"started": 0, "dispatched": 0}


def test_pause_resume_and_cancel_stop_a_running_broadcast_within_seconds(bcast, settings, emulator, make_user):
    users = people(emulator, make_user, 40)
    settings.BROADCAST_RATE = 10
    broadcast = Broadcast.objects.create(text="Hello, slowly")
    service.start(broadcast_id=broadcast.pk)

    def sent() -> int:
        return BroadcastRecipient.objects.filter(broadcast=broadcast, status=R.SENT).count()

    runner = threading.Thread(target=service.run, kwargs={"broadcast_id": broadcast.pk})
    runner.start()
    wait_until(lambda: sent() >= 3, timeout=10, what="the first sends")
    assert service.pause(broadcast_id=broadcast.pk)
    runner.join(5)
    assert not runner.is_alive(), "the runner stops within seconds of a pause"
    paused_at = sent()
    time.sleep(0.5)
    assert sent() == paused_at < len(users)
    assert BroadcastRecipient.objects.filter(broadcast=broadcast, status=R.SENDING).count() == 0
    assert not service.pause(broadcast_id=broadcast.pk)  # already paused

    assert service.resume(broadcast_id=broadcast.pk) and bcast.dispatched[-1] == broadcast.pk
    runner = threading.Thread(target=service.run, kwargs={"broadcast_id": broadcast.pk})
    runner.start()
    wait_until(lambda: sent() >= paused_at + 3, timeout=10, what="sending again")
    assert service.cancel(broadcast_id=broadcast.pk)
    runner.join(5)
    assert not runner.is_alive(), "the runner stops within seconds of a cancel"
    final = sent()
    time.sleep(0.5)
    assert sent() == final < len(users)
    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.Status.CANCELLED and broadcast.delivered == final
    assert [a["key"] for a in bcast.alerted] == ["broadcast_cancelled"]
    assert not service.resume(broadcast_id=broadcast.pk) and not service.cancel(broadcast_id=broadcast.pk)
    assert service.run(broadcast_id=broadcast.pk) is None  # a cancelled broadcast is never picked up
    assert sum(len(texts(emulator, u)) for u in users) == final
