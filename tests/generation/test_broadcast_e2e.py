"""A broadcast end to end through a REAL Celery worker process (with its beat), to the Bot API
emulator: a segment, a user who blocked the bot (403), flood control (429), pause and resume, and the
worker SIGKILLed mid-broadcast and started again. Nobody gets it twice; everybody but the recipients
whose outcome is unknown (the sends in flight when the worker died) gets it."""

from __future__ import annotations

import time

import pytest

from botapp.models import Broadcast, BroadcastRecipient, TgUser
from botapp.services import broadcasts as service

from .conftest import WORKER_ENV, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
R = BroadcastRecipient.Status
TEXT = "Hello from the e2e broadcast"


def people(emulator, make_user, n: int, language: str, **fields) -> list[TgUser]:
    users = []
    for _ in range(n):
        emu_user = emulator.user(first_name="Reader", language_code=language)
        users.append(make_user(telegram_id=emu_user.id, language_code=language, **fields))
    return users


def got(emulator, user: TgUser) -> int:
    return sum(1 for m in emulator.messages(user.telegram_id) if m.get("text") == TEXT)


def count(broadcast: Broadcast, *statuses: str) -> int:
    return BroadcastRecipient.objects.filter(broadcast=broadcast, status__in=statuses).count()


def test_broadcast_through_the_worker_survives_pause_a_403_a_429_and_a_kill(stack, emulator, make_user):
    audience = people(emulator, make_user, 40, "en")
    others = people(emulator, make_user, 4, "ru")
    banned = people(emulator, make_user, 1, "en", is_banned=True)
    blocked_before = people(emulator, make_user, 1, "en", bot_blocked=True)
    blocker, flooded = audience[0], audience[1]
    emulator.block_bot(blocker.telegram_id, notify=False)
    emulator.fail_next("sendMessage", 429, retry_after=1, chat_id=flooded.telegram_id)
    broadcast = Broadcast.objects.create(text=TEXT, language="en", button_screen="img")

    service.start(broadcast_id=broadcast.pk, by="e2e")  # queued on commit; the worker runs it
    wait_until(lambda: count(broadcast, R.SENT) >= 6, timeout=30, what="the first deliveries")

    # Pause: the runner stops within seconds and nothing more goes out until it is resumed.
    assert service.pause(broadcast_id=broadcast.pk)
    wait_until(
        lambda: not Broadcast.objects.filter(pk=broadcast.pk).exclude(runner_token="").exists(),
        timeout=10,
        what="the runner to let go",
    )
    assert count(broadcast, R.SENDING) == 0
    paused = count(broadcast, R.SENT)
    time.sleep(1.5)  # several beat ticks: a paused broadcast gets no runner
    assert count(broadcast, R.SENT) == paused < len(audience) - 1

    # Resume, then kill the worker while it sends.
    assert service.resume(broadcast_id=broadcast.pk)
    wait_until(lambda: count(broadcast, R.SENT) >= paused + 6, timeout=30, what="sending again")
    stack.kill()
    at_kill = count(broadcast, R.SENT)
    assert at_kill < len(audience) - 1, "killed before the end"
    stack.start()  # beat replaces the dead runner once its lease has expired
    wait_until(
        lambda: Broadcast.objects.get(pk=broadcast.pk).status == Broadcast.Status.DONE,
        timeout=60,
        what=f"the broadcast to finish (worker log: {stack.log_path})",
    )

    broadcast.refresh_from_db()
    states = dict(BroadcastRecipient.objects.filter(broadcast=broadcast).values_list("user_id", "status"))
    assert set(states) == {u.pk for u in audience}  # the segment, without the banned and blocked users
    assert states[blocker.pk] == R.BLOCKED and TgUser.objects.get(pk=blocker.pk).bot_blocked
    assert states[flooded.pk] == R.SENT  # waited out the 429
    assert count(broadcast, R.PENDING, R.SENDING, R.FAILED) == 0
    unknown = [u for u in audience if states[u.pk] == R.UNKNOWN]
    assert len(unknown) <= int(WORKER_ENV["BROADCAST_THREADS"])  # at most the sends in flight at the kill
    for user in audience:
        received = got(emulator, user)
        assert received <= 1, f"user {user.pk} got it {received} times"  # never twice
        if states[user.pk] == R.SENT:
            assert received == 1  # delivered means delivered
        if states[user.pk] == R.BLOCKED:
            assert received == 0
    for user in [*others, *banned, *blocked_before]:
        assert got(emulator, user) == 0
    assert (broadcast.delivered, broadcast.blocked, broadcast.unknown) == (
        len(audience) - 1 - len(unknown), 1, len(unknown),
    )  # fmt: skip
    assert stack.starts >= 2
