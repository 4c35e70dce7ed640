"""/paysupport through the emulator with the real dispatcher: the screen lists the user's payments with
their codes, the support contact and the terms; the user's description is stored (SupportRequest) and
reaches every operator (ADMIN_IDS) through Celery and the one sender, with the user named and their
payments attached; cancel (the button and /cancel), the hourly limit, content that is not text, a text
too long, the introduction an operator edited."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from sandbox.telegram import button_texts
from tests.bot.conftest import Chat, has_buttons, started, text_has, text_of
from tests.bot.workers import eager_workers

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
_seq = itertools.count(1)


@pytest.fixture
def workers(emu, settings) -> Iterator:
    with eager_workers(emu, settings) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _support_settings(settings):
    settings.SUPPORT_USERNAME = "genstudio_help"
    settings.SUPPORT_REQUESTS_PER_HOUR = 3
    settings.LANGUAGE_CODE = "en"  # the operators' language


@pytest.fixture
def operator(emu, settings):
    op = emu.user(first_name="Olga", language_code="en")
    settings.ADMIN_IDS = [op.id]
    return op


def payment(telegram_id: int, *, status: str = "succeeded", minutes_ago: int = 0, tokens: str = "100",
            amount: str = "400", charge: str | None = "auto"):  # fmt: skip
    from botapp.models import Payment, TgUser

    n = next(_seq)
    when = timezone.now() - timedelta(minutes=minutes_ago)
    row = Payment.objects.create(
        user=TgUser.objects.get(telegram_id=telegram_id),
        provider="telegram_stars",
        status=status,
        amount=Decimal(amount),
        currency="XTR",
        tokens=Decimal(tokens),
        invoice_payload=f"test-support:{n}",
        provider_charge_id=f"stxSupport{n}" if charge == "auto" else charge,
        paid_at=when if status in ("succeeded", "refunded") else None,
    )
    Payment.objects.filter(pk=row.pk).update(created_at=when)
    return Payment.objects.get(pk=row.pk)


def open_support(chat: Chat) -> dict:
    return chat.send("/paysupport", text_has("Помощь с оплатой"))


def test_the_screen_lists_payments_and_the_request_reaches_the_operator(chat_factory, workers, operator):
    chat = chat_factory(first_name="Anna", username="anna_k")
    started(chat)
    paid = payment(chat.id, minutes_ago=60)
    refunded = payment(chat.id, status="refunded", minutes_ago=30, tokens="10", amount="50")
    payment(chat.id, status="pending", charge=None)  # an invoice never paid: not a payment yet

    screen = open_support(chat)
    text = text_of(screen)
    assert "400 ⭐ → 100 ток. · ✅ оплачен" in text and paid.provider_charge_id in text
    assert "50 ⭐ → 10 ток. · ↩️ возвращён" in text and refunded.provider_charge_id in text
    assert text.index(refunded.provider_charge_id) < text.index(paid.provider_charge_id), "newest first"
    assert "ожидает оплаты" not in text
    assert "@genstudio_help" in text and "/terms" in text and "Опишите проблему" in text
    assert button_texts(screen) == ["✖️ Отмена"]

    done = chat.send("Оплатил 400 звёзд, а токены <не пришли>", text_has("передано в поддержку"))
    assert button_texts(done) == ["🏠 Меню"]
    from botapp.models import SupportRequest

    request = SupportRequest.objects.get()
    assert request.text == "Оплатил 400 звёзд, а токены <не пришли>" and request.status == "open"
    assert [item["charge_id"] for item in request.payments] == [refunded.provider_charge_id, paid.provider_charge_id]
    forwarded = workers.messages(operator.id)
    assert len(forwarded) == 1
    copy = text_of(forwarded[0])
    assert f"Payment support request #{request.pk}" in copy
    assert f"Anna @anna_k · Telegram id {chat.id}" in copy and "language: ru" in copy
    assert "Оплатил 400 звёзд, а токены <не пришли>" in copy
    assert "Payments (latest 2 of 2):" in copy
    assert paid.provider_charge_id in copy and refunded.provider_charge_id in copy
    assert chat.current(screen).get("reply_markup") is None, "the card's cancel button is gone"

    # The flow is over: the next text is ordinary input again, not a second request.
    chat.send("и ещё вопрос", text_has("Выберите действие"))
    assert len(workers.messages(operator.id)) == 1


def test_cancel_by_the_button_or_by_command_sends_nothing(chat, workers, operator):
    started(chat)
    screen = open_support(chat)
    menu = chat.press(screen, "Отмена", text_has("Действие отменено"))
    assert menu["message_id"] == screen["message_id"] and has_buttons("Баланс")(menu)
    chat.send("не отправляй это", text_has("Выберите действие"))

    open_support(chat)
    chat.send("/cancel", text_has("Действие отменено"))
    chat.send("и это тоже", text_has("Выберите действие"))
    assert workers.messages(operator.id) == []


def test_at_most_n_requests_an_hour(chat, workers, operator, settings):
    settings.SUPPORT_REQUESTS_PER_HOUR = 2
    started(chat)
    for n in (1, 2):
        open_support(chat)
        chat.send(f"обращение {n}", text_has("передано в поддержку"))
    assert len(workers.messages(operator.id)) == 2

    limited = open_support(chat)
    assert "Лимит обращений на этот час исчерпан (2 в час)" in text_of(limited)
    assert "Опишите проблему" not in text_of(limited) and "Отмена" not in button_texts(limited)
    chat.send("обращение 3", text_has("Выберите действие"))  # no flow was started
    assert len(workers.messages(operator.id)) == 2

    # An hour later: one more. The limit reached while the user was writing (another device): told
    # politely, the flow ends.
    from botapp.models import SupportRequest, TgUser
    from botapp.services import paysupport

    SupportRequest.objects.update(created_at=timezone.now() - timedelta(minutes=61))
    settings.SUPPORT_REQUESTS_PER_HOUR = 1
    open_support(chat)

    paysupport.submit_request(user_id=TgUser.objects.get(telegram_id=chat.id).pk, text="from elsewhere")
    refused = chat.send("обращение 4", text_has("Лимит обращений"))
    assert "Отмена" not in button_texts(refused)
    assert [text_of(m) for m in workers.messages(operator.id)][-1].count("from elsewhere") == 1
    chat.send("обращение 5", text_has("Выберите действие"))
    assert len(workers.messages(operator.id)) == 3


def test_only_text_is_passed_on(chat_factory, workers, operator):
    chat = chat_factory(first_name="Ben", language_code="en")
    started(chat)
    chat.send("/paysupport", text_has("Help with payments"))
    chat.user.send_photo(caption="see the screenshot")
    refused = chat.wait(text_has("describe the problem in text"), edits=False)
    assert "Screenshots and files can be sent to @genstudio_help" in text_of(refused)
    assert button_texts(refused) == ["✖️ Cancel"]
    chat.user.send_sticker()
    chat.wait(text_has("describe the problem in text"), edits=False)
    assert workers.messages(operator.id) == []

    too_long = chat.send("x" * 2001, text_has("That is a bit long"))
    assert "2001 characters, and the limit is 2000" in text_of(too_long)
    assert workers.messages(operator.id) == []
    chat.send("The top-up of 50 stars did not arrive", text_has("passed to support"))
    assert "The top-up of 50 stars did not arrive" in text_of(workers.messages(operator.id)[0])


def test_without_operators_the_user_is_still_answered(chat, workers, settings, caplog):
    settings.ADMIN_IDS = []
    started(chat)
    open_support(chat)
    with caplog.at_level("INFO", logger="botapp.services.paysupport"):
        chat.send("помогите", text_has("передано в поддержку"))
    assert any("'помогите'" in record.getMessage() for record in caplog.records)


def test_a_duplicated_task_reaches_the_operator_once(chat, workers, operator):
    from botapp import tasks
    from botapp.models import SupportRequest

    started(chat)
    open_support(chat)
    chat.send("twice?", text_has("передано в поддержку"))
    request = SupportRequest.objects.get()
    for _ in range(2):  # a duplicated or redelivered task
        tasks.forward_support_request.apply(args=(request.pk, operator.id))
    assert [text_has("twice?")(m) for m in workers.messages(operator.id)] == [True]


def test_the_introduction_an_operator_edited(chat_factory, workers, operator):
    from botapp.models import BotText

    BotText.objects.create(key="paysupport", text_en="🛟 <b>Payment trouble?</b> We answer within a day.")
    chat = chat_factory(first_name="Ben", language_code="en")
    started(chat)
    screen = chat.send("/paysupport", text_has("Payment trouble?"))
    assert text_of(screen).startswith("🛟 Payment trouble? We answer within a day.\n\n")
    assert "Describe the problem in one message" in text_of(screen)
    anna = chat_factory(first_name="Anna", language_code="ru")
    started(anna)
    assert text_of(open_support(anna)).startswith("🧾 Помощь с оплатой\n"), "no Russian version: the default"


def test_the_command_works_in_the_middle_of_a_flow_and_replaces_it(chat, workers, operator):
    started(chat)
    menu = chat.send("/menu", text_has("Главное меню"))
    chat.press(menu, "Промокод", text_has("Пришлите промокод"))
    open_support(chat)
    chat.send("WELCOME2025", text_has("передано в поддержку"))  # a description now, not a code
    assert "WELCOME2025" in text_of(workers.messages(operator.id)[0])
