"""Star subscriptions at the service level (botapp.services.subscriptions): a pending subscription per
plan (reused), the first charge's pre-checkout, each month credited once per charge id (tokens + bonus,
a Payment per month linked to the subscription, the referral reward), the subscriber's locked terms, a
charge of a cancelled or unknown subscription, one running subscription per user, cancelling and
re-enabling, Telegram's updates, the lapse (beat) and its notice, and `check_ledger` after each."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from botapp import tasks
from botapp.management.commands.check_ledger import find_problems
from botapp.models import Payment, StarSubscription, SubscriptionPlan, Transaction, UserBalance
from botapp.services import notify, subscriptions
from botapp.services.exceptions import (
    PaymentError,
    PlanChanged,
    PlanUnavailable,
    SubscriptionExists,
    SubscriptionNotChangeable,
    SubscriptionNotPayable,
    SubscriptionRunning,
    UnknownSubscription,
    UserBanned,
)
from botapp.services.referral import ReferralService
from botapp.services.subscriptions import PERIOD, SubscriptionService

pytestmark = pytest.mark.django_db
D = Decimal
Status = StarSubscription.Status


@pytest.fixture(autouse=True)
def _ledger_stays_clean():
    yield
    assert find_problems() == []


@pytest.fixture
def plan(db) -> SubscriptionPlan:
    return SubscriptionPlan.objects.create(
        name="Тест", name_en="Test", tokens=D(100), bonus_tokens=D(10), price_stars=300
    )


@pytest.fixture
def other_plan(db) -> SubscriptionPlan:
    return SubscriptionPlan.objects.create(name="Другой", tokens=D(40), price_stars=150)


@pytest.fixture
def lapse_notices(monkeypatch) -> list[int]:
    queued: list[int] = []
    monkeypatch.setattr(tasks.notify_subscription_lapsed, "apply_async", lambda args, **kw: queued.append(args[0]))
    return queued


def charge(sub: StarSubscription, charge_id: str, *, first: bool = False, at=None, **overrides):
    """The successful_payment of one month of `sub`, as the handler passes it."""
    expiration = (at or timezone.now()) + PERIOD
    params = {
        "charge_id": charge_id,
        "invoice_payload": sub.invoice_payload,
        "telegram_id": sub.user.telegram_id,
        "total_amount": sub.price_stars,
        "currency": "XTR",
        "expiration": expiration,
        "is_first": first,
        **overrides,
    }
    return SubscriptionService.credit_period(**params)


def balance(user) -> tuple[Decimal, Decimal]:
    row = UserBalance.objects.get(user=user)
    return row.balance, row.bonus_balance


def paid_sub(user, plan, charge_id: str = "stx-1") -> StarSubscription:
    sub = SubscriptionService.subscribe(user_id=user.pk, plan_id=plan.pk)
    charge(sub, charge_id, first=True)
    sub.refresh_from_db()
    return sub


# --- buying ------------------------------------------------------------------------------------------
def test_subscribe_makes_one_pending_subscription_per_plan(make_user, plan, other_plan):
    user = make_user()
    sub = SubscriptionService.subscribe(user_id=user.pk, plan_id=plan.pk)
    assert (sub.status, sub.price_stars, sub.charge_id) == (Status.PENDING, 300, None)
    assert sub.invoice_payload.startswith("sub:") and len(sub.invoice_payload) <= 128
    assert SubscriptionService.subscribe(user_id=user.pk, plan_id=plan.pk).pk == sub.pk  # reused
    assert SubscriptionService.attach_link(subscription_id=sub.pk, link="https://t.me/$one") == "https://t.me/$one"
    assert SubscriptionService.attach_link(subscription_id=sub.pk, link="https://t.me/$two") == "https://t.me/$one"
    other = SubscriptionService.subscribe(user_id=user.pk, plan_id=other_plan.pk)
    assert other.pk != sub.pk  # nothing runs yet: another plan's link may be made

    plan.price_stars = 350  # a new price: a new link (the old one is refused at pre-checkout)
    plan.save()
    repriced = SubscriptionService.subscribe(user_id=user.pk, plan_id=plan.pk)
    assert repriced.pk != sub.pk and repriced.price_stars == 350
    with pytest.raises(PlanChanged):
        SubscriptionService.validate_precheckout(
            invoice_payload=sub.invoice_payload, telegram_id=user.telegram_id, total_amount=300, currency="XTR"
        )


def test_subscribe_refuses_banned_users_and_withdrawn_plans(make_user, plan):
    with pytest.raises(UserBanned):
        SubscriptionService.subscribe(user_id=make_user(is_banned=True).pk, plan_id=plan.pk)
    plan.is_active = False
    plan.save()
    with pytest.raises(PlanUnavailable):
        SubscriptionService.subscribe(user_id=make_user().pk, plan_id=plan.pk)


def test_precheckout_of_the_first_charge(make_user, plan, other_plan):
    user = make_user()
    sub = SubscriptionService.subscribe(user_id=user.pk, plan_id=plan.pk)
    ok = {
        "invoice_payload": sub.invoice_payload,
        "telegram_id": user.telegram_id,
        "total_amount": 300,
        "currency": "XTR",
    }
    assert SubscriptionService.validate_precheckout(**ok).pk == sub.pk
    with pytest.raises(PaymentError):
        SubscriptionService.validate_precheckout(**{**ok, "telegram_id": user.telegram_id + 1})
    with pytest.raises(PlanChanged):
        SubscriptionService.validate_precheckout(**{**ok, "total_amount": 1})
    with pytest.raises(PaymentError):
        SubscriptionService.validate_precheckout(**{**ok, "invoice_payload": "sub:unknown"})

    # Paying another plan's link while this one runs is refused (one subscription at a time).
    second = SubscriptionService.subscribe(user_id=user.pk, plan_id=other_plan.pk)
    charge(sub, "stx-first", first=True)
    with pytest.raises(SubscriptionNotPayable):  # a link is paid once
        SubscriptionService.validate_precheckout(**ok)
    with pytest.raises(SubscriptionRunning):
        SubscriptionService.validate_precheckout(
            **{**ok, "invoice_payload": second.invoice_payload, "total_amount": 150}
        )

    plan.is_active = False
    plan.save()
    third = StarSubscription.objects.create(
        user=make_user(), plan=plan, invoice_payload="sub:withdrawn", price_stars=300
    )
    with pytest.raises(PlanUnavailable):
        SubscriptionService.validate_precheckout(
            **{**ok, "invoice_payload": "sub:withdrawn", "telegram_id": third.user.telegram_id}
        )


# --- crediting -------------------------------------------------------------------------------------
def test_each_month_is_credited_once_per_charge(make_user, plan):
    user = make_user()
    sub = SubscriptionService.subscribe(user_id=user.pk, plan_id=plan.pk)
    start = timezone.now()
    first = charge(sub, "stx-month-1", first=True, at=start)
    assert first.credited and first.first
    assert balance(user) == (D(100), D(10))
    payment = first.payment
    assert (payment.status, payment.provider, payment.amount, payment.currency) == (
        "succeeded",
        "telegram_stars",
        300,
        "XTR",
    )
    assert (payment.tokens, payment.bonus_tokens, payment.subscription_id) == (D(100), D(10), sub.pk)
    assert payment.invoice_payload == f"{sub.invoice_payload}:1" and payment.provider_charge_id == "stx-month-1"
    assert payment.period_end == start + PERIOD
    rows = Transaction.objects.filter(payment=payment)
    assert sorted((r.kind, r.bucket, r.amount) for r in rows) == [
        ("deposit", "bonus", D(10)),
        ("deposit", "main", D(100)),
    ]
    sub.refresh_from_db()
    assert (sub.status, sub.charge_id, sub.last_charge_id, sub.renewals) == (
        Status.ACTIVE,
        "stx-month-1",
        "stx-month-1",
        1,
    )
    assert (sub.period_start, sub.period_end) == (start, start + PERIOD)

    replay = charge(sub, "stx-month-1", first=True, at=start)  # the same update again
    assert not replay.credited and replay.first and replay.payment.pk == payment.pk
    assert balance(user) == (D(100), D(10)) and Payment.objects.filter(subscription=sub).count() == 1

    for month, at in ((2, start + PERIOD), (3, start + 2 * PERIOD)):
        renewal = charge(sub, f"stx-month-{month}", at=at)
        assert renewal.credited and not renewal.first
        assert renewal.payment.invoice_payload == f"{sub.invoice_payload}:{month}"
        assert not charge(sub, f"stx-month-{month}", at=at).credited
    assert balance(user) == (D(300), D(30))
    sub.refresh_from_db()
    assert (sub.renewals, sub.last_charge_id, sub.charge_id) == (3, "stx-month-3", "stx-month-1")
    assert sub.period_end == start + 3 * PERIOD and sub.period_start == start + 2 * PERIOD
    assert Transaction.objects.filter(payment__subscription=sub, kind="deposit").count() == 6


def test_a_subscriber_keeps_the_terms_they_subscribed_at(make_user, plan):
    user = make_user()
    sub = paid_sub(user, plan)
    plan.tokens, plan.bonus_tokens = D(50), D(0)  # the operator edits the plan: for new subscribers
    plan.save()
    charge(sub, "stx-2")
    assert balance(user) == (D(200), D(20))
    newcomer = make_user()
    paid_sub(newcomer, plan, "stx-newcomer")
    assert balance(newcomer) == (D(50), D(0))


def test_a_charge_of_a_cancelled_or_lapsed_subscription_is_credited_and_reactivates_it(make_user, plan):
    user = make_user()
    sub = paid_sub(user, plan)
    SubscriptionService.set_cancelled(user_id=user.pk, subscription_id=sub.pk, cancelled=True)
    assert charge(sub, "stx-2").credited  # Telegram charged anyway: the user paid
    sub.refresh_from_db()
    assert sub.status == Status.ACTIVE and sub.cancelled_at is None
    StarSubscription.objects.filter(pk=sub.pk).update(status=Status.LAPSED)
    assert charge(sub, "stx-3").credited
    sub.refresh_from_db()
    assert sub.status == Status.ACTIVE and sub.renewals == 3
    assert balance(user) == (D(300), D(30))


def test_an_unknown_or_foreign_or_wrong_charge_is_not_credited(make_user, plan):
    user, stranger = make_user(), make_user()
    sub = SubscriptionService.subscribe(user_id=user.pk, plan_id=plan.pk)
    with pytest.raises(UnknownSubscription):
        charge(sub, "stx-x", first=True, invoice_payload="sub:nobody-knows")
    with pytest.raises(UnknownSubscription):
        charge(sub, "stx-x", first=True, telegram_id=stranger.telegram_id)
    with pytest.raises(PaymentError):
        charge(sub, "stx-x", first=True, total_amount=299)
    with pytest.raises(PaymentError):
        charge(sub, "", first=True)
    assert not Payment.objects.filter(provider_charge_id="stx-x").exists()
    assert UserBalance.objects.get(user=user).balance == 0
    sub.refresh_from_db()
    assert sub.status == Status.PENDING


def test_the_referrer_is_rewarded_for_every_paid_month(make_user, plan, settings):
    settings.REFERRAL_FIRST_TOPUP_BONUS = D(10)
    settings.REFERRAL_PERCENT = D(5)
    referrer, friend = make_user(), make_user()
    ReferralService.attach(user_id=friend.pk, code=referrer.referral_code, is_new_user=True)
    sub = paid_sub(friend, plan)
    assert balance(referrer) == (0, D(15))  # first top-up: 10 + 5% of 100
    charge(sub, "stx-2")
    charge(sub, "stx-2")  # replayed: no second reward
    assert balance(referrer) == (0, D(20))
    assert Transaction.objects.filter(user=referrer, kind="referral").count() == 2


def test_a_second_first_charge_of_one_link_is_credited_and_alerted(
    make_user, plan, monkeypatch, django_capture_on_commit_callbacks
):
    from botapp.services import alerts

    raised: list[tuple[str, dict]] = []
    monkeypatch.setattr(alerts, "alert_operators", lambda *, key, **params: raised.append((key, params)))
    user = make_user()
    sub = SubscriptionService.subscribe(user_id=user.pk, plan_id=plan.pk)
    with django_capture_on_commit_callbacks(execute=True):
        charge(sub, "stx-a", first=True)
    assert raised == []
    with django_capture_on_commit_callbacks(execute=True):
        outcome = charge(sub, "stx-b", first=True)  # two pre-checkouts passed: Telegram made two subscriptions
    assert outcome.credited and balance(user) == (D(200), D(20))
    sub.refresh_from_db()
    assert sub.charge_id == "stx-a" and sub.last_charge_id == "stx-b"
    assert [key for key, _ in raised] == ["subscription_duplicate"]
    assert raised[0][1]["first_charge"] == "stx-a" and raised[0][1]["charge_id"] == "stx-b"


# --- one running subscription per user -----------------------------------------------------------
def test_one_running_subscription_per_user(make_user, plan, other_plan, lapse_notices):
    user = make_user()
    sub = paid_sub(user, plan)
    with pytest.raises(SubscriptionExists):
        SubscriptionService.subscribe(user_id=user.pk, plan_id=plan.pk)
    with pytest.raises(SubscriptionRunning):
        SubscriptionService.subscribe(user_id=user.pk, plan_id=other_plan.pk)
    SubscriptionService.set_cancelled(user_id=user.pk, subscription_id=sub.pk, cancelled=True)
    with pytest.raises(SubscriptionRunning):  # cancelled, but its paid period runs
        SubscriptionService.subscribe(user_id=user.pk, plan_id=other_plan.pk)
    StarSubscription.objects.filter(pk=sub.pk).update(period_end=timezone.now() - timedelta(minutes=1))
    switched = SubscriptionService.subscribe(user_id=user.pk, plan_id=other_plan.pk)  # its period is over
    assert switched.status == Status.PENDING and switched.plan_id == other_plan.pk


# --- cancelling, re-enabling, Telegram's updates ---------------------------------------------------------
def test_cancel_and_re_enable(make_user, plan):
    user = make_user()
    pending = SubscriptionService.subscribe(user_id=user.pk, plan_id=plan.pk)
    with pytest.raises(SubscriptionNotChangeable):  # not paid: nothing to cancel in Telegram
        SubscriptionService.edit_target(user_id=user.pk, subscription_id=pending.pk, cancel=True)
    charge(pending, "stx-1", first=True)
    with pytest.raises(SubscriptionNotChangeable):  # someone else's
        SubscriptionService.edit_target(user_id=make_user().pk, subscription_id=pending.pk, cancel=True)
    with pytest.raises(SubscriptionNotChangeable):  # not cancelled
        SubscriptionService.edit_target(user_id=user.pk, subscription_id=pending.pk, cancel=False)
    target = SubscriptionService.edit_target(user_id=user.pk, subscription_id=pending.pk, cancel=True)
    assert (target.telegram_id, target.charge_id) == (user.telegram_id, "stx-1")

    sub = SubscriptionService.set_cancelled(user_id=user.pk, subscription_id=pending.pk, cancelled=True)
    assert sub.status == Status.CANCELLED and sub.cancelled_at is not None and sub.period_end > timezone.now()
    assert SubscriptionService.current(user_id=user.pk).pk == sub.pk
    SubscriptionService.edit_target(user_id=user.pk, subscription_id=sub.pk, cancel=False)
    sub = SubscriptionService.set_cancelled(user_id=user.pk, subscription_id=sub.pk, cancelled=False)
    assert sub.status == Status.ACTIVE and sub.cancelled_at is None

    SubscriptionService.set_cancelled(user_id=user.pk, subscription_id=sub.pk, cancelled=True)
    StarSubscription.objects.filter(pk=sub.pk).update(period_end=timezone.now() - timedelta(seconds=1))
    with pytest.raises(SubscriptionNotChangeable):  # its period is over: subscribe again instead
        SubscriptionService.edit_target(user_id=user.pk, subscription_id=sub.pk, cancel=False)


def test_telegram_updates(make_user, plan, lapse_notices, django_capture_on_commit_callbacks):
    user = make_user()
    sub = paid_sub(user, plan)
    update = {"telegram_id": user.telegram_id, "invoice_payload": sub.invoice_payload}
    assert SubscriptionService.apply_update(**update, state="canceled").status == Status.CANCELLED
    assert SubscriptionService.apply_update(**update, state="canceled") is None  # nothing changed
    assert SubscriptionService.apply_update(**update, state="active").status == Status.ACTIVE
    assert SubscriptionService.apply_update(**{**update, "telegram_id": 1}, state="canceled") is None
    assert SubscriptionService.apply_update(**{**update, "invoice_payload": "sub:x"}, state="canceled") is None
    with django_capture_on_commit_callbacks(execute=True):
        assert SubscriptionService.apply_update(**update, state="failed").status == Status.LAPSED
    with django_capture_on_commit_callbacks(execute=True):
        assert SubscriptionService.apply_update(**update, state="failed") is None
        assert SubscriptionService.apply_update(**update, state="active") is None  # a lapse is not undone
    assert lapse_notices == [sub.pk]
    assert SubscriptionService.current(user_id=user.pk).status == Status.LAPSED


# --- the lapse ---------------------------------------------------------------------------------------
def test_lapse_overdue(make_user, plan, lapse_notices, django_capture_on_commit_callbacks, settings):
    settings.SUBSCRIPTION_LAPSE_GRACE_HOURS = 24
    now = timezone.now()
    within_grace, overdue, cancelled_ended, cancelled_running = (
        paid_sub(make_user(), plan, f"stx-{i}") for i in range(4)
    )
    StarSubscription.objects.filter(pk=within_grace.pk).update(period_end=now - timedelta(hours=23))
    StarSubscription.objects.filter(pk=overdue.pk).update(period_end=now - timedelta(hours=25))
    StarSubscription.objects.filter(pk__in=[cancelled_ended.pk, cancelled_running.pk]).update(status=Status.CANCELLED)
    StarSubscription.objects.filter(pk=cancelled_ended.pk).update(period_end=now - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert SubscriptionService.lapse_overdue(now=now) == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert SubscriptionService.lapse_overdue(now=now) == 0
    statuses = dict(StarSubscription.objects.values_list("pk", "status"))
    assert statuses[overdue.pk] == statuses[cancelled_ended.pk] == Status.LAPSED
    assert statuses[within_grace.pk] == Status.ACTIVE and statuses[cancelled_running.pk] == Status.CANCELLED
    assert sorted(lapse_notices) == sorted([overdue.pk, cancelled_ended.pk])
    assert balance(overdue.user) == (D(100), D(10))  # monthly tokens do not expire

    late = charge(overdue, "stx-late")  # the renewal came after all: credited, active again
    assert late.credited and late.subscription.status == Status.ACTIVE


class FakeSender:
    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    def send_message(self, chat_id: int, text: str, **kwargs) -> None:
        self.sent.append((chat_id, text))


def test_the_lapse_notice_is_sent_once(make_user, plan, monkeypatch):
    fake = FakeSender()
    monkeypatch.setattr(notify, "get_sender", lambda: fake)
    user = make_user(language_code="en")
    sub = paid_sub(user, plan)
    assert subscriptions.send_lapse_notice(subscription_id=sub.pk) is None and fake.sent == []  # not lapsed
    StarSubscription.objects.filter(pk=sub.pk).update(status=Status.LAPSED)
    subscriptions.send_lapse_notice(subscription_id=sub.pk)
    subscriptions.send_lapse_notice(subscription_id=sub.pk)  # a redelivered task
    assert len(fake.sent) == 1
    chat_id, text = fake.sent[0]
    assert chat_id == user.telegram_id and "<b>Test</b> has ended" in text


# --- the Stars reconciliation ----------------------------------------------------------------------
def test_a_charge_the_bot_never_saw_is_credited_by_the_reconciliation(make_user, plan):
    user = make_user()
    sub = paid_sub(user, plan)
    at = timezone.now()
    kwargs = {"invoice_payload": sub.invoice_payload, "user_id": user.telegram_id, "amount": 300, "date": at}
    assert subscriptions.credit_from_ledger(entry_id="stx-missed", **kwargs)
    assert not subscriptions.credit_from_ledger(entry_id="stx-missed", **kwargs)
    assert balance(user) == (D(200), D(20))
    sub.refresh_from_db()
    assert sub.renewals == 2 and sub.period_end == at + PERIOD
    with pytest.raises(UnknownSubscription):
        subscriptions.credit_from_ledger(entry_id="stx-y", **{**kwargs, "invoice_payload": "sub:unknown"})
