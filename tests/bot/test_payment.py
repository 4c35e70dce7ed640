"""Top-up screens and Telegram Stars: packages, quote, invoice, pre-checkout, credit exactly once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sandbox.telegram import button_texts
from tests.bot.conftest import Chat, has_buttons, started, text_has, text_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def open_invoice(chat: Chat, package: str) -> dict:
    balance = chat.send("/balance", text_has("Баланс"))
    packages = chat.press(balance, "Пополнить", text_has("Выберите пакет"))
    methods = chat.press(packages, package, has_buttons("Звёзды Telegram"))
    chat.user.press(methods, "Звёзды Telegram")
    return chat.wait(lambda m: "invoice" in m, edits=False)


def test_stars_top_up_is_credited_once(chat):
    from botapp.models import Payment, Transaction, UserBalance

    started(chat)
    invoice = open_invoice(chat, "100 ток. — 400 ⭐")
    assert invoice["invoice"]["currency"] == "XTR"
    assert invoice["invoice"]["total_amount"] == 400
    payment = Payment.objects.get()
    assert payment.status == "pending"
    result = chat.user.pay(invoice)
    assert result.ok, result.error_message
    done = chat.wait(text_has("Оплата прошла"), edits=False)
    assert "Начислено 100 ток." in text_of(done) and "Баланс: 100" in text_of(done)
    payment.refresh_from_db()
    assert payment.status == "succeeded" and payment.provider_charge_id == result.charge_id

    since = chat.mark()
    chat.user.replay_payment(result)
    assert chat.silence(0.5, since=since) == [], "a replayed payment credits nothing and says nothing"
    assert UserBalance.objects.get(user__telegram_id=chat.id).balance == Decimal("100.00")
    assert Transaction.objects.filter(payment=payment, kind="deposit").count() == 1


def test_package_screen_shows_bonus_and_the_method_choice(chat, settings):
    started(chat)
    balance = chat.send("/balance")
    packages = chat.press(balance, "Пополнить", text_has("Выберите пакет"))
    assert "Studio" in text_of(packages) and "+5% бонус" in text_of(packages)
    methods = chat.press(packages, "300 ток.", has_buttons("Звёзды Telegram"))
    assert "Бонус: +15 ток. (5%)" in text_of(methods)
    assert not any("карта" in b.lower() for b in button_texts(methods)), "no card option unless enabled"
    settings.PAYMENT_CARD_ENABLED = True
    back = chat.press(methods, "Назад", text_has("Выберите пакет"))
    methods = chat.press(back, "300 ток.", has_buttons("Звёзды Telegram", "Банковская карта"))
    answer = chat.press_expect_answer(methods, "Банковская карта")
    assert "недоступна" in answer["text"]


def test_first_top_up_discount_from_a_promocode(chat):
    from botapp.models import Payment

    started(chat, "promo_FIRST50")
    balance = chat.send("/balance")
    packages = chat.press(balance, "Пополнить", text_has("Выберите пакет"))
    assert "FIRST50" in text_of(packages) and "скидка 50%" in text_of(packages)
    methods = chat.press(packages, "10 ток. — 50 ⭐", has_buttons("Звёзды Telegram"))
    assert "Цена: 25 ⭐" in text_of(methods) and "без скидки 50 ⭐" in text_of(methods)
    chat.user.press(methods, "Звёзды Telegram")
    invoice = chat.wait(lambda m: "invoice" in m, edits=False)
    assert invoice["invoice"]["total_amount"] == 25
    assert chat.user.pay(invoice).ok
    chat.wait(text_has("Оплата прошла"), edits=False)
    assert Payment.objects.get().promocode.code == "FIRST50"


def test_pre_checkout_refuses_a_stale_invoice(chat):
    from botapp.models import TopUpPackage, UserBalance

    started(chat)
    invoice = open_invoice(chat, "10 ток. — 50 ⭐")
    TopUpPackage.objects.filter(tokens=10).update(is_active=False)
    result = chat.user.pay(invoice)
    assert not result.ok
    assert "больше недоступен" in (result.error_message or "")
    assert UserBalance.objects.get(user__telegram_id=chat.id).balance == 0


def test_pre_checkout_of_a_banned_user_is_refused(chat):
    from botapp.models import TgUser

    started(chat)
    invoice = open_invoice(chat, "10 ток. — 50 ⭐")
    TgUser.objects.filter(telegram_id=chat.id).update(is_banned=True)
    result = chat.user.pay(invoice)
    assert not result.ok
    assert "заблокирован" in (result.error_message or "")
