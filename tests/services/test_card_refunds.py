"""Refunds of card payments (botapp/services/card_refunds.py) against the fake YooKassa, driven by the
real `yookassa` SDK: a refund made in YooKassa's dashboard reaches the ledger through the `refund.*`
webhook (re-read from the API, recorded once, the operators alerted), refunds of part of the amount take
back their share, the operator's refund goes through `Refund.create` with the form's key, and the daily
reconciliation records a refund whose webhook was lost."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from django.core.management import call_command

from botapp import tasks
from botapp.models import Payment, Transaction
from botapp.services import card_refunds, yookassa_api
from botapp.services.card import CardService
from botapp.services.referral import ReferralService
from botapp.services.refunds import RefundNotAllowed, RefundShortfall
from tests.services import test_card
from tests.services.test_card import balance, deliver, start

pytestmark = pytest.mark.django_db
fake = test_card.fake  # the fake YooKassa and the settings that point the SDK at it (a fixture)


@pytest.fixture
def raised(monkeypatch) -> list[tuple[str, dict]]:
    seen: list[tuple[str, dict]] = []
    monkeypatch.setattr(card_refunds.alerts, "alert_operators", lambda *, key, **params: seen.append((key, params)))
    return seen


@pytest.fixture
def refund_notices(monkeypatch) -> list[int]:
    queued: list[int] = []
    monkeypatch.setattr(tasks.notify_payment_refund, "apply_async", lambda args, **kw: queued.append(args[0]))
    return queued


@pytest.fixture
def paid(make_user, fake, settings, monkeypatch):
    """A referral who paid for Studio by card (2090 ₽: 300 tokens + 15 bonus); the referrer got 10 + 5 %
    of 300 = 25 bonus tokens."""
    monkeypatch.setattr(tasks.notify_card_payment, "apply_async", lambda args, **kw: None)
    settings.REFERRAL_FIRST_TOPUP_BONUS = D(10)
    settings.REFERRAL_PERCENT = D(5)
    referrer, payer = make_user(), make_user()
    ReferralService.attach(user_id=payer.pk, code=referrer.referral_code, is_new_user=True)
    checkout = start(payer, "Studio")
    CardService.apply(
        payment_id=checkout.payment_id, remote=yookassa_api.get_payment(fake.pay(checkout.yookassa_id)["id"])
    )
    payment = Payment.objects.get(pk=checkout.payment_id)
    assert payment.status == "succeeded" and balance(payer) == (D(300), D(15)) and balance(referrer) == (0, D(25))
    return referrer, payer, payment


def dashboard_refund(payment: Payment, amount: str) -> yookassa_api.RemoteRefund:
    """The shop refunds in YooKassa's dashboard (the same API; the bot does not know of it)."""
    return yookassa_api.create_refund(
        payment_id=payment.provider_charge_id, amount=D(amount), currency="RUB", idempotence_key=f"dash-{amount}"
    )


def test_a_refund_made_in_yookassas_dashboard_reaches_the_ledger_once_through_the_webhook(
    paid,
    fake,
    raised,
    refund_notices,
    django_capture_on_commit_callbacks,
):
    referrer, payer, payment = paid
    refund = dashboard_refund(payment, "2090")
    answers = []
    for _ in range(3):  # YooKassa repeats a notification it thinks was lost
        with django_capture_on_commit_callbacks(execute=True):
            answers.append(deliver("refund.succeeded", fake.refunds[refund.id]))
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["outcome"] for a in answers] == ["recorded", "already", "already"]
    payment.refresh_from_db()
    assert payment.status == "refunded" and payment.refunded_at
    assert balance(payer) == (0, 0) and balance(referrer) == (0, 0)
    rows = Transaction.objects.filter(payment=payment, kind="payment_refund")
    assert sorted((r.user_id, r.bucket, r.amount) for r in rows) == sorted(
        [(payer.pk, "main", D(-300)), (payer.pk, "bonus", D(-15)), (referrer.pk, "bonus", D(-25))]
    )
    assert {r.operation_key for r in rows} == {
        f"payment:{payment.pk}:refund:{refund.id}",
        f"referral:payment:{payment.pk}:refund:{refund.id}",
    }
    assert [key for key, _ in raised] == ["card_refunded_externally"]
    assert raised[0][1]["taken"] == "315.00" and raised[0][1]["shortfall"] == "0.00"
    assert refund_notices == [payment.pk]  # the user is told, once
    call_command("check_ledger")


def test_a_forged_refund_notification_changes_nothing(paid, fake, raised):
    _, payer, payment = paid
    forged = {"id": "2f0e1e5a-0015-5000-8000-000000000000", "payment_id": payment.provider_charge_id}
    forged.update(status="succeeded", amount={"value": "2090.00", "currency": "RUB"}, created_at="2026-12-01T00:00:00Z")
    answer = deliver("refund.succeeded", forged)
    assert answer.status_code == 200 and answer.json()["outcome"] == "unknown"  # the API does not know it
    payment.refresh_from_db()
    assert payment.status == "succeeded" and balance(payer) == (D(300), D(15)) and not raised


def test_refunds_of_part_of_the_amount_take_back_their_share_and_add_up_to_the_whole(
    paid,
    fake,
    raised,
    refund_notices,
    django_capture_on_commit_callbacks,
):
    referrer, payer, payment = paid
    first = dashboard_refund(payment, "696.67")  # a third
    assert card_refunds.handle_refund_notification(refund_id=first.id).status == "recorded"
    payment.refresh_from_db()
    assert payment.status == "succeeded" and card_refunds.refunded_amount(payment) == D("696.67")
    assert balance(payer) == (D(200), D(10)) and balance(referrer) == (0, D("16.67"))
    with django_capture_on_commit_callbacks(execute=True):
        rest = dashboard_refund(payment, "1393.33")
        assert card_refunds.handle_refund_notification(refund_id=rest.id).status == "recorded"
    payment.refresh_from_db()
    assert payment.status == "refunded" and payment.raw["refund"]["taken"] == "315.00"
    assert balance(payer) == (0, 0) and balance(referrer) == (0, 0)  # the parts add up exactly
    assert refund_notices == [payment.pk]
    call_command("check_ledger")


def test_a_refund_after_tokens_were_spent_records_the_shortfall(paid, fake, raised, make_user):
    from botapp.services.balance import BalanceService

    _, payer, payment = paid
    BalanceService.admin_adjust(user_id=payer.pk, amount=D(-250), reason="spent", key="spent-1", notify=False)
    refund = dashboard_refund(payment, "2090")
    assert card_refunds.handle_refund_notification(refund_id=refund.id).status == "recorded"
    payment.refresh_from_db()
    assert payment.raw["refund"]["user_shortfall"] == "250.00" and balance(payer) == (0, 0)
    assert raised[0][1]["shortfall"] == "250.00"
    call_command("check_ledger")


def test_the_operators_card_refund_goes_through_yookassa_with_the_forms_key_once(
    paid,
    fake,
    raised,
    refund_notices,
    django_capture_on_commit_callbacks,
):
    referrer, payer, payment = paid
    with django_capture_on_commit_callbacks(execute=True):
        result = card_refunds.refund_card_payment(payment_id=payment.pk, operator="alice", key="form-1")
    assert result.applied
    (request,) = fake.requests_for("create_refund")
    assert request.idempotence_key == "form-1"
    remote = fake.payment(payment.provider_charge_id)
    assert remote["refunded_amount"] == {"value": "2090.00", "currency": "RUB"}
    payment.refresh_from_db()
    assert payment.status == "refunded" and payment.raw["refund"]["by"] == "alice"
    assert balance(payer) == (0, 0) and balance(referrer) == (0, 0)
    # YooKassa's notification of this very refund, and the same form again: nothing more
    (refund_id,) = fake.refunds
    assert deliver("refund.succeeded", fake.refunds[refund_id]).json()["outcome"] == "already"
    again = card_refunds.refund_card_payment(payment_id=payment.pk, operator="alice", key="form-1")
    assert again.replayed and not again.applied and len(fake.requests_for("create_refund")) == 1
    assert raised == [] and refund_notices == [payment.pk]
    call_command("check_ledger")


def test_the_operators_refund_needs_refund_anyway_after_a_spend_and_never_refunds_stars_here(paid, fake):
    from botapp.services.balance import BalanceService

    _, payer, payment = paid
    BalanceService.admin_adjust(user_id=payer.pk, amount=D(-100), reason="spent", key="spent-2", notify=False)
    with pytest.raises(RefundShortfall):
        card_refunds.refund_card_payment(payment_id=payment.pk, operator="alice", key="form-2")
    assert fake.requests_for("create_refund") == []
    result = card_refunds.refund_card_payment(payment_id=payment.pk, operator="alice", key="form-3", refund_anyway=True)
    assert result.applied and result.payment.raw["refund"]["user_shortfall"] == "100.00"
    stars = Payment.objects.create(user=payer, provider="telegram_stars", amount=D(50), currency="XTR", tokens=D(5))
    with pytest.raises(RefundNotAllowed):
        card_refunds.refund_card_payment(payment_id=stars.pk, operator="alice", key="form-4")


def test_the_operators_refund_with_a_lost_answer_is_recorded_by_the_webhook(paid, fake, raised):
    from botapp.services.card_refunds import CardRefundOutcomeUnknown

    _, payer, payment = paid
    fake.lose_answer_next("create_refund")
    with pytest.raises(CardRefundOutcomeUnknown):
        card_refunds.refund_card_payment(payment_id=payment.pk, operator="alice", key="form-5")
    payment.refresh_from_db()
    assert payment.status == "succeeded" and balance(payer) == (D(300), D(15))  # nothing taken yet
    (refund_id,) = fake.refunds  # but YooKassa made it
    assert deliver("refund.succeeded", fake.refunds[refund_id]).json()["outcome"] == "recorded"
    payment.refresh_from_db()
    assert payment.raw["refund"]["by"] == "alice" and raised == []  # the operator's, so no alert


def test_the_reconciliation_records_a_refund_whose_notification_was_lost(paid, fake, raised):
    _, _, payment = paid
    refund = dashboard_refund(payment, "2090")  # no webhook reaches us
    assert card_refunds.reconcile_card(days=7) == {"refund_recorded": 1}
    assert card_refunds.reconcile_card(days=7) == {"refund_already": 1}
    payment.refresh_from_db()
    assert payment.status == "refunded" and payment.raw["refund"]["source"] == "reconcile"
    assert [key for key, _ in raised] == ["card_refunded_externally"] and raised[0][1]["refund_id"] == refund.id
    call_command("check_ledger")


def test_the_reconciliation_credits_a_card_payment_whose_notifications_were_all_lost(make_user, fake, monkeypatch):
    monkeypatch.setattr(tasks.notify_card_payment, "apply_async", lambda args, **kw: None)
    user = make_user()
    checkout = start(user, "Studio")
    fake.pay(checkout.yookassa_id)  # paid; no webhook reaches us, and the expiry sweep has not run yet
    assert card_refunds.reconcile_card(days=7) == {"payment_credited": 1}
    assert card_refunds.reconcile_card(days=7) == {}
    assert Payment.objects.get().status == "succeeded" and balance(user) == (D(300), D(15))
    call_command("check_ledger")


# --- the admin's "Refund card payment…" ---------------------------------------------------------------------
def test_the_admin_refunds_a_card_payment_once_from_its_form(paid, fake, raised, django_user_model):
    import re

    from django.test import Client
    from django.urls import reverse

    referrer, payer, payment = paid
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("alice", password="x", is_staff=True))
    detail = reverse("admin:botapp_payment_refund_card_detail", args=(payment.pk,))
    form = client.get(detail)
    page = form.content.decode()
    assert form.status_code == 200 and "2090.00 RUB back to the card" in page
    key = re.search(r'name="operation_id" value="([0-9a-f-]{36})"', page).group(1)
    done = client.post(detail, {"apply": "1", "operation_id": key}, follow=True)
    notes = [str(m) for m in done.context["messages"]]
    assert any("2090.00 RUB back to the card" in note and "315.00 tokens" in note for note in notes), notes
    again = client.post(detail, {"apply": "1", "operation_id": key}, follow=True)  # the same form, twice
    assert any("already applied" in str(m) for m in again.context["messages"])
    assert len(fake.requests_for("create_refund")) == 1
    assert fake.requests_for("create_refund")[0].idempotence_key == key
    payment.refresh_from_db()
    assert payment.status == "refunded" and balance(payer) == (0, 0) and balance(referrer) == (0, 0)
    stars_form = client.get(reverse("admin:botapp_payment_refund_stars_detail", args=(payment.pk,)))
    assert "already refunded" in stars_form.content.decode()  # either form knows it is done
    call_command("check_ledger")


def test_beat_runs_the_card_reconciliation_daily_and_only_with_a_shop(paid, fake, raised, settings):
    _, _, payment = paid
    assert settings.CELERY_BEAT_SCHEDULE["card-reconcile"]["task"] == "botapp.tasks.reconcile_card"
    assert settings.CELERY_BEAT_SCHEDULE["card-reconcile"]["schedule"] == settings.CARD_RECONCILE_SECONDS == 86400
    dashboard_refund(payment, "100")
    assert tasks.reconcile_card() == {"refund_recorded": 1}
    settings.YOOKASSA_SHOP_ID = ""
    assert tasks.reconcile_card() == {}


# --- concurrent notifications on PostgreSQL ------------------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_20_concurrent_refund_notifications_take_back_once(make_user, fake, raised, monkeypatch):
    import json
    import threading

    from django.db import connection
    from django.test import Client

    from sandbox.yookassa import notification_body
    from tests.services.test_card import WEBHOOK, YOOKASSA_IP

    monkeypatch.setattr(tasks.notify_card_payment, "apply_async", lambda args, **kw: None)
    monkeypatch.setattr(tasks.notify_payment_refund, "apply_async", lambda args, **kw: None)
    user = make_user()
    checkout = start(user, "Studio")
    CardService.apply(
        payment_id=checkout.payment_id, remote=yookassa_api.get_payment(fake.pay(checkout.yookassa_id)["id"])
    )
    payment = Payment.objects.get(pk=checkout.payment_id)
    refund = dashboard_refund(payment, "2090")
    body = json.dumps(notification_body("refund.succeeded", fake.refunds[refund.id]))
    barrier = threading.Barrier(20)
    outcomes: list = []
    lock = threading.Lock()

    def deliver_once() -> None:
        try:
            barrier.wait()
            response = Client().post(WEBHOOK, data=body, content_type="application/json", REMOTE_ADDR=YOOKASSA_IP)
            result = (response.status_code, response.json()["outcome"])
        except Exception as exc:  # asserted below
            result = exc
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=deliver_once) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes, key=str) == sorted([(200, "already")] * 19 + [(200, "recorded")], key=str), outcomes
    assert Transaction.objects.filter(payment=payment, kind="payment_refund").count() == 2  # main + bonus
    assert balance(user) == (0, 0) and len(raised) == 1
    call_command("check_ledger")
