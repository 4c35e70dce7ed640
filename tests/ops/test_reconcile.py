"""The Stars reconciliation (botapp.services.reconcile, `manage.py reconcile_stars`, the daily beat task)
against the Bot API emulator's Stars ledger, with payments made through the real dispatcher: a charge
the bot failed to credit is credited once (also when a run is interrupted and run again), a refund
Telegram made that we missed is taken back once, and the other differences are flagged, with a
non-zero exit and one operator alert per run."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from botapp.services import reconcile
from tests.bot.conftest import (  # noqa: F401  (the bot's fixtures: the emulator and our dispatcher polling it)
    _bot_settings,
    bot,
    chat_factory,
    emu,
    eventually,
    has_buttons,
    redis_prefix,
    started,
    text_has,
)

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal


@pytest.fixture
def live(emu, settings):  # noqa: F811
    """The one sender pointed at the emulator, Celery tasks inline."""
    from django.core.cache import cache

    from botapp.telegram.sender import close_sender
    from config.celery import app

    cache.clear()
    settings.BOT_TOKEN = emu.token
    settings.TELEGRAM_API_URL = emu.base_url
    settings.TELEGRAM_GLOBAL_RATE = settings.TELEGRAM_CHAT_RATE = settings.TELEGRAM_AUX_RATE = 1000
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield emu
    finally:
        app.conf.task_always_eager = eager
        close_sender()


@pytest.fixture
def alerts_raised(monkeypatch) -> list[dict]:
    """The reconciliation's operator alerts (the others, e.g. the payment handler's, are left out)."""
    seen: list[dict] = []

    def alert_operators(*, key: str, **params) -> bool:
        if key == "stars_reconcile":
            seen.append({"key": key, **params})
        return True

    monkeypatch.setattr(reconcile.alerts, "alert_operators", alert_operators)
    return seen


@pytest.fixture
def crediting_fails(monkeypatch):
    """Switch: while on, the bot's successful_payment handling fails (the money is taken, nothing credited)."""
    from botapp import bridge
    from botapp.services.exceptions import PaymentError

    real = bridge.complete_payment
    state = {"on": False}

    async def complete_payment(**kwargs):
        if state["on"]:
            raise PaymentError("the database was down")
        return await real(**kwargs)

    monkeypatch.setattr(bridge, "complete_payment", complete_payment)
    return state


def pay(chat, *, credited: bool = True):
    """/start, then pay 50 ⭐ for Start (10 tokens) through the bot's screens -> the PaymentResult."""
    started(chat)
    balance = chat.send("/balance", text_has("Баланс"))
    packages = chat.press(balance, "Пополнить", text_has("Выберите пакет"))
    methods = chat.press(packages, "10 ток. — 50 ⭐", has_buttons("Звёзды Telegram"))
    chat.user.press(methods, "Звёзды Telegram")
    result = chat.user.pay(chat.wait(lambda m: "invoice" in m, edits=False))
    assert result.ok, result.error_message
    chat.wait(text_has("Оплата прошла" if credited else result.charge_id), edits=False)
    return result


def deposits(charge_id: str) -> int:
    from botapp.models import Transaction

    return Transaction.objects.filter(kind="deposit", payment__provider_charge_id=charge_id).count()


def kinds(report) -> list[tuple[str, bool]]:
    return sorted((finding.kind, finding.fixed) for finding in report.findings)


def run_command(*args: str) -> tuple[bool, str]:
    from io import StringIO

    out = StringIO()
    try:
        call_command("reconcile_stars", *args, stdout=out)
    except CommandError as exc:
        return False, out.getvalue() + str(exc)
    return True, out.getvalue()


# --- the command ---------------------------------------------------------------------------------------------
def test_agreeing_ledgers_report_ok(chat_factory, live, alerts_raised):  # noqa: F811
    from botapp.telegram import sender

    pay(chat_factory("Ann"))
    ok, output = run_command("--days", "30")
    assert ok, output
    assert "1 payment(s) and 0 refund(s) on Telegram, 1 credited payment(s) of ours" in output
    assert sender._sender is None  # the command closed its HTTP session (no "Unclosed connector" at exit)
    assert "OK: Telegram's ledger and our payments agree." in output
    assert alerts_raised == []


def test_reconciliation_fixes_what_it_can_and_flags_the_rest(
    chat_factory,  # noqa: F811
    live,
    emu,  # noqa: F811
    alerts_raised,
    crediting_fails,
    monkeypatch,
    caplog,
):
    from botapp import bridge
    from botapp.models import Payment, TgUser, TopUpPackage, UserBalance
    from botapp.services import refunds
    from botapp.services.payments import PaymentService

    fine = pay(chat_factory("Fine"))
    crediting_fails["on"] = True
    lost = pay(chat_factory("Lost"), credited=False)  # paid on Telegram, never credited
    stranger = pay(chat_factory("Stranger"), credited=False)  # paid for a payload we no longer have
    crediting_fails["on"] = False
    Payment.objects.filter(status="pending", user__first_name="Stranger").update(invoice_payload="topup:gone")
    ghost_user = TgUser.objects.get(first_name="Fine")
    ghost = PaymentService.create_invoice(user_id=ghost_user.pk, package_id=TopUpPackage.objects.get(name="Start").pk)
    PaymentService.complete(  # credited here with a charge Telegram never made
        invoice_payload=ghost.invoice_payload, provider_charge_id="stx-ghost", total_amount=50, currency="XTR"
    )
    missed = chat_factory("Missed")
    missed_payment = pay(missed)

    async def lost_message(**kwargs):
        raise ConnectionError("the bot was down")

    monkeypatch.setattr(bridge, "record_external_refund", lost_message)
    missed.user.refund_externally(missed_payment)  # Telegram refunds; the bot loses the message
    mine = pay(chat_factory("Mine"))
    refunds.record_refund(  # marked refunded here, never refunded on Telegram
        payment_id=Payment.objects.get(provider_charge_id=mine.charge_id).pk, by="bob", source="admin"
    )
    assert eventually(lambda: "refunded_payment not recorded" in caplog.text), "the bot got and lost the message"

    ok, output = run_command()
    assert not ok and "Stars reconciliation: 5 finding(s), 2 fixed" in output, output
    assert f"FIXED credited: charge {lost.charge_id}" in output
    assert f"FLAG  unknown_payload: charge {stranger.charge_id}" in output and "topup:" in output
    assert "FLAG  unknown_to_telegram: charge stx-ghost" in output
    assert f"FIXED refund_recorded: charge {missed_payment.charge_id}" in output
    assert f"FLAG  refund_unknown_to_telegram: charge {mine.charge_id}" in output and "by bob" in output
    assert fine.charge_id not in output

    lost_user = TgUser.objects.get(first_name="Lost")
    assert UserBalance.objects.get(user=lost_user).balance == D(10) and deposits(lost.charge_id) == 1
    assert Payment.objects.get(provider_charge_id=lost.charge_id).raw["success"]["by"] == "reconciliation"
    assert UserBalance.objects.get(user__first_name="Missed").balance == 0
    assert Payment.objects.get(provider_charge_id=missed_payment.charge_id).raw["refund"]["by"] == "reconciliation"
    assert [alert["key"] for alert in alerts_raised] == ["stars_reconcile"], "one alert per run"
    assert (alerts_raised[0]["count"], alerts_raised[0]["fixed"]) == (5, 2)
    assert lost.charge_id in alerts_raised[0]["summary"]

    ok, output = run_command("--no-alert")  # again: the fixes are done, the flags stay
    assert not ok and "3 finding(s), 0 fixed" in output, output
    assert deposits(lost.charge_id) == 1 and UserBalance.objects.get(user=lost_user).balance == D(10)
    assert len(alerts_raised) == 1
    call_command("check_ledger")


def test_an_interrupted_run_credits_nothing_twice(chat_factory, live, crediting_fails, monkeypatch):  # noqa: F811
    from botapp.services.payments import PaymentService

    crediting_fails["on"] = True
    first = pay(chat_factory("First"), credited=False)
    second = pay(chat_factory("Second"), credited=False)
    crediting_fails["on"] = False
    real = PaymentService.complete
    calls: list[str] = []

    def dies_on_the_second(**kwargs):
        calls.append(kwargs["provider_charge_id"])
        if len(calls) == 2:
            raise SystemExit("the worker was killed")
        return real(**kwargs)

    monkeypatch.setattr(reconcile.PaymentService, "complete", staticmethod(dies_on_the_second))
    with pytest.raises(SystemExit):
        reconcile.reconcile_stars(days=30)
    assert (deposits(first.charge_id), deposits(second.charge_id)) == (1, 0)

    monkeypatch.setattr(reconcile.PaymentService, "complete", staticmethod(real))
    report = reconcile.reconcile_stars(days=30)
    assert kinds(report) == [("credited", True)] and report.findings[0].charge_id == second.charge_id
    assert (deposits(first.charge_id), deposits(second.charge_id)) == (1, 1)
    assert reconcile.reconcile_stars(days=30).ok
    call_command("check_ledger")


def test_only_the_window_is_compared_but_the_whole_ledger_is_read(chat_factory, live, crediting_fails):  # noqa: F811
    from botapp.telegram.sender import get_sender

    crediting_fails["on"] = True
    pay(chat_factory("Old"), credited=False)
    crediting_fails["on"] = False
    pay(chat_factory("New"))
    later = timezone.now() + timedelta(days=40)
    report = reconcile.reconcile_stars(days=30, now=later)  # both payments are older than the window
    assert report.ok and (report.transactions, report.telegram_payments, report.our_payments) == (2, 0, 0)

    entries, pages = reconcile.read_ledger(get_sender(), page_size=1)
    assert (len(entries), pages) == (2, 3) and [e.kind for e in entries] == ["payment", "payment"]


def test_the_beat_runs_it_daily_on_the_ticks_queue(settings, chat_factory, live, alerts_raised):  # noqa: F811
    from botapp import tasks

    entry = settings.CELERY_BEAT_SCHEDULE["stars-reconcile"]
    assert entry["task"] == "botapp.tasks.reconcile_stars" and entry["schedule"] == 86400.0
    assert settings.CELERY_TASK_ROUTES["botapp.tasks.reconcile_stars"] == {"queue": settings.CELERY_TICK_QUEUE}
    assert settings.CELERY_TASK_ROUTES["botapp.tasks.notify_payment_refund"] == {"queue": settings.CELERY_SEND_QUEUE}
    pay(chat_factory("Ann"))
    counts = tasks.reconcile_stars.apply().get()
    assert counts["telegram_payments"] == 1 and counts["findings"] == 0
