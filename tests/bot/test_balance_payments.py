"""The balance screen's payment list through the emulator: newest first, 5 to a page, ◀ ▶ edit the screen in
place (BalancePageCb), a friendly line when there is nothing, unpaid invoices left out, a forged page
clamped to the list."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from botapp.callbacks import BalancePageCb
from sandbox.telegram import button_texts
from tests.bot.conftest import has_buttons, started, text_has, text_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
_seq = itertools.count(1)


def payments(telegram_id: int, count: int, *, status: str = "succeeded") -> list:
    """`count` payments of 1, 2, 3... tokens, the last one the newest."""
    from botapp.models import Payment, TgUser

    user = TgUser.objects.get(telegram_id=telegram_id)
    rows = []
    for n in range(1, count + 1):
        when = timezone.now() - timedelta(minutes=100 - n)
        row = Payment.objects.create(
            user=user,
            provider="telegram_stars",
            status=status,
            amount=Decimal(n * 10),
            currency="XTR",
            tokens=Decimal(n),
            invoice_payload=f"test-balance:{next(_seq)}",
            provider_charge_id=f"stxBalance{next(_seq)}" if status != "pending" else None,
            paid_at=when if status == "succeeded" else None,
        )
        Payment.objects.filter(pk=row.pk).update(created_at=when)
        rows.append(row)
    return rows


def listed(message: dict) -> list[str]:
    """The amounts of the payment lines on the screen, top to bottom ("120 ⭐", ...)."""
    return [line.split(" · ")[2].split(" → ")[0] for line in text_of(message).splitlines() if line.startswith("• ")]


def test_no_payments_yet(chat):
    started(chat)
    screen = chat.send("/balance", text_has("Баланс"))
    assert "💳 Платежей пока нет. Пополнить баланс можно кнопкой ниже" in text_of(screen)
    assert "◀️" not in button_texts(screen) and "▶️" not in button_texts(screen)


def test_one_page_has_no_paging(chat_factory):
    chat = chat_factory(first_name="Ben", language_code="en")
    started(chat)
    payments(chat.id, 2)
    payments(chat.id, 1, status="pending")  # an invoice never paid: not listed
    screen = chat.send("/balance", text_has("Balance"))
    assert "💳 Your payments:\n" in text_of(screen)
    assert listed(screen) == ["20 ⭐", "10 ⭐"]
    assert "⭐ Stars · 20 ⭐ → 2 tok. · ✅ paid" in text_of(screen)
    assert "◀️" not in button_texts(screen) and "▶️" not in button_texts(screen)


def test_pages_of_five_edited_in_place(chat):
    started(chat)
    payments(chat.id, 12)
    screen = chat.send("/balance", text_has("Баланс"))
    assert "Ваши платежи (страница 1 из 3):" in text_of(screen)
    assert listed(screen) == ["120 ⭐", "110 ⭐", "100 ⭐", "90 ⭐", "80 ⭐"]
    assert "▶️" in button_texts(screen) and "◀️" not in button_texts(screen)
    assert has_buttons("Пополнить", "История")(screen), "the screen's own buttons stay"

    second = chat.press(screen, "▶️", text_has("страница 2 из 3"))
    assert second["message_id"] == screen["message_id"]
    assert listed(second) == ["70 ⭐", "60 ⭐", "50 ⭐", "40 ⭐", "30 ⭐"]
    assert "◀️" in button_texts(second) and "▶️" in button_texts(second)
    assert text_of(second).startswith("💰 Баланс: 0"), "the balance stays on top"

    third = chat.press(second, "▶️", text_has("страница 3 из 3"))
    assert listed(third) == ["20 ⭐", "10 ⭐"]
    assert "▶️" not in button_texts(third) and "◀️" in button_texts(third)

    back = chat.press(third, "◀️", text_has("страница 2 из 3"))
    assert back["message_id"] == screen["message_id"] and listed(back) == listed(second)


def test_the_menus_balance_button_opens_the_first_page_and_a_forged_page_is_clamped(chat):
    menu = started(chat)
    payments(chat.id, 7)
    screen = chat.press(menu, "Баланс", text_has("страница 1 из 2"))
    assert screen["message_id"] == menu["message_id"]
    chat.user.press_raw(screen["message_id"], BalancePageCb(page=40).pack())
    last = chat.wait(text_has("страница 2 из 2"))
    assert listed(last) == ["20 ⭐", "10 ⭐"]
