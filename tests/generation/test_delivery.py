"""A paid result is never sent twice, and never lost (botapp/engine/delivery.py).

Telegram accepts an upload, but the answer never reaches the worker: it times out, the connection is
reset, or the worker is SIGKILLed before it saves its progress. In each case the photo is in the chat
exactly once, the user gets a "your result #N is ready" notice whose button sends it on request, and
nothing is refunded (the result exists).
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from botapp.callbacks import HistoryAction, HistoryCb
from botapp.engine import delivery
from botapp.models import GenRequest, Transaction, UserBalance
from sandbox.telegram import inline_buttons

from .conftest import make_request, run_to_end, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal


def photos(emulator, chat_id: int) -> list[dict]:
    return [m for m in emulator.messages(chat_id) if "photo" in m]


def notices(emulator, chat_id: int, request_id: int) -> list[dict]:
    data = HistoryCb(action=HistoryAction.RESEND, request_id=request_id).pack()
    return [
        m
        for m in emulator.messages(chat_id)
        if any(button.get("callback_data") == data for button in inline_buttons(m))
    ]


def assert_sent_once_with_notice(emulator, chat_id: int, request: GenRequest) -> None:
    assert len(photos(emulator, chat_id)) == 1, "the photo reached the chat exactly once"
    [notice] = notices(emulator, chat_id, request.pk)
    assert f"#{request.pk}" in notice["text"] and "ready" in notice["text"]
    assert request.status == "succeeded" and request.delivered_at is not None
    assert request.refunded_at is None
    assert not Transaction.objects.filter(gen_request=request, kind=Transaction.Kind.REFUND).exists()
    item = request.results[0]
    assert item["send_started_at"] and not item.get("tg_file_id")


@pytest.mark.parametrize("mode", ["hang", "reset"])
def test_upload_accepted_but_answer_lost_is_not_sent_again(engine, settings, tg_user, nano, emulator, mode):
    settings.TELEGRAM_UPLOAD_TIMEOUT_SECONDS = 1
    emu_user, user = tg_user(balance=10)
    emulator.lose_answer_next("sendPhoto", mode=mode, seconds=3)
    done = run_to_end(make_request(user, nano, emu_user.chat_id).pk)
    assert_sent_once_with_notice(emulator, emu_user.chat_id, done)
    assert UserBalance.objects.get(user=user).balance == D(10) - nano.price

    # A duplicate delivery task, or the sweep, sends nothing more.
    GenRequest.objects.filter(pk=done.pk).update(next_poll_at=None)
    assert delivery.deliver(done.pk) is None
    assert len(photos(emulator, emu_user.chat_id)) == 1
    assert len(notices(emulator, emu_user.chat_id, done.pk)) == 1


def test_an_interrupted_upload_found_later_gets_the_notice_only(engine, settings, tg_user, nano, emulator):
    """What the next attempt sees after a worker died mid-upload: the mark without a file_id."""
    from botapp.engine import common
    from botapp.engine import results as engine_results
    from botapp.providers import MediaItem, ProviderResult
    from botapp.services.generation import GenerationService

    from .test_worker_e2e import png

    emu_user, user = tg_user(balance=10)
    request = make_request(user, nano, emu_user.chat_id)
    GenerationService.mark_running(request_id=request.pk)
    results, _ = engine_results.store_media(
        common.load(request.pk), ProviderResult(media=[MediaItem("image/png", png())])
    )
    results[0]["send_started_at"] = timezone.now().isoformat()
    GenerationService.mark_succeeded(request_id=request.pk, results=results)

    settings.TELEGRAM_MAX_WAIT_SECONDS = 1
    emulator.fail_next("sendMessage", 429, retry_after=2)  # the notice is rescheduled, never dropped
    retry_in = delivery.deliver(request.pk)
    assert retry_in and not notices(emulator, emu_user.chat_id, request.pk)
    time.sleep(2.1)  # Telegram's flood wait
    GenRequest.objects.filter(pk=request.pk).update(next_poll_at=timezone.now())
    assert delivery.deliver(request.pk) is None
    done = GenRequest.objects.get(pk=request.pk)
    assert not photos(emulator, emu_user.chat_id)  # never uploaded blindly
    assert len(notices(emulator, emu_user.chat_id, request.pk)) == 1
    assert done.delivered_at and done.refunded_at is None


def test_definite_refusals_are_still_retried_then_sent_once(engine, settings, tg_user, nano, emulator):
    """A 429 means "not sent": the delivery is retried, and the photo arrives once."""
    settings.TELEGRAM_MAX_WAIT_SECONDS = 1
    emu_user, user = tg_user(balance=10)
    emulator.fail_next("sendPhoto", 429, retry_after=2)  # longer than the wait budget: rescheduled
    request = make_request(user, nano, emu_user.chat_id)
    run_to_end(request.pk)
    pending = GenRequest.objects.get(pk=request.pk)
    assert pending.status == "succeeded" and pending.delivered_at is None
    assert "send_started_at" not in pending.results[0]  # the mark is cleared: nothing was sent
    time.sleep(2.1)
    GenRequest.objects.filter(pk=request.pk).update(next_poll_at=timezone.now())
    assert delivery.deliver(request.pk) is None
    done = GenRequest.objects.get(pk=request.pk)
    assert done.delivered_at and done.results[0]["tg_file_id"]
    assert len(photos(emulator, emu_user.chat_id)) == 1 and not notices(emulator, emu_user.chat_id, done.pk)


def test_grace_period_never_refunds_a_result_that_may_have_arrived(engine, settings, tg_user, nano, emulator):
    settings.TELEGRAM_UPLOAD_TIMEOUT_SECONDS = 1
    emu_user, user = tg_user(balance=10)
    emulator.lose_answer_next("sendPhoto", mode="hang", seconds=3)
    emulator.fail_next("sendMessage", 500, times=50)  # the notice cannot get through either
    request = make_request(user, nano, emu_user.chat_id)
    run_to_end(request.pk)
    pending = GenRequest.objects.get(pk=request.pk)
    assert pending.delivered_at is None and pending.results[0].get("outcome") == "unknown"
    GenRequest.objects.filter(pk=request.pk).update(
        finished_at=timezone.now() - timedelta(hours=2), next_poll_at=timezone.now()
    )
    delivery.deliver(request.pk)  # past the grace period: would be refunded if nothing had been sent
    done = GenRequest.objects.get(pk=request.pk)
    assert done.status == "succeeded" and done.delivered_at and done.refunded_at is None
    assert len(photos(emulator, emu_user.chat_id)) == 1


@pytest.mark.slow
def test_worker_killed_after_the_upload_sends_a_notice_not_a_second_photo(stack, tg_user, nano, emulator):
    """A real Celery worker is SIGKILLed while Telegram holds the answer to an upload it accepted."""
    emu_user, user = tg_user(balance=10)
    emulator.lose_answer_next("sendPhoto", mode="hang", seconds=20)
    request = make_request(user, nano, emu_user.chat_id)
    wait_until(lambda: photos(emulator, emu_user.chat_id), timeout=20, what="the upload to reach Telegram")
    stack.kill()
    interrupted = GenRequest.objects.get(pk=request.pk)
    assert interrupted.status == "succeeded" and interrupted.delivered_at is None
    assert interrupted.results[0]["send_started_at"] and not interrupted.results[0].get("tg_file_id")

    stack.start()
    # The dead worker's delivery claim expires (minutes in production): the sweep takes over.
    GenRequest.objects.filter(pk=request.pk).update(next_poll_at=timezone.now() - timedelta(seconds=1))
    done = wait_until(
        lambda: GenRequest.objects.filter(pk=request.pk, delivered_at__isnull=False).first(),
        timeout=30,
        what="the sweep to finish the delivery",
    )
    assert_sent_once_with_notice(emulator, emu_user.chat_id, done)
    assert json.dumps(done.results).count("tg_file_id") == 0
