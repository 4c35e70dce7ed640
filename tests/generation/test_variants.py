"""Several variants of an image (botapp/engine/variants.py, albums.py), in-process: the engine's steps
run inline against the fake Google (one generateContent per variant, scripted per call with
`queue_scenarios`) and the Bot API emulator. Each ends delivered once as one album with one message of
buttons, and only the share of the variants the user did not get is refunded, exactly once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from botapp import tasks  # noqa: F401  (registers the tasks the engine queues: eager here)
from botapp.callbacks import ResultAction, ResultCb
from botapp.engine import delivery, steps
from botapp.models import GenRequest, TgUser, Transaction, UserBalance, UserSettings
from sandbox.google import Scenario
from sandbox.telegram import button_texts, inline_buttons

from .conftest import make_request, run_to_end

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal
REFUND = Transaction.Kind.REFUND


def media(emulator, chat_id: int, kind: str = "photo") -> list[dict]:
    return [m for m in emulator.messages(chat_id) if kind in m]


def texts(emulator, chat_id: int) -> list[dict]:
    return [m for m in emulator.messages(chat_id) if "text" in m]


def refunds(request: GenRequest) -> list[Transaction]:
    return list(Transaction.objects.filter(gen_request=request, kind=REFUND))


def balance(user) -> Decimal:
    return UserBalance.objects.get(user=user).total


def callback(message: dict, label: str) -> ResultCb | None:
    for button in inline_buttons(message):
        if button.get("text") == label:
            return ResultCb.unpack(button["callback_data"])
    return None


def test_album_of_four_with_one_blocked(engine, tg_user, nano, emulator, fake_google):
    emu_user, user = tg_user(balance=10)
    chat = emu_user.chat_id
    fake_google.queue_scenarios(nano.provider_model_id, [None, Scenario.safety(), None, None])
    request = make_request(user, nano, chat, variants=4)
    assert request.price == D("6.00") and balance(user) == D("4.00")

    done = run_to_end(request.pk)
    assert done.status == "succeeded" and done.delivered_at, (done.error_code, done.error_message)
    assert len(fake_google.requests_for("generateContent")) == 4  # one call per variant
    # The results: three stored variants and one blocked, each with its index.
    assert sorted(item["variant"] for item in done.results) == [0, 1, 2, 3]
    [blocked] = [item for item in done.results if item.get("failed")]
    assert blocked["error_code"] == "safety_blocked" and blocked["reason"] == "IMAGE_SAFETY" and "path" not in blocked
    # Exactly three photos, as one album, the caption on the first; no buttons on the album.
    photos = media(emulator, chat)
    assert len(photos) == 3 and len({p["media_group_id"] for p in photos}) == 1
    assert "a small house by the lake" in photos[0]["caption"] and not any(p.get("reply_markup") for p in photos)
    assert emulator.call_count("sendMediaGroup", chat, ok=True) == 1
    # One message with what happened and the buttons per variant.
    [summary] = [m for m in texts(emulator, chat) if "variants" in m["text"]]
    assert "3 of 4 variants are ready" in summary["text"]
    assert "Blocked by the safety filter: 1" in summary["text"] and "1.5" in summary["text"]
    labels = button_texts(summary)
    for label in ("✏️ Edit 1", "✏️ Edit 3", "🎬 Animate 2", "🔍 Upscale 3", "🔁 Again"):
        assert label in labels, labels
    assert "✏️ Edit 4" not in labels
    edit2 = callback(summary, "✏️ Edit 2")
    assert edit2 is not None and edit2.action == ResultAction.EDIT and done.results[edit2.index]["tg_file_id"]
    assert done.results[edit2.index]["tg_file_id"] == photos[1]["photo"][-1]["file_id"]
    # Money: one partial refund of one share; XP for three shares.
    [row] = refunds(done)
    assert row.operation_key == done.partial_refund_key and row.amount == D("1.50")
    assert done.refunded_variants == 1 and balance(user) == D("5.50")
    assert TgUser.objects.get(pk=user.pk).xp == done.xp_awarded == 45

    # The task again, a duplicate delivery, the sweep's redelivery: nothing more is sent or refunded.
    assert steps.start(request.pk) == "not-claimed"
    GenRequest.objects.filter(pk=request.pk).update(next_poll_at=None)
    assert delivery.deliver(request.pk) is None
    assert len(media(emulator, chat)) == 3 and emulator.call_count("sendMediaGroup", chat) == 1
    assert len(refunds(done)) == 1 and balance(user) == D("5.50")
    call_command("check_ledger")


def test_every_variant_blocked_is_refunded_whole_once(engine, tg_user, nano, emulator, fake_google):
    emu_user, user = tg_user(balance=10)
    fake_google.set_model_scenario(nano.provider_model_id, Scenario.safety())
    request = make_request(user, nano, emu_user.chat_id, variants=3)
    done = run_to_end(request.pk)
    assert done.status == "failed" and done.error_code == "safety_blocked"
    assert len(fake_google.requests_for("generateContent")) == 3
    assert not media(emulator, emu_user.chat_id)
    [row] = refunds(done)
    assert row.operation_key == done.refund_key and row.amount == D("4.50")
    assert balance(user) == D(10) and done.refunded_variants == 0
    [message] = texts(emulator, emu_user.chat_id)
    assert "safety filter" in message["text"] and "4.5" in message["text"]
    assert steps.start(request.pk) == "not-claimed" and len(refunds(done)) == 1
    assert TgUser.objects.get(pk=user.pk).xp == 0


def test_telegram_refusing_one_item_delivers_the_rest(engine, tg_user, nano, emulator, fake_google):
    emu_user, user = tg_user(balance=10)
    chat = emu_user.chat_id
    request = make_request(user, nano, chat, variants=4)
    rule = emulator.refuse_upload(f"-{request.pk}-3.png", "IMAGE_PROCESS_FAILED")
    done = run_to_end(request.pk)
    assert done.status == "succeeded" and done.delivered_at
    assert emulator.call_count("sendMediaGroup", chat, ok=False) == 1  # one bad item refuses the album...
    photos = media(emulator, chat)
    assert len(photos) == 3 and not any(p.get("media_group_id") for p in photos)  # ...the rest one by one
    assert rule.refused == 3  # the album, then variant 3 as a photo and as a document
    [refused] = [i for i in done.results if i.get("refused")]
    assert refused["variant"] == 2 and refused["refused"] == "telegram_refused" and not refused.get("tg_file_id")
    [summary] = [m for m in texts(emulator, chat) if "variants" in m["text"]]
    assert "3 of 4 variants are ready" in summary["text"] and "Telegram did not accept: 1" in summary["text"]
    assert {"✏️ Edit 1", "✏️ Edit 3"} <= set(button_texts(summary)) and "✏️ Edit 4" not in button_texts(summary)
    [row] = refunds(done)
    assert row.operation_key == done.partial_refund_key and row.amount == D("1.50")
    assert balance(user) == D("5.50") and TgUser.objects.get(pk=user.pk).xp == 45
    GenRequest.objects.filter(pk=done.pk).update(next_poll_at=None)
    assert delivery.deliver(done.pk) is None and len(media(emulator, chat)) == 3


def test_blocked_and_refused_variants_share_one_refund(engine, tg_user, nano, emulator, fake_google):
    """One variant blocked by Google, one refused by Telegram: 2 of 4 reach the user, and the two
    shares come back in ONE ledger row."""
    emu_user, user = tg_user(balance=10)
    chat = emu_user.chat_id
    fake_google.queue_scenarios(nano.provider_model_id, [None, Scenario.safety(), None, None])
    request = make_request(user, nano, chat, variants=4)
    # Refuses the album, then the first variant sent alone (as a photo, then as a document).
    emulator.refuse_upload(f"-{request.pk}-", "IMAGE_PROCESS_FAILED", times=3)
    done = run_to_end(request.pk)
    assert done.status == "succeeded" and done.delivered_at
    assert len([i for i in done.results if i.get("failed")]) == 1
    assert len([i for i in done.results if i.get("refused")]) == 1
    assert len(media(emulator, chat)) == 2
    [summary] = [m for m in texts(emulator, chat) if "variants" in m["text"]]
    assert "2 of 4 variants are ready" in summary["text"] and "3" in summary["text"]
    assert "Blocked by the safety filter: 1" in summary["text"] and "Telegram did not accept: 1" in summary["text"]
    [row] = refunds(done)
    assert row.operation_key == done.partial_refund_key and row.amount == D("3.00")
    assert done.refunded_variants == 2 and balance(user) == D("7.00")
    assert TgUser.objects.get(pk=user.pk).xp == done.xp_awarded == 30
    call_command("check_ledger")


def test_only_the_pending_variant_is_retried_after_a_transient_error(engine, tg_user, nano, emulator, fake_google):
    emu_user, user = tg_user(balance=10)
    fake_google.queue_scenarios(nano.provider_model_id, [None, Scenario.error(503), None])
    request = make_request(user, nano, emu_user.chat_id, variants=3)
    steps.start(request.pk)
    waiting = GenRequest.objects.get(pk=request.pk)
    assert waiting.status == "running" and waiting.error_code == "provider_busy"
    assert len([i for i in waiting.results if i.get("path")]) == 2  # the finished ones are kept
    done = run_to_end(request.pk)
    assert done.status == "succeeded" and done.delivered_at
    assert len(fake_google.requests_for("generateContent")) == 4  # 3, then only the one that failed
    assert len(media(emulator, emu_user.chat_id)) == 3 and not refunds(done)
    assert balance(user) == D("5.50")


def test_a_lost_album_answer_never_sends_a_second_album(engine, settings, tg_user, nano, emulator, fake_google):
    settings.TELEGRAM_UPLOAD_TIMEOUT_SECONDS = 1
    emu_user, user = tg_user(balance=10)
    chat = emu_user.chat_id
    emulator.lose_answer_next("sendMediaGroup", mode="reset")
    done = run_to_end(make_request(user, nano, chat, variants=2).pk)
    assert done.status == "succeeded" and done.delivered_at
    assert len(media(emulator, chat)) == 2 and emulator.call_count("sendMediaGroup", chat) == 1
    assert all(i.get("outcome") == "unknown" and not i.get("tg_file_id") for i in done.results)
    [summary] = [m for m in texts(emulator, chat) if "variants" in m["text"]]
    assert f"📥 Get result #{done.pk}" in button_texts(summary)  # sends them from storage on request
    assert not refunds(done)  # they may have arrived: paid
    GenRequest.objects.filter(pk=done.pk).update(next_poll_at=None)
    assert delivery.deliver(done.pk) is None
    assert emulator.call_count("sendMediaGroup", chat) == 1


def test_send_as_file_makes_an_album_of_documents(engine, tg_user, nano, emulator):
    emu_user, user = tg_user(balance=10)
    UserSettings.objects.filter(user=user).update(send_as_file=True)
    done = run_to_end(make_request(user, nano, emu_user.chat_id, variants=2).pk)
    documents = media(emulator, emu_user.chat_id, "document")
    assert len(documents) == 2 and documents[0]["media_group_id"] == documents[1]["media_group_id"]
    assert [i["sent_as"] for i in done.results] == ["document", "document"]


def test_without_a_chat_the_failed_share_is_refunded_at_once(engine, tg_user, nano, fake_google):
    _, user = tg_user(balance=10)
    fake_google.queue_scenarios(nano.provider_model_id, [Scenario.safety(), None])
    done = run_to_end(make_request(user, nano, None, variants=2).pk)
    assert done.status == "succeeded" and done.delivered_at is None
    [row] = refunds(done)
    assert row.operation_key == done.partial_refund_key and row.amount == D("1.50")


def test_past_the_deadline_the_finished_variants_are_delivered(engine, tg_user, nano, emulator, fake_google):
    emu_user, user = tg_user(balance=10)
    fake_google.queue_scenarios(nano.provider_model_id, [None, Scenario.error(503)])
    request = make_request(user, nano, emu_user.chat_id, variants=2)
    steps.start(request.pk)
    GenRequest.objects.filter(pk=request.pk).update(deadline_at=timezone.now(), next_poll_at=timezone.now())
    done = run_to_end(request.pk)
    assert done.status == "succeeded" and done.delivered_at
    assert len(media(emulator, emu_user.chat_id)) == 1  # one left: a photo, not an album
    assert [row.amount for row in refunds(done)] == [D("1.50")]
    [summary] = [m for m in texts(emulator, emu_user.chat_id) if "variants" in m["text"]]
    assert "1 of 2 variants are ready" in summary["text"] and "Could not be made: 1" in summary["text"]
    assert "✏️ Edit" in button_texts(summary)  # one variant: no number


def test_demo_variants_differ(engine, settings, tg_user, nano, emulator):
    settings.GENERATION_PROVIDER_MODE = "demo"
    emu_user, user = tg_user(balance=10)
    done = run_to_end(make_request(user, nano, emu_user.chat_id, variants=3).pk)
    photos = media(emulator, emu_user.chat_id)
    assert done.status == "succeeded" and len(photos) == 3
    assert len({emulator.file_bytes(p) for p in photos}) == 3
