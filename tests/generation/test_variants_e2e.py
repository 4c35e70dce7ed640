"""Several variants end to end through a REAL Celery worker process, the fake Google (one
generateContent per variant, scripted per call) and the Bot API emulator: an album of the kept
variants, one message with the buttons, and exactly one refund of what the user did not get."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django.core.management import call_command

from botapp.models import GenRequest, TgUser, Transaction, UserBalance
from sandbox.google import Scenario
from sandbox.telegram import button_texts

from .conftest import wait_until
from .test_worker_e2e import create, status_message, wait_finished

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
D = Decimal


def photos(emulator, chat_id: int) -> list[dict]:
    return [m for m in emulator.messages(chat_id) if "photo" in m]


def summaries(emulator, chat_id: int) -> list[dict]:
    return [m for m in emulator.messages(chat_id) if "variants" in m.get("text", "")]


def refund_rows(request: GenRequest) -> list[Transaction]:
    return list(Transaction.objects.filter(gen_request=request, kind=Transaction.Kind.REFUND))


def test_album_of_four_with_the_second_blocked(stack, tg_user, nano, emulator, fake_google):
    from botapp import tasks

    emu_user, user = tg_user(balance=10)
    chat = emu_user.chat_id
    fake_google.queue_scenarios(nano.provider_model_id, [None, Scenario.safety(), None, None])
    status_id = status_message(emulator, chat)
    request = create(user, nano, chat, status_id, variants=4)
    assert request.price == D("6.00")

    done = wait_finished(request.pk)
    assert done.status == "succeeded", (done.error_code, done.error_message)
    assert len(fake_google.requests_for("generateContent")) == 4
    album = photos(emulator, chat)
    assert len(album) == 3 and len({p["media_group_id"] for p in album}) == 1
    assert emulator.call_count("sendMediaGroup", chat) == 1
    [summary] = summaries(emulator, chat)
    assert "3 of 4 variants are ready" in summary["text"] and "Blocked by the safety filter: 1" in summary["text"]
    assert {"✏️ Edit 1", "✏️ Edit 2", "✏️ Edit 3", "🔍 Upscale 2"} <= set(button_texts(summary))
    [row] = refund_rows(done)
    assert row.operation_key == done.partial_refund_key and row.amount == D("1.50")
    assert UserBalance.objects.get(user=user).balance == D("5.50")
    assert TgUser.objects.get(pk=user.pk).xp == 45
    wait_until(lambda: emulator.is_deleted(chat, status_id), timeout=5, what="the status message to go")

    # The tasks again (a redelivered message, a retry, the sweep): no second album, refund or call.
    for _ in range(2):
        tasks.run_generation.delay(request.pk)
        tasks.deliver_generation.delay(request.pk, None)
    wait_until(
        lambda: not GenRequest.objects.filter(pk=request.pk, next_poll_at__isnull=False).exists(),
        timeout=5,
        what="the duplicates to settle",
    )
    time.sleep(1.5)  # let the duplicate tasks run (they must do nothing)
    assert emulator.call_count("sendMediaGroup", chat) == 1 and len(photos(emulator, chat)) == 3
    assert len(summaries(emulator, chat)) == 1 and len(refund_rows(done)) == 1
    assert len(fake_google.requests_for("generateContent")) == 4
    assert UserBalance.objects.get(user=user).balance == D("5.50")
    call_command("check_ledger")


def test_every_variant_blocked_is_refunded_once(stack, tg_user, nano, emulator, fake_google):
    emu_user, user = tg_user(balance=10)
    fake_google.set_model_scenario(nano.provider_model_id, Scenario.safety())
    done = wait_finished(create(user, nano, emu_user.chat_id, variants=4).pk)
    assert done.status == "failed" and done.error_code == "safety_blocked"
    assert not photos(emulator, emu_user.chat_id) and not summaries(emulator, emu_user.chat_id)
    [row] = refund_rows(done)
    assert row.operation_key == done.refund_key and row.amount == D("6.00")
    assert UserBalance.objects.get(user=user).balance == D(10)
    wait_until(
        lambda: any("safety filter" in m.get("text", "") for m in emulator.messages(emu_user.chat_id)),
        timeout=5,
        what="the failure message",
    )


def test_telegram_refuses_one_album_item(stack, tg_user, nano, emulator, fake_google):
    emu_user, user = tg_user(balance=10)
    chat = emu_user.chat_id
    request = create(user, nano, chat, variants=3, prompt="three foxes [[latency:0.3]]")
    emulator.refuse_upload(f"-{request.pk}-2.png", "PHOTO_INVALID_DIMENSIONS")
    done = wait_finished(request.pk)
    assert done.status == "succeeded"
    assert emulator.call_count("sendMediaGroup", chat, ok=False) == 1
    assert len(photos(emulator, chat)) == 2
    [summary] = summaries(emulator, chat)
    assert "2 of 3 variants are ready" in summary["text"] and "Telegram did not accept: 1" in summary["text"]
    [row] = refund_rows(done)
    assert row.operation_key == done.partial_refund_key and row.amount == D("1.50")
    assert UserBalance.objects.get(user=user).balance == D("7.00")


def test_worker_killed_during_the_variants_is_resumed_without_a_second_charge(
    stack, tg_user, nano, emulator, fake_google
):
    emu_user, user = tg_user(balance=10)
    request = create(user, nano, emu_user.chat_id, variants=2, prompt="slow twins [[latency:4]]")
    wait_until(lambda: fake_google.requests_for("generateContent"), timeout=10, what="the Google calls")
    stack.kill()
    assert GenRequest.objects.get(pk=request.pk).status == "running"
    stack.start()
    done = wait_finished(request.pk, timeout=40)
    assert done.status == "succeeded", (done.error_code, done.error_message)
    assert len(photos(emulator, emu_user.chat_id)) == 2 and emulator.call_count("sendMediaGroup", emu_user.chat_id) == 1
    assert not refund_rows(done)
    assert Transaction.objects.filter(gen_request=done, kind=Transaction.Kind.CHARGE).count() == 1
    assert UserBalance.objects.get(user=user).balance == D("7.00")
