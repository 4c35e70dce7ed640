"""Star subscriptions end to end: a user opens a plan from the top-up screen and pays its link in the Bot
API emulator (the real dispatcher polling it); the first month and each renewal are credited once, a
replayed update credits nothing; cancelling and re-enabling from the profile (editUserStarSubscription),
the user's own changes in Telegram (`subscription` updates), a failed renewal and the lapse task (the
user told once), a recurring charge of a subscription we do not know (the operators alerted, nothing
credited) and the reconciliation crediting a month the bot missed. `check_ledger` after each test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from sandbox.telegram import button_texts, inline_buttons
from tests.bot.conftest import Chat, has_buttons, started, text_has, text_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
D = Decimal


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


@pytest.fixture(autouse=True)
def ledger_clean() -> Iterator[None]:
    yield
    from django.core.management import call_command

    call_command("check_ledger")  # raises CommandError on any difference


def balances(chat: Chat) -> tuple[Decimal, Decimal]:
    from botapp.models import UserBalance

    row = UserBalance.objects.get(user__telegram_id=chat.id)
    return row.balance, row.bonus_balance


def subscription(chat: Chat):
    from botapp.models import StarSubscription

    return StarSubscription.objects.select_related("plan").get(user__telegram_id=chat.id)


def link_of(message: dict) -> str:
    urls = [b["url"] for b in inline_buttons(message) if b.get("url")]
    assert len(urls) == 1, message
    return urls[0]


def open_plan(chat: Chat, plan: str = "Лайт") -> dict:
    """/balance -> Top up -> Monthly subscription -> the plan's screen."""
    balance = chat.send("/balance", text_has("Баланс"))
    packages = chat.press(balance, "Пополнить", has_buttons("Подписка на месяц"))
    plans = chat.press(packages, "Подписка на месяц", text_has("Подписка на месяц", "Лайт", "Про"))
    return chat.press(plans, plan, text_has("Каждый месяц"))


def subscribe(chat: Chat):
    """Open the Light plan and pay its link: the first month. -> the emulator's PaymentResult."""
    screen = open_plan(chat)
    assert "⭐ Подписаться за 500 ⭐/мес." in button_texts(screen)
    result = chat.user.pay(link_of(screen))
    assert result.ok, result.error_message
    chat.wait(text_has("Подписка Лайт оформлена"), edits=False)
    return result


def profile(chat: Chat) -> dict:
    menu = started(chat)
    return chat.press(menu, "Профиль", text_has("Уровень"))


# --- subscribe, renewals, replays ------------------------------------------------------------------
def test_subscribe_then_two_renewals_each_credited_once(chat, live, emu):
    from botapp.models import Payment, StarSubscription, Transaction

    started(chat)
    screen = open_plan(chat)
    assert "150" in text_of(screen) and "500" in text_of(screen) and "Токены не сгорают" in text_of(screen)
    link = link_of(screen)
    again = open_plan(chat)  # the plan opened again: the same pending subscription and link
    assert link_of(again) == link and StarSubscription.objects.count() == 1
    sub = subscription(chat)
    assert (sub.status, sub.invoice_link, sub.price_stars) == ("pending", link, 500)

    first = chat.user.pay(link)
    assert first.ok and first.subscription_id
    done = chat.wait(text_has("Подписка Лайт оформлена"), edits=False)
    assert "+150 ток." in text_of(done) and "+15 бонусных" in text_of(done) and "Баланс: 165" in text_of(done)
    assert balances(chat) == (D(150), D(15))
    sub = subscription(chat)
    assert (sub.status, sub.charge_id, sub.renewals) == ("active", first.charge_id, 1)
    assert emu.subscription(first).expiration_date == int(sub.period_end.timestamp())

    since = chat.mark()
    chat.user.replay_payment(first)  # the first charge delivered twice
    assert chat.silence(0.5, since=since) == []
    assert balances(chat) == (D(150), D(15))

    for month in (2, 3):
        renewal = chat.user.renew_subscription(first)
        assert renewal.ok
        chat.wait(text_has("Подписка Лайт продлена", "+150 ток."), edits=False)
        assert balances(chat) == (D(150) * month, D(15) * month)
    since = chat.mark()
    chat.user.replay_payment(renewal)  # a renewal delivered twice
    assert chat.silence(0.5, since=since) == []
    assert balances(chat) == (D(450), D(45))

    sub = subscription(chat)
    assert (sub.renewals, sub.last_charge_id) == (3, renewal.charge_id)
    assert sub.period_end.timestamp() == emu.subscription(first).expiration_date
    payments = Payment.objects.filter(subscription=sub).order_by("pk")
    assert [p.provider_charge_id for p in payments] == emu.subscription(first).charge_ids
    assert [p.invoice_payload for p in payments] == [f"{sub.invoice_payload}:{n}" for n in (1, 2, 3)]
    assert Transaction.objects.filter(payment__subscription=sub, kind="deposit").count() == 6

    # Subscribed: the plan offers no second link.
    screen = open_plan(chat)
    assert "У вас уже есть эта подписка" in text_of(screen) and not any(b.get("url") for b in inline_buttons(screen))
    # The link paid again (a second Telegram subscription) is refused at pre-checkout.
    twice = chat.user.pay(link)
    assert not twice.ok and "уже оплачена" in (twice.error_message or "")


# --- cancel and re-enable from the profile -----------------------------------------------------------
def test_cancel_and_re_enable_from_the_profile(chat, live, emu):
    started(chat)
    first = subscribe(chat)
    card = profile(chat)
    assert "Подписка: Лайт, продление" in text_of(card)

    cancelled = chat.press(card, "Отменить подписку", text_has("отменена, действует до"))
    assert "Возобновить подписку" in " ".join(button_texts(cancelled))
    assert [e.data["is_canceled"] for e in emu.events("subscription_edit")] == [True]
    assert subscription(chat).status == "cancelled" and not emu.subscription_will_renew(first)
    refused = chat.user.renew_subscription(first)
    assert not refused.ok

    resumed = chat.press(cancelled, "Возобновить подписку", text_has("Подписка: Лайт, продление"))
    assert "✖️ Отменить подписку" in button_texts(resumed)
    assert [e.data["is_canceled"] for e in emu.events("subscription_edit")] == [True, False]
    assert subscription(chat).status == "active" and emu.subscription_will_renew(first)
    assert chat.user.renew_subscription(first).ok
    chat.wait(text_has("Подписка Лайт продлена"), edits=False)
    assert balances(chat) == (D(300), D(30))


def test_changes_made_in_telegram_and_a_failed_renewal(chat, live, emu):
    started(chat)
    first = subscribe(chat)
    chat.user.cancel_subscription(first)
    chat.wait(text_has("Ваша подписка Лайт отменена"), edits=False)
    assert subscription(chat).status == "cancelled"
    chat.user.restore_subscription(first)
    chat.wait(text_has("снова активна"), edits=False)
    assert subscription(chat).status == "active"

    chat.user.fail_renewal(first)
    chat.wait(text_has("закончилась"), edits=False)
    assert subscription(chat).status == "lapsed"
    assert balances(chat) == (D(150), D(15)), "monthly tokens do not expire"
    card = profile(chat)
    assert "закончилась" in text_of(card) and "✖️ Отменить подписку" not in button_texts(card)
    # A new subscription can be taken after a lapse.
    screen = open_plan(chat)
    assert "⭐ Подписаться за 500 ⭐/мес." in button_texts(screen)


# --- the lapse task ----------------------------------------------------------------------------------
def test_the_lapse_task_ends_an_unrenewed_subscription_and_tells_the_user_once(chat, live, settings):
    from botapp import tasks
    from botapp.models import StarSubscription

    settings.SUBSCRIPTION_LAPSE_GRACE_HOURS = 24
    started(chat)
    subscribe(chat)
    sub = subscription(chat)
    StarSubscription.objects.filter(pk=sub.pk).update(period_end=timezone.now() - timedelta(hours=2))
    assert tasks.lapse_subscriptions() == 0  # within the grace: the renewal may still come
    StarSubscription.objects.filter(pk=sub.pk).update(period_end=timezone.now() - timedelta(hours=25))
    since = chat.mark()
    assert tasks.lapse_subscriptions() == 1
    notice = chat.wait(text_has("закончилась"), since=since, edits=False)
    assert "Лайт" in text_of(notice)
    assert tasks.lapse_subscriptions() == 0
    tasks.notify_subscription_lapsed(sub.pk)  # a redelivered notice task
    assert [m for m in chat.silence(0.4, since=since) if "закончилась" in text_of(m)] == [notice]
    assert subscription(chat).status == "lapsed" and balances(chat) == (D(150), D(15))


# --- what cannot be credited, and the reconciliation ----------------------------------------------------
def test_a_recurring_charge_of_an_unknown_subscription_alerts_the_operators(chat, live, emu):
    from botapp.models import Payment, StarSubscription

    started(chat)
    first = subscribe(chat)
    sub = subscription(chat)
    # Our record of this subscription is gone (say, restored from an old backup): Telegram still charges it.
    StarSubscription.objects.filter(pk=sub.pk).update(invoice_payload="sub:renamed")
    since = chat.mark()
    renewal = chat.user.renew_subscription(first)
    assert renewal.ok
    chat.wait(text_has(renewal.charge_id), since=since, edits=False)  # "could not be credited: <code>"
    alert = emu.wait_for_message(live.id, text_has("Payment not credited", renewal.charge_id), timeout=8)
    assert "No subscription of ours has this invoice" in text_of(alert)
    assert not Payment.objects.filter(provider_charge_id=renewal.charge_id).exists()
    assert balances(chat) == (D(150), D(15))


def test_the_reconciliation_credits_a_renewal_the_bot_missed(chat, live, emu, monkeypatch):
    from botapp import bridge
    from botapp.services import reconcile
    from botapp.services.exceptions import PaymentError

    started(chat)
    first = subscribe(chat)

    async def down(**kwargs):
        raise PaymentError("the database was down")

    monkeypatch.setattr(bridge, "credit_subscription_period", down)
    renewal = chat.user.renew_subscription(first)
    chat.wait(text_has(renewal.charge_id), edits=False)
    assert balances(chat) == (D(150), D(15))
    monkeypatch.undo()

    report = reconcile.reconcile_stars(days=30)
    assert [(f.kind, f.charge_id, f.fixed) for f in report.findings] == [("credited", renewal.charge_id, True)]
    assert balances(chat) == (D(300), D(30))
    assert subscription(chat).renewals == 2
    assert reconcile.reconcile_stars(days=30).findings == []  # run again: nothing twice
    since = chat.mark()
    chat.user.replay_payment(renewal)  # and the update, should it come after all, credits nothing
    assert chat.silence(0.5, since=since) == []
    assert balances(chat) == (D(300), D(30))
