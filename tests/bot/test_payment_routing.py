"""Money that moved on Telegram's side is booked whatever the user is doing: a payment made while a flow
waits for the user's text (/paysupport) is credited, not taken as that text, and a banned user's payment
(banned between the pre-checkout and the charge, as a subscription renewal always is) is credited."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.bot.conftest import started, text_has
from tests.bot.test_payment import open_invoice

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_payment_made_during_the_support_flow_is_credited(chat):
    from botapp.models import Payment, SupportRequest, UserBalance

    started(chat)
    invoice = open_invoice(chat, "100 ток. — 400 ⭐")
    chat.send("/paysupport", text_has("Помощь с оплатой"))
    result = chat.user.pay(invoice)
    assert result.ok, result.error_message
    chat.wait(text_has("Оплата прошла"), edits=False)
    assert Payment.objects.get().status == "succeeded"
    assert UserBalance.objects.get(user__telegram_id=chat.id).balance == Decimal("100.00")
    assert not SupportRequest.objects.exists()


def test_a_user_banned_after_the_pre_checkout_is_still_credited(chat):
    from botapp.models import Payment, TgUser, UserBalance

    started(chat)
    invoice = open_invoice(chat, "10 ток. — 50 ⭐")
    record, remaining = chat.user._begin_payment(invoice, None)
    chat.user.emu.state.wait_sync(lambda: True if record.answered else None, remaining)
    assert record.ok
    TgUser.objects.filter(telegram_id=chat.id).update(is_banned=True)
    result = chat.user._complete(record, None)
    assert result.ok
    chat.wait(text_has("Оплата прошла"), edits=False)
    assert Payment.objects.get().status == "succeeded"
    assert UserBalance.objects.get(user__telegram_id=chat.id).balance == Decimal("10.00")
