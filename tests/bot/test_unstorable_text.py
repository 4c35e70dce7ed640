"""Text the database cannot store (NUL, lone UTF-16 surrogates) is refused at the bot's boundary with a
clear message in the user's language: nothing is written, and the user never sees the generic apology.

PostgreSQL refuses NUL in text, so there the handlers used to crash; on SQLite the NUL was stored
(and a lone surrogate crashed there too). These tests run on both databases."""

from __future__ import annotations

import dataclasses

import pytest

from sandbox.telegram import inline_buttons
from tests.bot.conftest import WAIT, Chat, fund, started, text_has, text_of
from tests.bot.test_bad_input import prompt_step
from tests.bot.test_payment import open_invoice

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

REFUSED_RU = "символы, которые я не могу принять"
REFUSED_EN = "characters I can't accept"
APOLOGY_RU = "Что-то пошло не так"


def refused(chat: Chat, text: str, marker: str = REFUSED_RU) -> dict:
    """Send `text`; the bot's answer must be the clear refusal, not the apology."""
    reply = chat.send(text)
    assert marker in text_of(reply), text_of(reply)
    assert APOLOGY_RU not in text_of(reply)
    return reply


def test_nul_in_a_prompt_is_refused_and_the_flow_goes_on(chat):
    from botapp.models import GenRequest, Transaction

    started(chat)
    fund(chat.id, 10)
    prompt_step(chat)
    refused(chat, "a red fox\x00 in the snow")
    assert not GenRequest.objects.exists()
    card = chat.send("a red fox in the snow", text_has("Проверьте и подтвердите"))
    assert inline_buttons(card), "the user is still in the prompt step and can go on"
    assert Transaction.objects.filter(kind=Transaction.Kind.CHARGE).count() == 0


def test_nul_in_a_caption_is_refused(chat):
    from botapp.models import GenRequest
    from sandbox.telegram import sample_image

    prompt_step(chat)
    chat.user.send_photo(sample_image(), caption="make it\x00 blue")
    reply = chat.wait(edits=False)
    assert REFUSED_RU in text_of(reply)
    assert not GenRequest.objects.exists()


def test_lone_surrogate_in_a_prompt_is_refused(chat):
    from botapp.models import GenRequest

    prompt_step(chat)
    refused(chat, "a fox \ud83d in the snow")
    assert not GenRequest.objects.exists()


def test_nul_in_a_start_ref_payload_writes_nothing(chat_factory):
    from botapp.models import TgUser

    inviter = chat_factory("Inviter")
    started(inviter)
    code = TgUser.objects.get(telegram_id=inviter.id).referral_code
    friend = chat_factory("Friend")
    refused(friend, f"/start ref_{code}\x00")
    assert not TgUser.objects.filter(telegram_id=friend.id).exists(), "nothing written, not even the user"
    menu = started(friend, f"ref_{code}")
    assert "по приглашению от" in text_of(menu), "the corrected link still counts: the user is still new"
    assert TgUser.objects.get(telegram_id=friend.id).referred_by_id == TgUser.objects.get(telegram_id=inviter.id).pk


def test_nul_in_a_start_promo_payload_writes_nothing(chat):
    from botapp.models import PromocodeActivation, TgUser

    refused(chat, "/start promo_FIRST\x0050")
    assert not TgUser.objects.filter(telegram_id=chat.id).exists()
    assert not PromocodeActivation.objects.exists()


def test_nul_in_a_typed_promocode_is_refused(chat):
    from botapp.models import PromocodeActivation

    menu = started(chat)
    chat.press(menu, "Промокод", text_has("Пришлите промокод"))
    refused(chat, "FIRST\x0050")
    assert not PromocodeActivation.objects.exists()
    done = chat.send("FIRST50", text_has("активирован"))
    assert "FIRST50" in text_of(done), "still in the promocode step"
    assert PromocodeActivation.objects.count() == 1


def test_nul_in_a_pre_checkout_payload_is_refused(chat):
    from botapp.models import Payment, UserBalance

    started(chat)
    invoice = open_invoice(chat, "10 ток. — 50 ⭐")
    real = chat.emu.resolve_invoice(invoice, chat.id)
    forged = dataclasses.replace(real, payload=real.payload + "\x00")
    record = chat.emu.start_pre_checkout(chat.id, forged)
    assert chat.emu.state.wait_sync(lambda: True if record.answered else None, WAIT), "pre-checkout not answered"
    assert record.ok is False
    assert "символы, которые бот не может принять" in (record.error_message or "")
    assert Payment.objects.get().status == Payment.Status.PENDING
    assert UserBalance.objects.get(user__telegram_id=chat.id).total == 0


def test_nul_in_callback_data_gets_an_alert(chat):
    menu = started(chat)
    answer = chat.press_expect_answer(menu, data="m:main\x00")
    assert answer["show_alert"] is True
    assert "символы, которые я не могу принять" in answer["text"]


def test_refusal_speaks_the_users_language(chat_factory):
    from botapp.models import UserSettings

    stranger = chat_factory("Stranger", language_code="en")
    refused(stranger, "hello\x00", REFUSED_EN)
    switched = chat_factory("Switched", language_code="ru")
    started(switched)
    UserSettings.objects.filter(user__telegram_id=switched.id).update(language="en")
    refused(switched, "hello\x00", REFUSED_EN)


def test_profile_names_are_cleaned_not_refused(chat_factory):
    from botapp.models import TgUser

    chat = chat_factory("An\x00na", last_name="Sm\ud800ith", username="anna\x00")
    menu = started(chat)
    assert "Anna" in text_of(menu)
    user = TgUser.objects.get(telegram_id=chat.id)
    assert (user.first_name, user.last_name, user.username) == ("Anna", "Smith", "anna")
