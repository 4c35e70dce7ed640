"""The Telegram sender against the Bot API emulator: rate limits, 429 retry_after, 403 -> bot_blocked,
photo vs document, and the rate limiter itself (in memory, and on Redis when REDIS_URL is set)."""

from __future__ import annotations

import io
import itertools
import os
import time
import uuid

import pytest
from PIL import Image

from botapp.models import TgUser
from botapp.telegram.media import DOCUMENT, PHOTO, VIDEO, choose_method
from botapp.telegram.ratelimit import Bucket, MemoryRateLimiter, RateLimiter, RedisRateLimiter
from botapp.telegram.sender import (
    BotBlocked,
    FileTooLarge,
    RetryLater,
    SenderLimits,
    SendRejected,
    TelegramSender,
    _mark_blocked,
)

MB = 1024 * 1024


def png(size=(64, 48), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, 128 if mode == "L" else (10, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def make_sender(emulator):
    made: list[TelegramSender] = []

    def factory(on_blocked=None, **limits) -> TelegramSender:
        base = {"global_rate": 1000, "global_burst": 100, "chat_rate": 1000, "chat_burst": 100, "aux_rate": 1000}
        sender = TelegramSender(
            token=emulator.token,
            api_url=emulator.base_url,
            limiter=MemoryRateLimiter(),
            limits=SenderLimits(**{**base, **limits}),
            on_blocked=on_blocked,
        )
        made.append(sender)
        return sender

    yield factory
    for sender in made:
        sender.close()
    emulator.clear_faults()


def call_times(emulator, method: str, chat_id: int) -> list[float]:
    return [c.time for c in emulator.calls(method, chat_id) if c.ok]


# --- rate limits ----------------------------------------------------------------------------------------
def test_one_chat_is_paced(make_sender, emulator):
    chat = emulator.user().chat_id
    sender = make_sender(chat_rate=5, chat_burst=1)
    started = time.monotonic()
    for i in range(6):
        sender.send_message(chat, f"message {i}")
    assert time.monotonic() - started >= 0.95  # 6 messages at 5/s: the 6th goes after 1 s
    times = call_times(emulator, "sendMessage", chat)
    assert len(times) == 6
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.15


def test_overall_rate_across_chats(make_sender, emulator):
    chats = [emulator.user().chat_id for _ in range(8)]
    sender = make_sender(global_rate=10, global_burst=1)
    started = time.monotonic()
    for chat in chats:
        sender.send_message(chat, "hello")
    assert time.monotonic() - started >= 0.65  # 8 messages at 10/s


def test_best_effort_calls_are_skipped_not_queued(make_sender, emulator):
    chat = emulator.user().chat_id
    sender = make_sender(chat_rate=1, chat_burst=1)
    assert sender.send_message(chat, "result") is not None
    assert sender.chat_action(chat, "upload_photo") is False  # no slot now: skipped, no waiting
    assert emulator.call_count("sendChatAction", chat) == 0


def test_wait_beyond_budget_raises_retry_later(make_sender, emulator):
    chat = emulator.user().chat_id
    sender = make_sender(chat_rate=0.2, chat_burst=1, max_wait=1)
    sender.send_message(chat, "first")
    with pytest.raises(RetryLater) as exc:
        sender.send_message(chat, "second")  # the next slot is 5 s away
    assert exc.value.retry_in >= 1


# --- Telegram's answers ---------------------------------------------------------------------------------
def test_429_is_retried_after_retry_after(make_sender, emulator):
    chat = emulator.user().chat_id
    sender = make_sender()
    emulator.fail_next("sendMessage", 429, retry_after=1, chat_id=chat)
    started = time.monotonic()
    sent = sender.send_message(chat, "after the flood")
    assert sent is not None and time.monotonic() - started >= 0.95
    assert emulator.call_count("sendMessage", chat, ok=False) == 1
    assert emulator.call_count("sendMessage", chat, ok=True) == 1


def test_long_429_is_handed_back_to_the_task(make_sender, emulator):
    chat = emulator.user().chat_id
    sender = make_sender(max_wait=2)
    emulator.fail_next("sendMessage", 429, retry_after=30, chat_id=chat)
    with pytest.raises(RetryLater) as exc:
        sender.send_message(chat, "x")
    assert exc.value.retry_in == 30
    # ...and the chat's bucket is pushed back, so the next call does not hammer Telegram either
    with pytest.raises(RetryLater):
        sender.send_message(chat, "y")
    assert emulator.call_count("sendMessage", chat) == 1


@pytest.mark.django_db
def test_403_marks_the_user_bot_blocked(make_sender, emulator, make_user):
    emu_user = emulator.user()
    user = make_user(telegram_id=emu_user.id)
    sender = make_sender(on_blocked=_mark_blocked)
    emulator.block_bot(emu_user.chat_id)
    try:
        with pytest.raises(BotBlocked):
            sender.send_message(emu_user.chat_id, "hello?")
    finally:
        emulator.unblock_bot(emu_user.chat_id)
    assert TgUser.objects.get(pk=user.pk).bot_blocked


def test_refused_file_raises_send_rejected(make_sender, emulator):
    chat = emulator.user().chat_id
    sender = make_sender()
    with pytest.raises(SendRejected):
        sender.send_file(chat, PHOTO, b"not an image", filename="x.png")  # IMAGE_PROCESS_FAILED


def test_photo_document_and_video_keep_file_ids(make_sender, emulator):
    from sandbox.google import fake_video

    chat = emulator.user().chat_id
    sender = make_sender()
    photo = sender.send_file(chat, PHOTO, png(), filename="a.png", caption="<b>cap</b>")
    document = sender.send_file(chat, DOCUMENT, png(), filename="a.png")
    video = sender.send_file(chat, VIDEO, fake_video(), filename="v.mp4", width=128, height=72, duration=1)
    assert photo.file_id and document.file_id and video.file_id
    messages = emulator.messages(chat)
    assert messages[0]["photo"][-1]["file_id"] == photo.file_id and messages[0]["caption"] == "cap"
    assert messages[1]["document"]["file_id"] == document.file_id
    assert messages[2]["video"]["file_id"] == video.file_id
    # a kept file_id re-sends without uploading again
    again = sender.send_file(chat, PHOTO, photo.file_id)
    assert again.file_id


def test_download_respects_the_limit(make_sender, emulator):
    sizes = emulator.store_user_photo(png((300, 200)))
    sender = make_sender()
    assert sender.download(sizes[-1]["file_id"], max_bytes=MB)[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileTooLarge):
        sender.download(sizes[-1]["file_id"], max_bytes=10)
    with pytest.raises(SendRejected):
        sender.download("no-such-file", max_bytes=MB)


# --- photo or document --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, PHOTO),
        ({"send_as_file": True}, DOCUMENT),
        ({"size": 11 * MB}, DOCUMENT),  # sendPhoto takes at most 10 MB
        ({"width": 6000, "height": 4001}, DOCUMENT),  # width + height over 10000
        ({"width": 4200, "height": 200}, DOCUMENT),  # sides ratio over 20
        ({"mime_type": "image/gif"}, DOCUMENT),
        ({"kind": "video", "mime_type": "video/mp4"}, VIDEO),
        ({"kind": "video", "mime_type": "video/mp4", "send_as_file": True}, DOCUMENT),
    ],
)
def test_choose_method(kwargs, expected):
    args = {
        "kind": "image",
        "mime_type": "image/png",
        "size": 500_000,
        "width": 1024,
        "height": 1024,
        "send_as_file": False,
        "photo_limit": 10 * MB,
    }
    assert choose_method(**{**args, **kwargs}) == expected


# --- the limiter ----------------------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memory_limiter_books_slots_and_refuses_beyond_budget():
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    chat, overall = Bucket("chat:1", 1.0, 2), Bucket("global", 30.0, 30)
    assert limiter.reserve([chat, overall], 5) == 0  # burst of 2
    assert limiter.reserve([chat, overall], 5) == 0
    assert limiter.reserve([chat, overall], 5) == pytest.approx(1.0)  # booked for t+1
    assert limiter.reserve([chat, overall], 0.5) is None  # t+2 is beyond the budget: nothing booked
    assert limiter.reserve([chat, overall], 5) == pytest.approx(2.0)
    limiter.penalize(chat, 10)
    assert limiter.reserve([chat], 60) == pytest.approx(10.0, abs=0.01)  # not before retry_after


@pytest.mark.redis
def test_redis_limiter_is_shared_between_instances():
    url = os.environ["REDIS_URL"]
    prefix = f"test:rl:{uuid.uuid4().hex}:"
    a, b = RedisRateLimiter(url, prefix=prefix), RedisRateLimiter(url, prefix=prefix)
    chat = Bucket("chat:1", 2.0, 1)
    try:
        assert a.reserve([chat], 5) == 0
        wait = b.reserve([chat], 5)  # another process sees the same bucket
        assert wait == pytest.approx(0.5, abs=0.05)
        assert a.reserve([chat], 0.1) is None
        b.penalize(chat, 3)
        assert a.reserve([chat], 10) == pytest.approx(3.0, abs=0.1)
    finally:
        a._redis.delete(*(a._redis.keys(prefix + "*") or [prefix + "none"]))


class _CountingLimiter(RateLimiter):
    """A shared limiter (not the in-process one) that always has a slot, counting how often it is asked."""

    def __init__(self) -> None:
        self.asked = 0

    def reserve(self, buckets, max_wait):
        self.asked += 1
        return 0.0

    def penalize(self, bucket, seconds):
        pass


def test_best_effort_calls_beyond_this_processs_aux_budget_never_ask_the_shared_limiter(emulator):
    """A thousand videos in flight ask for a chat action on every poll: once this process alone has
    used the aux budget up, the shared one is used up too, so the call is skipped without a round trip."""
    chat = emulator.user().chat_id
    shared = _CountingLimiter()
    limits = {"global_rate": 1000, "global_burst": 100, "chat_rate": 1000, "chat_burst": 100, "aux_rate": 3}
    sender = TelegramSender(
        token=emulator.token, api_url=emulator.base_url, limiter=shared, limits=SenderLimits(**limits)
    )
    try:
        sent = [sender.chat_action(chat, "record_video") for _ in range(10)]
        assert sent == [True] * 3 + [False] * 7  # the aux burst is 3
        assert shared.asked == 3 and emulator.call_count("sendChatAction", chat) == 3
        assert sender.send_message(chat, "the result") is not None  # messages are not held back by it
        assert shared.asked == 4
    finally:
        sender.close()


def test_a_lone_429_slows_its_chat_and_a_second_chats_slows_everyone(make_sender, emulator):
    """One chat's flood control is that chat's; 429s in two chats within a second are the bot's
    overall limit, and then every chat waits a moment (here: longer than the wait budget)."""
    flooded, other, third = (emulator.user().chat_id for _ in range(3))
    sender = make_sender(max_wait=0.5)
    emulator.fail_next("sendMessage", 429, retry_after=2, chat_id=flooded)
    with pytest.raises(RetryLater):
        sender.send_message(flooded, "flood control: 2 s, over the wait budget")
    started = time.monotonic()
    assert sender.send_message(other, "not held back") is not None
    assert time.monotonic() - started < 0.4

    emulator.fail_next("sendMessage", 429, retry_after=2, chat_id=other)
    with pytest.raises(RetryLater):
        sender.send_message(other, "a second chat's flood within a second: the overall limit")
    with pytest.raises(RetryLater):
        sender.send_message(third, "everyone waits a moment")
    assert emulator.call_count("sendMessage", third) == 0


def test_one_chats_flood_control_does_not_hold_other_chats_back(make_sender, emulator):
    """The flooded chat's retry waits for its chat; a booking made at once would have taken the
    global slot a second ahead and held every other send back that long."""
    import threading

    flooded, other = emulator.user().chat_id, emulator.user().chat_id
    sender = make_sender(global_rate=50, global_burst=5)
    emulator.fail_next("sendMessage", 429, retry_after=1, chat_id=flooded)
    retrying = threading.Thread(target=sender.send_message, args=(flooded, "after its flood control"))
    retrying.start()
    time.sleep(0.2)  # the 429 is in, the retry is waiting
    started = time.monotonic()
    assert sender.send_message(other, "not held back") is not None
    assert time.monotonic() - started < 0.5
    retrying.join(5)
    assert emulator.call_count("sendMessage", flooded, ok=True) == 1
