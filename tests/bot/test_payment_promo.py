"""A discount promocode through the bot: "Stars" pressed twice makes two invoices; only the newest
carries the code, the older one is refused at pre-checkout (Telegram charges nothing for it)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.bot.conftest import Chat, has_buttons, started, text_has, text_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def methods_card(chat: Chat) -> dict:
    started(chat, "promo_FIRST50")
    balance = chat.send("/balance")
    packages = chat.press(balance, "Пополнить", text_has("Выберите пакет"))
    return chat.press(packages, "10 ток. — 50 ⭐", has_buttons("Звёзды Telegram"))


def press_stars(chat: Chat, methods: dict) -> dict:
    since = chat.mark()
    chat.user.press(methods, "Звёзды Telegram")
    invoice = chat.wait(lambda m: "invoice" in m, since=since, edits=False)
    assert invoice["invoice"]["total_amount"] == 25
    return invoice


def two_invoices(chat: Chat) -> tuple[dict, dict]:
    methods = methods_card(chat)
    older = press_stars(chat, methods)
    newer = press_stars(chat, methods)
    assert older["message_id"] != newer["message_id"]
    return older, newer


@pytest.mark.parametrize("first", ["older", "newer"])
def test_stars_pressed_twice_the_discount_is_paid_once(chat, first):
    from botapp.models import Payment, PromocodeActivation, UserBalance

    older, newer = two_invoices(chat)
    since = chat.mark()
    if first == "older":
        refused = chat.user.pay(older)
        paid = chat.user.pay(newer)
    else:
        paid = chat.user.pay(newer)
        refused = chat.user.pay(older)

    assert paid.ok, paid.error_message
    assert not refused.ok and "Этот счёт больше не действует" in (refused.error_message or "")
    done = chat.wait(text_has("Оплата прошла"), since=since, edits=False)
    assert "Начислено 10 ток." in text_of(done)
    assert [m for m in chat.silence(0.5, since=since) if "Оплата прошла" in text_of(m)] == [done]
    assert UserBalance.objects.get(user__telegram_id=chat.id).balance == Decimal("10.00")
    older_payment, newer_payment = Payment.objects.order_by("pk")
    assert (older_payment.status, newer_payment.status) == ("cancelled", "succeeded")
    assert newer_payment.amount == 25 and newer_payment.promocode.code == "FIRST50"
    assert PromocodeActivation.objects.get(user__telegram_id=chat.id).consumed_by == newer_payment


def test_an_invoice_charged_after_losing_its_code_is_credited_at_the_regular_price(chat):
    """The narrow race: the older invoice's pre-checkout was answered ok, a newer invoice took the code
    and was paid, then Telegram's charge of the older one arrives. The money was taken: it is credited,
    but at the regular price (25 stars of a 10-tokens-for-50 package: 5 tokens), and the user is told why."""
    from botapp.models import Payment, UserBalance

    methods = methods_card(chat)
    older = press_stars(chat, methods)
    emu = chat.emu
    record = emu.start_pre_checkout(chat.id, emu.resolve_invoice(older, chat.id), 8.0)
    assert emu.state.wait_sync(lambda: True if record.answered else None, 8.0) and record.ok
    newer = press_stars(chat, methods)
    assert chat.user.pay(newer).ok  # the newer invoice took the code, its payment consumed it
    assert "Начислено 10 ток." in text_of(chat.wait(text_has("Оплата прошла"), edits=False))
    since = chat.mark()
    late = emu.finish_payment(record)
    assert late.ok, late.error_message
    done = chat.wait(text_has("Оплата прошла"), since=since, edits=False)
    assert "Начислено 5 ток." in text_of(done) and "Промокод <b>FIRST50</b>" not in text_of(done)
    assert "FIRST50" in text_of(done) and "по обычной цене" in text_of(done)
    assert UserBalance.objects.get(user__telegram_id=chat.id).balance == Decimal("15.00")
    assert sorted(Payment.objects.values_list("status", "amount", "tokens")) == [
        ("succeeded", Decimal("25.00"), Decimal("5.00")),
        ("succeeded", Decimal("25.00"), Decimal("10.00")),
    ]
