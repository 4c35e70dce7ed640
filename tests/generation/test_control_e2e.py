"""Control while it runs, end to end: a user in the Bot API emulator drives the real bot (aiogram,
polling the emulator), a REAL Celery worker process runs the generations against the fake Google.

- the status message: the place in the queue and the wait, Refresh, Cancel;
- cancel while queued (the worker is stopped: the task waits in the broker, and the restarted
  worker drops it), cancel after the worker's claim and before Google is asked (the worker held by a
  slow download of the input photo), cancel refused once the request is at Google (a slow Veo
  operation), cancel after the end; a forged press for someone else's request is "outdated";
- a retired model: Google's 404 -> the user's "model unavailable" message and refund, the model
  paused, one alert to the operator, the model no longer offered or accepted.

Each checks the balance and the ledger: one charge, at most one refund, nothing delivered after a cancel.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from botapp import bridge
from botapp.models import AIModel, GenRequest, Transaction, UserBalance
from sandbox.telegram import button_texts, sample_image
from tests.bot.conftest import BotRunner, Chat, fund, has_buttons, started, text_has, text_of
from tests.bot.test_generation import image_confirmation, image_options

from .conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
D = Decimal
QUEUE_BUTTONS = ["🔄 Обновить", "❌ Отменить"]
MENU_ONLY = ["🏠 Меню"]


@pytest.fixture
def bot(stack, emulator, settings) -> Iterator[BotRunner]:
    """Our dispatcher polling the session's emulator (the one the worker sends through)."""
    settings.THROTTLE_RATE = 0
    settings.BOT_USERNAME = ""
    settings.MAX_INPUT_IMAGE_BYTES = 10 * 1024 * 1024
    bridge.clear_caches()
    # Updates of earlier tests that no bot was polling for are not ours.
    httpx.post(f"{emulator.base_url}/bot{emulator.token}/deleteWebhook", json={"drop_pending_updates": True})
    prefix = f"test-control-{uuid.uuid4().hex[:12]}"
    runner = BotRunner(emulator, redis_url=os.environ.get("REDIS_URL", ""), prefix=prefix).start()
    yield runner
    runner.stop()
    bridge.clear_caches()


@pytest.fixture
def chat_of(emulator, bot):
    def make(first_name: str = "Anna") -> Chat:
        return Chat(emulator, emulator.user(first_name=first_name, language_code="ru"))

    return make


def the_request(chat: Chat) -> GenRequest:
    return wait_until(
        lambda: GenRequest.objects.filter(user__telegram_id=chat.id).order_by("-pk").first(),
        what="the request to be created",
    )


def ledger(request: GenRequest) -> list[tuple[str, Decimal]]:
    rows = Transaction.objects.filter(gen_request=request).order_by("pk").values_list("kind", "amount")
    return [(kind, abs(amount)) for kind, amount in rows]


def balance(chat: Chat) -> Decimal:
    return UserBalance.objects.get(user__telegram_id=chat.id).total


def press_generate(chat: Chat, card: dict) -> dict:
    """Generate -> the new status message (the place in the queue, Refresh / Cancel)."""
    return chat.press(card, "Создать", lambda m: m["message_id"] != card["message_id"] and "в очереди" in text_of(m))


def cancel_data(chat: Chat, status: dict) -> str:
    return next(b["callback_data"] for b in status["reply_markup"]["inline_keyboard"][0] if "Отменить" in b["text"])


def worker_logged(stack, text: str, timeout: float = 20.0) -> None:
    wait_until(lambda: text in stack.log_path.read_text(errors="replace"), timeout=timeout, what=f"worker log {text!r}")


# --- cancel while queued ---------------------------------------------------------------------------------------
def test_queue_position_refresh_and_cancel_while_queued(stack, chat_of, emulator, fake_google):
    anna, ben = chat_of("Anna"), chat_of("Ben")
    for chat in (anna, ben):
        started(chat)
        fund(chat.id, 10)
    stack.stop()  # no worker: the requests wait in the broker
    anna_card, ben_card = image_confirmation(anna), image_confirmation(ben)

    anna_status = press_generate(anna, anna_card)
    assert "Вы следующий" in text_of(anna_status) and button_texts(anna_status) == QUEUE_BUTTONS
    first = the_request(anna)
    ben_status = press_generate(ben, ben_card)
    assert "Место в очереди: 2" in text_of(ben_status) and "до результата" in text_of(ben_status)
    second = the_request(ben)
    assert first.status_message_id == anna_status["message_id"]
    assert wait_until(lambda: GenRequest.objects.filter(pk=second.pk, status="queued").exists())

    # Ben forges Anna's cancel button on his own message: it reaches only his own requests.
    forged = ben.press_expect_answer(ben_status, data=cancel_data(anna, anna_status))
    assert "устарела" in forged["text"]
    assert GenRequest.objects.get(pk=first.pk).status == "queued"

    # Anna cancels: the message says so, the tokens come back once.
    answer = anna.press_expect_answer(anna_status, "Отменить")
    assert "Отменено" in answer["text"]
    cancelled = anna.wait(lambda m: m["message_id"] == anna_status["message_id"] and "отменено" in text_of(m))
    assert "1.5" in text_of(cancelled) and button_texts(cancelled) == MENU_ONLY
    assert GenRequest.objects.get(pk=first.pk).status == "cancelled"
    assert ledger(first) == [("charge", D("1.50")), ("refund", D("1.50"))] and balance(anna) == D(10)
    # Pressed again (a stale client): the reason, and still one refund.
    again = anna.press_expect_answer(anna_status, data=cancel_data(anna, anna_status))
    assert "уже отменена" in again["text"] and again["show_alert"]
    assert ledger(first) == [("charge", D("1.50")), ("refund", D("1.50"))]

    # Ben refreshes: he is next now.
    refreshed = ben.press(ben_status, "Обновить", lambda m: "Вы следующий" in text_of(m))
    assert refreshed["message_id"] == ben_status["message_id"] and button_texts(refreshed) == QUEUE_BUTTONS

    # The worker comes back: Anna's task is dropped, Ben's runs and is delivered.
    stack.start()
    wait_until(lambda: GenRequest.objects.filter(pk=second.pk, delivered_at__isnull=False).exists(), timeout=30)
    assert len(fake_google.requests_for("generateContent")) == 1
    assert [m for m in emulator.messages(anna.id) if "photo" in m] == []
    assert len([m for m in emulator.messages(ben.id) if "photo" in m]) == 1
    assert GenRequest.objects.get(pk=first.pk).status == "cancelled"
    assert ledger(first) == [("charge", D("1.50")), ("refund", D("1.50"))] and balance(anna) == D(10)
    assert ledger(second) == [("charge", D("1.50"))] and balance(ben) == D("8.50")
    assert "отменено" in text_of(emulator.message(anna.id, anna_status["message_id"]))


# --- cancel after the worker's claim, before Google is asked ---------------------------------------------------
def test_cancel_after_the_claim_before_google_is_asked(stack, chat_of, emulator, fake_google):
    chat = chat_of()
    started(chat)
    fund(chat.id, 10)
    chat.press(image_options(chat), "Далее", text_has("Опишите изображение"))
    chat.user.send_photo(sample_image(), caption="make it night")
    card = chat.wait(text_has("Проверьте и подтвердите"))
    emulator.delay_next("getFile", 5)  # the worker's download of the photo: it holds the request a while
    status = press_generate(chat, card)
    request = the_request(chat)

    # The worker claimed it and says "generating"; the buttons stay until it is sent to Google.
    generating = chat.wait(lambda m: m["message_id"] == status["message_id"] and "генерирую" in text_of(m).lower())
    assert button_texts(generating) == QUEUE_BUTTONS
    assert GenRequest.objects.get(pk=request.pk).status == "running"
    answer = chat.press_expect_answer(generating, "Отменить")
    assert "Отменено" in answer["text"]
    chat.wait(lambda m: m["message_id"] == status["message_id"] and "отменено" in text_of(m))

    worker_logged(stack, f"generation #{request.pk}: cancelled before it was sent to the provider")
    assert fake_google.requests_for("generateContent") == []
    done = GenRequest.objects.get(pk=request.pk)
    assert done.status == "cancelled" and done.submitted_at is None
    assert ledger(done) == [("charge", D("1.50")), ("refund", D("1.50"))] and balance(chat) == D(10)
    assert [m for m in emulator.messages(chat.id) if "photo" in m and m.get("from", {}).get("is_bot")] == []
    assert "отменено" in text_of(emulator.message(chat.id, status["message_id"]))


# --- at Google: refused; finished: refused -----------------------------------------------------------------------
def video_confirmation(chat: Chat, prompt: str) -> dict:
    menu = started(chat)
    models = chat.press(menu, "Создать видео", text_has("Создание видео"))
    options = chat.press(models, "Veo 3.1 Fast", has_buttons("Далее"))
    chat.press(options, "Далее", text_has("Опишите видео"))
    return chat.send(prompt, text_has("Проверьте и подтвердите"))


def test_cancel_is_refused_once_at_google_and_after_the_end(stack, chat_of, emulator, fake_google):
    chat = chat_of()
    started(chat)
    fund(chat.id, 50)
    card = video_confirmation(chat, "waves at sunset [[seconds:4]]")
    status = press_generate(chat, card)
    request = the_request(chat)
    wait_until(
        lambda: GenRequest.objects.filter(pk=request.pk).exclude(provider_operation_id="").exists(),
        what="the operation to start at Google",
    )
    price = GenRequest.objects.get(pk=request.pk).price

    current = chat.current(status)
    assert button_texts(current) == QUEUE_BUTTONS  # shown when the worker took it, before it was sent
    answer = chat.press_expect_answer(current, "Отменить")
    assert "уже отправлен в Google" in answer["text"] and answer["show_alert"]
    chat.wait(lambda m: m["message_id"] == status["message_id"] and button_texts(m) == [])

    done = wait_until(
        lambda: GenRequest.objects.filter(pk=request.pk, delivered_at__isnull=False).first(),
        timeout=30,
        what="the video to be delivered",
    )
    assert done.status == "succeeded"
    assert len([m for m in emulator.messages(chat.id) if "video" in m]) == 1
    assert ledger(done) == [("charge", price)] and balance(chat) == D(50) - price

    # After the end (the status message is gone): "already finished", nothing moves.
    finished = chat.press_expect_answer(status, data=cancel_data(chat, status))
    assert "уже завершена" in finished["text"]
    assert ledger(done) == [("charge", price)] and GenRequest.objects.get(pk=request.pk).status == "succeeded"


# --- a retired model ------------------------------------------------------------------------------------------------
@pytest.fixture
def operator(stack, emulator):
    """The worker restarted with an operator in ADMIN_IDS (and back to its own environment after)."""
    user = emulator.user(first_name="Operator", language_code="en")
    original = dict(stack.env)
    stack.stop()
    stack.env = {**original, "ADMIN_IDS": str(user.id)}
    stack.start()
    yield user
    stack.stop()
    stack.env = original
    stack.start()


def test_a_retired_model_is_paused_refunded_and_reported_once(operator, chat_of, emulator, fake_google, nano):
    anna, ben = chat_of("Anna"), chat_of("Ben")
    for chat in (anna, ben):
        started(chat)
        fund(chat.id, 10)
    ben_card = image_confirmation(ben)  # chosen before the model is paused
    fake_google.retire_model(nano.provider_model_id)

    status = press_generate(anna, image_confirmation(anna))
    request = the_request(anna)
    failure = anna.wait(lambda m: "больше недоступна" in text_of(m), timeout=30, edits=False)
    text = text_of(failure)
    assert "Nano Banana" in text and "1.5" in text and "вернулись" in text
    assert "не удалась" not in text  # never the generic "generation failed"
    done = GenRequest.objects.get(pk=request.pk)
    assert (done.status, done.error_code) == ("failed", "model_not_found")
    assert ledger(done) == [("charge", D("1.50")), ("refund", D("1.50"))] and balance(anna) == D(10)
    wait_until(lambda: emulator.is_deleted(anna.id, status["message_id"]), what="the status message to go")

    paused = AIModel.objects.get(pk=nano.pk)
    assert not paused.is_active and paused.paused_at is not None
    assert nano.provider_model_id in paused.paused_reason
    alert = emulator.wait_for_message(operator.id, lambda m: nano.provider_model_id in str(m.get("text")), 15)
    assert "paused" in alert["text"] or "приостановил" in alert["text"]

    # Ben's card was shown before: Generate is refused, nothing charged, and the list no longer has it.
    ben.user.press(ben_card, "Создать")
    wait_until(
        lambda: (
            any("недоступна" in str(a.get("text")) for a in emulator.callback_answers(ben.id))
            or any("недоступна" in text_of(m) for m in emulator.messages(ben.id))
        ),
        what="Ben to be told the model is unavailable",
    )
    assert not GenRequest.objects.filter(user__telegram_id=ben.id).exists() and balance(ben) == D(10)
    models = ben.press(started(ben), "Создать изображение", lambda m: "Выберите модель" in text_of(m))
    assert not any("Nano Banana 2.1" in b for b in button_texts(models)), "the paused model is not offered"
    assert len(fake_google.requests_for(model=nano.provider_model_id)) == 1
    assert len(emulator.messages(operator.id)) == 1  # one alert
