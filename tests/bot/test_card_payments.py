"""Card payments end to end: the real dispatcher polling the Bot API emulator, the real `yookassa` SDK
talking to the fake YooKassa, and the fake's webhooks delivered over HTTP to our web process (Django's
live server) as YooKassa delivers them behind a proxy (the address in X-Forwarded-For)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit
from urllib.request import urlopen

import pytest
from django.core.management import call_command

from sandbox.telegram import inline_buttons
from sandbox.yookassa import FakeYooKassa
from tests.bot.conftest import Chat, has_buttons, started, text_has, text_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def shop(settings, live_server, emu, monkeypatch) -> Iterator[FakeYooKassa]:
    """The fake YooKassa with its webhook pointed at our live server; the notices go out through the one
    Telegram sender to the emulator, Celery tasks run inline."""
    from botapp.services import card
    from botapp.telegram.sender import close_sender
    from config.celery import app

    with FakeYooKassa(webhook_retry_delays=(0.05, 0.2, 0.5)) as fake:
        settings.YOOKASSA_SHOP_ID = fake.shop_id
        settings.YOOKASSA_SECRET_KEY = fake.secret_key
        settings.YOOKASSA_API_URL = fake.api_url
        settings.YOOKASSA_TIMEOUT_SECONDS = 3.0
        settings.YOOKASSA_RETURN_URL = ""
        settings.YOOKASSA_RECEIPTS = False
        settings.YOOKASSA_TRUST_FORWARDED_FOR = 1  # the fake sends from loopback, YooKassa's address in XFF
        settings.PAYMENT_CARD_ENABLED = None
        settings.BOT_TOKEN = emu.token
        settings.TELEGRAM_API_URL = emu.base_url
        settings.TELEGRAM_GLOBAL_RATE = settings.TELEGRAM_CHAT_RATE = settings.TELEGRAM_AUX_RATE = 1000
        monkeypatch.setattr(card, "RETRY_PAUSE", 0.0)
        fake.set_webhook(live_server.url + "/yookassa/webhook/")
        eager = app.conf.task_always_eager
        app.conf.task_always_eager = True
        try:
            yield fake
        finally:
            app.conf.task_always_eager = eager
            close_sender()


def methods_screen(chat: Chat, package: str, payload: str = "") -> dict:
    started(chat, payload)
    balance = chat.send("/balance")
    packages = chat.press(balance, "Пополнить", text_has("Выберите пакет"))
    return chat.press(packages, package, has_buttons("Звёзды Telegram", "Банковская карта"))


def press_card(chat: Chat, methods: dict) -> tuple[dict, str]:
    """Press "Bank card": the message with the pay button, and YooKassa's payment id from its URL."""
    since = chat.mark()
    chat.user.press(methods, "Банковская карта")
    checkout = chat.wait(text_has("Оплата картой"), since=since, edits=False)
    (url,) = [b["url"] for b in inline_buttons(checkout) if b.get("url")]
    return checkout, parse_qs(urlsplit(url).query)["orderId"][0]


def test_pay_by_card_credits_once_and_tells_the_user_once(chat, shop):
    from botapp.models import Payment, Transaction, UserBalance

    checkout, yookassa_id = press_card(chat, methods_screen(chat, "100 ток."))
    assert "К оплате: 799 ₽" in text_of(checkout)
    assert any("Оплатить картой 799 ₽" in b["text"] for b in inline_buttons(checkout))
    payment = Payment.objects.get()
    assert (payment.provider, payment.status, payment.provider_charge_id) == ("yookassa", "pending", yookassa_id)
    assert shop.payment(yookassa_id)["confirmation"]["return_url"] == "https://t.me/genstudio_test_bot"

    # The user taps the button: YooKassa's page opens (the fake's), and they pay there.
    (url,) = [b["url"] for b in inline_buttons(checkout) if b.get("url")]
    with urlopen(url, timeout=5) as page:
        assert "799.00 RUB" in page.read().decode()
    since = chat.mark()
    shop.pay(yookassa_id)  # -> payment.succeeded to our webhook
    done = chat.wait(text_has("Оплата прошла"), since=since, edits=False)
    assert "Начислено 100 ток." in text_of(done) and "Баланс: 100 ток." in text_of(done)

    for _ in range(2):  # YooKassa delivers the same notification again
        assert shop.notify(yookassa_id).wait(), "each replay is answered 2xx"
    notes = shop.wait_notifications(3)
    assert len(notes) == 3 and all(n.delivered and n.attempts[-1].status == 200 for n in notes)
    assert [m for m in chat.silence(0.6, since=since) if "Оплата прошла" in text_of(m)] == [done]
    payment.refresh_from_db()
    assert payment.status == "succeeded" and payment.paid_at is not None
    assert UserBalance.objects.get(user__telegram_id=chat.id).balance == Decimal("100.00")
    assert Transaction.objects.filter(payment=payment, kind="deposit").count() == 1
    call_command("check_ledger")


def test_a_canceled_card_payment_frees_the_promocode_for_stars(chat, shop):
    from botapp.models import Payment, PromocodeActivation

    methods = methods_screen(chat, "10 ток. — 50 ⭐", "promo_FIRST50")
    checkout, yookassa_id = press_card(chat, methods)
    assert "49.50 ₽" in text_of(checkout)  # 99 roubles, -50%
    assert PromocodeActivation.objects.get(user__telegram_id=chat.id).reserved_by.provider_charge_id == yookassa_id
    assert shop.cancel(yookassa_id, "expired_on_confirmation")["status"] == "canceled"  # -> payment.canceled
    assert shop.wait_notifications(1)[0].delivered

    since = chat.mark()
    chat.user.press(methods, "Звёзды Telegram")
    invoice = chat.wait(lambda m: "invoice" in m, since=since, edits=False)
    assert invoice["invoice"]["total_amount"] == 25, "the code is free again: the Stars invoice carries it"
    assert chat.user.pay(invoice).ok
    chat.wait(text_has("Оплата прошла"), since=since, edits=False)
    card_payment, stars_payment = Payment.objects.order_by("pk")
    assert (card_payment.status, stars_payment.status) == ("cancelled", "succeeded")
    assert PromocodeActivation.objects.get(user__telegram_id=chat.id).consumed_by == stars_payment


def test_yookassa_down_says_so_and_leaves_nothing_pending(chat, shop):
    from botapp.models import Payment

    methods = methods_screen(chat, "100 ток.")
    shop.fail_next("create_payment", 500, times=2)
    since = chat.mark()
    chat.user.press(methods, "Банковская карта")
    said = chat.wait(text_has("временно недоступна"), since=since, edits=False)
    assert "звёздами" in text_of(said)
    assert Payment.objects.get().status == "failed"
    assert len(shop.requests_for("create_payment")) == 2


def test_the_card_button_follows_the_settings(chat, shop, settings):
    methods = methods_screen(chat, "100 ток.")  # configured: shown
    settings.PAYMENT_CARD_ENABLED = False  # switched off while configured: hidden
    back = chat.press(methods, "Назад", text_has("Выберите пакет"))
    methods = chat.press(back, "100 ток.", has_buttons("Звёзды Telegram"))
    assert not any("Банковская карта" in b["text"] for b in inline_buttons(methods))


def test_a_refund_in_yookassas_dashboard_reaches_the_ledger_the_user_and_the_operators(chat, shop, settings):
    """The whole path of a card refund the bot did not make: the user pays by card in the chat, the shop
    refunds in YooKassa's dashboard, YooKassa's `refund.succeeded` reaches our web process over HTTP, the
    refund is re-read from the API and taken back once, the user is told in the chat and the operators
    get an alert."""
    from botapp.models import Payment, Transaction, UserBalance
    from botapp.services import yookassa_api

    operator = Chat(chat.emu, chat.emu.user(first_name="Operator", language_code="ru"))
    settings.ADMIN_IDS = [operator.id]
    _, yookassa_id = press_card(chat, methods_screen(chat, "100 ток."))
    since = chat.mark()
    shop.pay(yookassa_id)
    chat.wait(text_has("Оплата прошла"), since=since, edits=False)
    since = chat.mark()
    refund = yookassa_api.create_refund(
        payment_id=yookassa_id, amount=Decimal("799.00"), currency="RUB", idempotence_key="dashboard-1"
    )
    notice = chat.wait(text_has("возвращён"), since=since, edits=False)
    assert "Ваш платёж на 799 RUB возвращён; списано 100 ток." in text_of(notice)
    alert = operator.wait(text_has("Card payment refunded outside the admin"), edits=False)  # the admin language
    assert refund.id in text_of(alert)
    assert shop.notify(refund.id).wait(), "a replay is answered 2xx"
    payment = Payment.objects.get()
    assert payment.status == "refunded" and UserBalance.objects.get(user__telegram_id=chat.id).balance == 0
    assert Transaction.objects.filter(payment=payment, kind="payment_refund").count() == 1
    call_command("check_ledger")
