"""Refunds of Telegram Stars payments end to end: a user pays through the real dispatcher polling the Bot
API emulator, with a referrer who got a reward; an operator refunds it from the admin (the Django test
client posting the "Refund Stars payment…" form), or Telegram refunds it by itself (a `refunded_payment`
message). Checked: Telegram's Stars ledger, the balances, the referrer's reward, the ledger rows, the
user's notice, the operators' alerts, `check_ledger`, and that nothing is taken back twice."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from sandbox.telegram import BotAPIEmulator
from tests.bot.conftest import Chat, eventually, has_buttons, started, text_has, text_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
D = Decimal
CHANGELIST = "admin:botapp_payment_changelist"


@pytest.fixture
def emu(request) -> Iterator[BotAPIEmulator]:
    """The emulator; parametrize it indirectly with True to have the bot's own refunds announced by a
    `refunded_payment` message too."""
    refund_message = bool(getattr(request, "param", False))
    with BotAPIEmulator.run_in_thread(bot_username="genstudio_test_bot", bot_refund_message=refund_message) as e:
        yield e


@pytest.fixture
def live(emu, settings):
    """The one sender pointed at the emulator, Celery tasks inline, an operator (ADMIN_IDS) for the alerts."""
    from django.core.cache import cache

    from botapp.telegram.sender import close_sender
    from config.celery import app

    cache.clear()  # alert cool-downs and notice markers of earlier tests
    settings.BOT_TOKEN = emu.token
    settings.TELEGRAM_API_URL = emu.base_url
    settings.TELEGRAM_GLOBAL_RATE = settings.TELEGRAM_CHAT_RATE = settings.TELEGRAM_AUX_RATE = 1000
    settings.REFERRAL_FIRST_TOPUP_BONUS = D(10)
    settings.REFERRAL_PERCENT = D(5)
    operator = emu.user(first_name="Operator", language_code="en")
    settings.ADMIN_IDS = [operator.id]
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield operator
    finally:
        app.conf.task_always_eager = eager
        close_sender()


@pytest.fixture
def admin_client(django_user_model) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("alice", password="x", is_staff=True))
    return client


@pytest.fixture
def paid(chat_factory, live):
    """A referrer, and the friend they invited, who paid 1050 ⭐ for Studio (300 tokens + 15 bonus):
    the referrer got 10 + 5% of 300 = 25 bonus tokens. -> (referrer chat, payer chat, PaymentResult)"""
    from botapp.models import TgUser

    referrer = chat_factory("Ref")
    started(referrer)
    code = TgUser.objects.get(telegram_id=referrer.id).referral_code
    payer = chat_factory("Payer")
    started(payer, f"ref_{code}")
    balance = payer.send("/balance", text_has("Баланс"))
    packages = payer.press(balance, "Пополнить", text_has("Выберите пакет"))
    methods = payer.press(packages, "300 ток.", has_buttons("Звёзды Telegram"))
    payer.user.press(methods, "Звёзды Telegram")
    invoice = payer.wait(lambda m: "invoice" in m, edits=False)
    result = payer.user.pay(invoice)
    assert result.ok, result.error_message
    payer.wait(text_has("Оплата прошла"), edits=False)
    assert balances(payer) == (D(300), D(15)) and balances(referrer) == (0, D(25))
    return referrer, payer, result


def balances(chat: Chat) -> tuple[Decimal, Decimal]:
    from botapp.models import UserBalance

    row = UserBalance.objects.get(user__telegram_id=chat.id)
    return row.balance, row.bonus_balance


def payment_of(result):
    from botapp.models import Payment

    return Payment.objects.get(provider_charge_id=result.charge_id)


def refunds_on_telegram(emu: BotAPIEmulator, charge_id: str) -> int:
    return sum(1 for t in emu.star_transactions() if t["id"] == charge_id and "receiver" in t)


def operation_id(response) -> str:
    found = re.search(r'name="operation_id" value="([0-9a-f-]{36})"', response.content.decode())
    assert found, "the form carries its one-time key"
    return found.group(1)


def open_form(client: Client, payment):
    response = client.post(reverse(CHANGELIST), {"action": "refund_stars", "_selected_action": [payment.pk]})
    assert response.status_code == 200
    return response


def submit(client: Client, payment, key: str, **fields):
    data = {"action": "refund_stars", "_selected_action": [payment.pk], "apply": "1", "operation_id": key, **fields}
    return client.post(reverse(CHANGELIST), data, follow=True)


def notes(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def ledger_clean() -> None:
    from django.core.management import call_command

    call_command("check_ledger")  # raises CommandError on any difference


# --- an operator's refund from the admin ---------------------------------------------------------------------
def test_operator_refunds_a_paid_top_up_from_the_admin_once(paid, emu, admin_client):
    from botapp.models import Transaction

    referrer, payer, result = paid
    payment = payment_of(result)
    form = open_form(admin_client, payment)
    page = form.content.decode()
    assert "300.00 tokens + 15.00 bonus" in page and "the user has 300.00 + 15.00 bonus" in page
    assert "the 25.00 bonus tokens of the referral reward" in page and "Shortfall" not in page
    key = operation_id(form)

    since = payer.mark()
    done = submit(admin_client, payment, key)
    assert any("refunded: 1050 ⭐ back to the user" in note for note in notes(done)), notes(done)
    assert refunds_on_telegram(emu, result.charge_id) == 1
    assert emu.star_balance() == 0
    assert balances(payer) == (0, 0) and balances(referrer) == (0, 0)
    rows = Transaction.objects.filter(payment=payment, kind="payment_refund")
    assert sorted((r.user.telegram_id, r.bucket, r.amount) for r in rows) == sorted(
        [(payer.id, "main", D(-300)), (payer.id, "bonus", D(-15)), (referrer.id, "bonus", D(-25))]
    )
    payment.refresh_from_db()
    assert payment.status == "refunded" and payment.raw["refund"]["by"] == "alice"
    notice = payer.wait(text_has("возвращён"), since=since, edits=False)
    assert text_of(notice).startswith("↩️ Ваш платёж на 1050 ⭐ возвращён; списано 315 ток.\n💰 Баланс: 0 ток."), notice
    ledger_clean()

    again = submit(admin_client, payment, key)  # the same form submitted twice
    assert any("already applied" in note for note in notes(again)), notes(again)
    blocked = open_form(admin_client, payment).content.decode()  # a new form: nothing to submit
    assert "is already refunded (by alice)" in blocked and "Refund 1050 ⭐" not in blocked
    forged = submit(admin_client, payment, str(uuid.uuid4()))
    assert "is already refunded (by alice); nothing changed." in forged.content.decode()
    assert refunds_on_telegram(emu, result.charge_id) == 1 and rows.count() == 3
    assert [m for m in payer.silence(0.3, since=since) if "возвращён" in text_of(m)] == [notice]
    ledger_clean()


def test_telegram_refusing_or_not_answering_changes_nothing(paid, emu, admin_client, settings):
    referrer, payer, result = paid
    payment = payment_of(result)
    key = operation_id(open_form(admin_client, payment))

    emu.fail_next("refundStarPayment", 400, description="Bad Request: CHARGE_NOT_FOUND")
    refused = submit(admin_client, payment, key)
    assert "Telegram refused the refund: CHARGE_NOT_FOUND. Nothing changed." in refused.content.decode()
    payment.refresh_from_db()
    assert payment.status == "succeeded" and refunds_on_telegram(emu, result.charge_id) == 0
    assert balances(payer) == (D(300), D(15)) and balances(referrer) == (0, D(25))

    # Telegram refunds, but its answer is lost: nothing is taken back, the operator retries the same form
    emu.lose_answer_next("refundStarPayment", mode="reset")
    unknown = submit(admin_client, payment, key)
    assert "Telegram did not answer" in unknown.content.decode()
    assert refunds_on_telegram(emu, result.charge_id) == 1
    payment.refresh_from_db()
    assert payment.status == "succeeded" and balances(payer) == (D(300), D(15))

    retried = submit(admin_client, payment, key)
    assert any("had already been refunded" in note for note in notes(retried)), notes(retried)
    payment.refresh_from_db()
    assert payment.status == "refunded" and payment.raw["refund"]["refunded_elsewhere"] is True
    assert balances(payer) == (0, 0) and balances(referrer) == (0, 0)
    assert refunds_on_telegram(emu, result.charge_id) == 1
    ledger_clean()


def test_spent_tokens_refuse_the_refund_unless_refunded_anyway(paid, emu, admin_client):
    from botapp.models import TgUser, Transaction
    from botapp.services.balance import BalanceService

    referrer, payer, result = paid
    payment = payment_of(result)
    user = TgUser.objects.get(telegram_id=payer.id)
    BalanceService.charge(user_id=user.pk, amount=D(115), key="gen:spent")  # 15 bonus, then 100 purchased
    detail = reverse("admin:botapp_payment_refund_stars_detail", args=(payment.pk,))
    form = admin_client.get(detail)
    assert form.status_code == 200
    page = form.content.decode()
    assert "Shortfall: 115.00 tokens were already spent" in page and "Refund anyway" in page
    key = operation_id(form)

    refused = admin_client.post(detail, {"apply": "1", "operation_id": key})
    assert refused.status_code == 200 and "Not refunded: 115.00 of the tokens" in refused.content.decode()
    assert refunds_on_telegram(emu, result.charge_id) == 0, "refused before Telegram is asked"
    assert balances(payer) == (D(200), 0)

    done = admin_client.post(detail, {"apply": "1", "operation_id": key, "refund_anyway": "on"}, follow=True)
    assert done.redirect_chain[-1][0] == reverse("admin:botapp_payment_change", args=(payment.pk,))
    assert any("shortfall recorded as a loss: 115.00" in note for note in notes(done)), notes(done)
    assert refunds_on_telegram(emu, result.charge_id) == 1
    assert balances(payer) == (0, 0) and balances(referrer) == (0, 0)
    payment.refresh_from_db()
    assert payment.raw["refund"]["shortfall"] == "115.00" and payment.raw["refund"]["taken"] == "200.00"
    row = Transaction.objects.get(payment=payment, user=user, kind="payment_refund")
    assert row.amount == D(-200) and "shortfall 115.00 tokens recorded as a loss" in row.description
    assert "списано 200 ток." in text_of(payer.wait(text_has("возвращён"), edits=False))
    ledger_clean()


# --- a refund Telegram made: refunded_payment ------------------------------------------------------------------
def handled(caplog, charge_id: str, outcome: str) -> int:
    """How many refunded_payment messages of this charge the bot's handler logged with this outcome."""
    return sum(
        1
        for r in caplog.records
        if r.name == "botapp.handlers.refunds" and charge_id in r.getMessage() and f": {outcome} " in r.getMessage()
    )


def test_a_refund_by_telegram_is_taken_back_once_and_alerted(paid, emu, live, caplog):
    from botapp.models import Transaction

    referrer, payer, result = paid
    payment = payment_of(result)
    since = payer.mark()
    payer.user.refund_externally(result)
    assert eventually(lambda: payment_of(result).status == "refunded")
    emu.post_refunded_message(emu.state.payments[result.charge_id])  # delivered a second time
    alert = emu.wait_for_message(live.id, lambda m: "refunded by Telegram" in text_of(m), 8.0, since=since)
    assert f"Payment #{payment.pk}" in text_of(alert) and "Taken back: 315.00 tokens" in text_of(alert)
    notice = payer.wait(text_has("возвращён"), since=since, edits=False)
    assert "списано 315 ток." in text_of(notice)
    assert balances(payer) == (0, 0) and balances(referrer) == (0, 0)
    assert eventually(lambda: handled(caplog, result.charge_id, "already") == 1), "the second one was handled"
    assert handled(caplog, result.charge_id, "recorded") == 1
    assert Transaction.objects.filter(payment=payment, kind="payment_refund").count() == 3
    assert [m for m in emu.messages(live.id) if "refunded by Telegram" in text_of(m)] == [alert]
    assert [m for m in emu.messages(payer.id) if "возвращён" in text_of(m)] == [notice]
    assert payment_of(result).raw["refund"]["by"] == "Telegram"
    ledger_clean()


def test_a_banned_users_refund_is_taken_back_too(paid, emu):
    from botapp.models import TgUser

    _, payer, result = paid
    TgUser.objects.filter(telegram_id=payer.id).update(is_banned=True)
    payer.user.refund_externally(result)
    assert eventually(lambda: payment_of(result).status == "refunded")
    assert balances(payer) == (0, 0)


def test_a_refund_of_an_unknown_charge_only_alerts(chat, live, emu, monkeypatch):
    from botapp import bridge
    from botapp.models import Payment, Transaction
    from botapp.services.exceptions import PaymentError

    async def not_credited(**kwargs):
        raise PaymentError("the database was down")

    monkeypatch.setattr(bridge, "complete_payment", not_credited)
    started(chat)
    balance = chat.send("/balance", text_has("Баланс"))
    packages = chat.press(balance, "Пополнить", text_has("Выберите пакет"))
    methods = chat.press(packages, "10 ток. — 50 ⭐", has_buttons("Звёзды Telegram"))
    chat.user.press(methods, "Звёзды Telegram")
    result = chat.user.pay(chat.wait(lambda m: "invoice" in m, edits=False))
    chat.wait(text_has(result.charge_id), edits=False)  # "your payment was not credited"
    since = chat.mark()
    chat.user.refund_externally(result)
    alert = emu.wait_for_message(live.id, lambda m: "unknown Stars payment" in text_of(m), 8.0, since=since)
    assert result.charge_id in text_of(alert)
    assert Payment.objects.get().status == "pending" and not Transaction.objects.filter(kind="payment_refund").exists()
    assert [m for m in chat.silence(0.3, since=since)] == [], "the user is told nothing"


@pytest.mark.parametrize("emu", [True], indirect=True)
def test_our_refund_announced_by_telegram_is_not_taken_twice(paid, emu, admin_client, live, caplog):
    from botapp.models import Transaction

    referrer, payer, result = paid
    payment = payment_of(result)
    since = emu.mark()
    done = submit(admin_client, payment, operation_id(open_form(admin_client, payment)))
    assert any("refunded: 1050 ⭐ back to the user" in note for note in notes(done)), notes(done)
    assert eventually(lambda: [e for e in emu.events("refunded_payment", since=since)])

    def seen() -> int:  # the announcement may be handled even before the admin's call returns: once either way
        return sum(handled(caplog, result.charge_id, outcome) for outcome in ("already", "recorded"))

    assert eventually(lambda: seen() == 1), "the bot saw the announcement"
    assert payment_of(result).raw["refund"]["by"] == "alice"
    assert Transaction.objects.filter(payment=payment, kind="payment_refund").count() == 3
    assert balances(payer) == (0, 0) and balances(referrer) == (0, 0)
    assert not [m for m in emu.messages(live.id) if "refunded by Telegram" in text_of(m)], "no alert for our own"
    ledger_clean()
