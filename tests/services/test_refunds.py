"""Refunds of Stars payments at the service level (botapp.services.refunds), with a stand-in sender:
what is taken back (the payment's tokens and bonus from their buckets, the referral reward from the
referrer), exactly once whatever calls it, the rule when tokens were spent (refused unless "refund
anyway", then the shortfall recorded as a loss), Telegram's refusals and unknown outcomes (nothing
changes), a refund made elsewhere, the refunded_payment path and the user's notice."""

from __future__ import annotations

from decimal import Decimal

import pytest

from botapp import tasks
from botapp.management.commands.check_ledger import find_problems
from botapp.models import Payment, TopUpPackage, Transaction, UserBalance
from botapp.services import refunds
from botapp.services.balance import BalanceService
from botapp.services.payments import PaymentService
from botapp.services.referral import ReferralService
from botapp.telegram.sender import OutcomeUnknown, SendRejected

pytestmark = pytest.mark.django_db
D = Decimal


class FakeSender:
    """The sender's refund_star_payment: records the calls, answers as scripted (an exception or None)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []
        self.answers: list[Exception | None] = []

    def refund_star_payment(self, user_id: int, charge_id: str) -> None:
        self.calls.append((user_id, charge_id))
        answer = self.answers.pop(0) if self.answers else None
        if answer is not None:
            raise answer


@pytest.fixture
def sender(monkeypatch) -> FakeSender:
    fake = FakeSender()
    monkeypatch.setattr(refunds, "get_sender", lambda: fake)
    return fake


@pytest.fixture
def notices(monkeypatch) -> list[int]:
    """The notify_payment_refund tasks queued (payment ids), instead of a broker."""
    queued: list[int] = []
    monkeypatch.setattr(tasks.notify_payment_refund, "apply_async", lambda args, **kw: queued.append(args[0]))
    return queued


@pytest.fixture
def raised(monkeypatch) -> list[tuple[str, dict]]:
    """The operator alerts raised (key, params)."""
    seen: list[tuple[str, dict]] = []
    monkeypatch.setattr(refunds.alerts, "alert_operators", lambda *, key, **params: seen.append((key, params)))
    return seen


@pytest.fixture
def shop(make_user, settings):
    """A referrer and a referral who paid for Studio (300 tokens + 15 bonus) with Stars: the referrer got
    10 + 5% of 300 = 25 bonus tokens."""
    settings.REFERRAL_FIRST_TOPUP_BONUS = D(10)
    settings.REFERRAL_PERCENT = D(5)
    referrer, payer = make_user(), make_user()
    ReferralService.attach(user_id=payer.pk, code=referrer.referral_code, is_new_user=True)
    invoice = PaymentService.create_invoice(user_id=payer.pk, package_id=TopUpPackage.objects.get(name="Studio").pk)
    outcome = PaymentService.complete(
        invoice_payload=invoice.invoice_payload,
        provider_charge_id="stx-studio-1",
        total_amount=int(invoice.amount),
        currency="XTR",
    )
    assert outcome.credited
    return referrer, payer, outcome.payment


def balance(user) -> tuple[Decimal, Decimal]:
    row = UserBalance.objects.get(user=user)
    return row.balance, row.bonus_balance


def refund(payment, key="form-1", **kw):
    return refunds.refund_stars_payment(payment_id=payment.pk, operator="alice", key=key, **kw)


# --- what is taken back, once ------------------------------------------------------------------------------
def test_refund_takes_back_the_tokens_the_bonus_and_the_referral_reward_once(
    shop, sender, notices, django_capture_on_commit_callbacks
):
    referrer, payer, payment = shop
    assert balance(payer) == (D(300), D(15)) and balance(referrer) == (D(0), D(25))
    plan = refunds.plan_refund(payment_id=payment.pk)
    assert (plan.user.credited, plan.user.shortfall, plan.referrer.credited, plan.shortfall) == (D(315), 0, D(25), 0)

    with django_capture_on_commit_callbacks(execute=True):
        result = refund(payment)
    assert result.applied and not result.refunded_elsewhere
    assert sender.calls == [(payer.telegram_id, "stx-studio-1")]
    assert balance(payer) == (0, 0) and balance(referrer) == (0, 0)
    rows = Transaction.objects.filter(payment=payment, kind="payment_refund")
    assert sorted((r.user_id, r.bucket, r.amount, r.operation_key) for r in rows) == sorted(
        [
            (payer.pk, "main", D(-300), f"payment:{payment.pk}:refund"),
            (payer.pk, "bonus", D(-15), f"payment:{payment.pk}:refund"),
            (referrer.pk, "bonus", D(-25), f"referral:payment:{payment.pk}:refund"),
        ]
    )
    payment.refresh_from_db()
    assert payment.status == "refunded" and payment.refunded_at is not None
    assert payment.raw["refund"]["by"] == "alice" and payment.raw["refund"]["shortfall"] == "0.00"
    assert payment.raw["refund"]["taken"] == "315.00" and payment.raw["refund"]["referral_taken"] == "25.00"
    assert notices == [payment.pk]
    assert ReferralService.stats(user_id=referrer.pk)["earned"] == 0

    with django_capture_on_commit_callbacks(execute=True):
        again = refund(payment)  # the same form submitted twice
    assert again.replayed and not again.applied
    with pytest.raises(refunds.AlreadyRefunded, match="already refunded"):
        refund(payment, key="another-form")
    with django_capture_on_commit_callbacks(execute=True):
        assert not refunds.record_refund(payment_id=payment.pk, by="x", source="telegram").applied
    assert len(sender.calls) == 1 and rows.count() == 3 and notices == [payment.pk]
    assert find_problems() == []


def test_mark_refunded_is_the_same_path(shop):
    referrer, payer, payment = shop
    PaymentService.mark_refunded(payment_id=payment.pk)
    PaymentService.mark_refunded(payment_id=payment.pk)
    assert balance(payer) == (0, 0) and balance(referrer) == (0, 0)
    assert Transaction.objects.filter(kind="payment_refund").count() == 3
    with pytest.raises(refunds.RefundNotAllowed):
        PaymentService.mark_refunded(
            payment_id=PaymentService.create_invoice(user_id=payer.pk, package_id=payment.package_id).pk
        )


# --- the rule when tokens were spent -----------------------------------------------------------------------
def test_spent_tokens_refuse_the_refund_unless_refund_anyway(shop, sender):
    referrer, payer, payment = shop
    BalanceService.charge(user_id=payer.pk, amount=D(40), key="gen:1")  # 15 bonus first, then 25 main
    assert balance(payer) == (D(275), 0)
    with pytest.raises(refunds.RefundShortfall, match=r"40\.00 of the tokens") as refused:
        refund(payment)
    assert "refund anyway" in refused.value.message
    assert sender.calls == [], "refused before Telegram is asked"
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"

    result = refund(payment, refund_anyway=True)
    assert result.applied and result.plan.shortfall == D(40)
    assert balance(payer) == (0, 0) and balance(referrer) == (0, 0), "what is left, never below zero"
    payment.refresh_from_db()
    assert payment.raw["refund"]["shortfall"] == "40.00" and payment.raw["refund"]["user_shortfall"] == "40.00"
    assert payment.raw["refund"]["taken"] == "275.00"
    row = Transaction.objects.get(payment=payment, user=payer, kind="payment_refund")
    assert "shortfall 40.00 tokens recorded as a loss" in row.description and "alice" in row.description
    assert find_problems() == []


def test_a_referrer_who_spent_the_reward_needs_refund_anyway_too(shop, sender):
    referrer, payer, payment = shop
    BalanceService.admin_adjust(
        user_id=referrer.pk, amount=D(-20), reason="spent", key="t:1", bucket="bonus", notify=False
    )
    with pytest.raises(refunds.RefundShortfall, match=r"the referrer has 5\.00 of the 25\.00 reward"):
        refund(payment)
    refund(payment, refund_anyway=True)
    payment.refresh_from_db()
    assert payment.raw["refund"]["referrer_shortfall"] == "20.00" and payment.raw["refund"]["shortfall"] == "20.00"
    assert balance(referrer) == (0, 0) and balance(payer) == (0, 0)
    reward_back = Transaction.objects.get(user=referrer, kind="payment_refund")
    assert reward_back.amount == D(-5) and "shortfall 20.00" in reward_back.description


def test_everything_spent_still_refunds_with_refund_anyway(shop, sender):
    _, payer, payment = shop
    BalanceService.charge(user_id=payer.pk, amount=D(315), key="gen:all")
    result = refund(payment, refund_anyway=True)
    assert result.plan.user.taken == 0
    assert not Transaction.objects.filter(user=payer, kind="payment_refund").exists(), "no zero rows"
    assert Payment.objects.get(pk=payment.pk).raw["refund"]["user_shortfall"] == "315.00"


# --- Telegram's answers ------------------------------------------------------------------------------------
def test_telegram_refusing_changes_nothing(shop, sender, notices):
    _, payer, payment = shop
    rows = Transaction.objects.count()
    sender.answers = [SendRejected("Telegram server says - Bad Request: CHARGE_NOT_FOUND")]
    with pytest.raises(refunds.RefundRefused, match="Telegram refused the refund: CHARGE_NOT_FOUND"):
        refund(payment)
    assert Transaction.objects.count() == rows and balance(payer) == (D(300), D(15))
    assert Payment.objects.get(pk=payment.pk).status == "succeeded" and notices == []


def test_an_unknown_outcome_changes_nothing_and_a_retry_records_it(shop, sender):
    referrer, payer, payment = shop
    sender.answers = [OutcomeUnknown("refundStarPayment: timeout")]
    with pytest.raises(refunds.RefundOutcomeUnknown, match="try again"):
        refund(payment)
    assert Payment.objects.get(pk=payment.pk).status == "succeeded" and balance(payer) == (D(300), D(15))
    # the first call had gone through: Telegram answers "already refunded", which is recorded
    sender.answers = [SendRejected("Telegram server says - Bad Request: CHARGE_ALREADY_REFUNDED")]
    result = refund(payment, key="form-2")
    assert result.applied and result.refunded_elsewhere
    assert balance(payer) == (0, 0) and balance(referrer) == (0, 0)
    assert Payment.objects.get(pk=payment.pk).raw["refund"]["refunded_elsewhere"] is True


@pytest.mark.parametrize("status", ["pending", "cancelled", "failed"])
def test_only_a_successful_stars_payment_is_refunded(make_user, sender, status):
    user = make_user()
    payment = PaymentService.create_invoice(user_id=user.pk, package_id=TopUpPackage.objects.get(name="Basic").pk)
    Payment.objects.filter(pk=payment.pk).update(status=status)
    with pytest.raises(refunds.RefundNotAllowed):
        refund(payment)
    Payment.objects.filter(pk=payment.pk).update(status="succeeded", provider="yookassa", provider_charge_id="yk-1")
    with pytest.raises(refunds.RefundNotAllowed, match="Telegram Stars"):
        refund(payment)
    assert sender.calls == []


# --- refunded_payment: a refund Telegram made ---------------------------------------------------------------
def test_a_refund_by_telegram_is_recorded_once_and_alerted(shop, raised, notices, django_capture_on_commit_callbacks):
    referrer, payer, payment = shop
    BalanceService.charge(user_id=payer.pk, amount=D(20), key="gen:2")
    message = {
        "charge_id": "stx-studio-1",
        "telegram_id": payer.telegram_id,
        "total_amount": int(payment.amount),
        "currency": "XTR",
        "invoice_payload": payment.invoice_payload,
    }
    with django_capture_on_commit_callbacks(execute=True):
        first = refunds.record_external_refund(**message)
        second = refunds.record_external_refund(**message)  # delivered twice
    assert (first.status, first.shortfall, second.status) == ("recorded", D(20), "already")
    assert balance(payer) == (0, 0) and balance(referrer) == (0, 0)
    assert [key for key, _ in raised] == ["stars_refunded_externally"]
    assert raised[0][1]["shortfall"] == D(20) and raised[0][1]["taken"] == "295.00"
    assert notices == [payment.pk]
    assert Payment.objects.get(pk=payment.pk).raw["refund"]["by"] == "Telegram"
    assert find_problems() == []


def test_our_own_refund_announced_by_telegram_first_is_the_operators(shop, sender, raised, notices):
    """Telegram's refunded_payment for our refund is handled before our call returns: it is recorded as
    the operator's (name and form key), not alerted as a refund made elsewhere, and the form succeeds."""
    referrer, payer, payment = shop

    def announce(user_id: int, charge_id: str) -> None:
        sender.calls.append((user_id, charge_id))
        assert Payment.objects.get(pk=payment.pk).raw["refund_requested"]["by"] == "alice", "noted before the call"
        outcome = refunds.record_external_refund(
            charge_id=charge_id,
            telegram_id=user_id,
            total_amount=int(payment.amount),
            currency="XTR",
            invoice_payload=payment.invoice_payload,
        )
        assert outcome.status == "recorded"

    sender.refund_star_payment = announce
    result = refund(payment, key="form-9")
    assert result.applied and not result.replayed
    payment.refresh_from_db()
    assert (payment.raw["refund"]["by"], payment.raw["refund"]["source"], payment.raw["refund"]["key"]) == (
        "alice",
        "admin",
        "form-9",
    )
    assert raised == [] and balance(payer) == (0, 0) and balance(referrer) == (0, 0)
    assert Transaction.objects.filter(kind="payment_refund").count() == 3


def test_a_refused_refund_leaves_no_request_behind(shop, sender, raised):
    _, _, payment = shop
    sender.answers = [SendRejected("Telegram server says - Bad Request: CHARGE_NOT_FOUND")]
    with pytest.raises(refunds.RefundRefused):
        refund(payment)
    assert "refund_requested" not in Payment.objects.get(pk=payment.pk).raw
    outcome = refunds.record_external_refund(
        charge_id="stx-studio-1",
        telegram_id=payment.user.telegram_id,
        total_amount=int(payment.amount),
        currency="XTR",
        invoice_payload=payment.invoice_payload,
    )
    assert outcome.status == "recorded" and [key for key, _ in raised] == ["stars_refunded_externally"]


def test_a_refund_of_an_unknown_charge_is_only_alerted(make_user, raised):
    user = make_user(balance=10)
    outcome = refunds.record_external_refund(
        charge_id="stx-nobody", telegram_id=user.telegram_id, total_amount=5, currency="XTR", invoice_payload="x"
    )
    assert outcome.status == "unknown"
    assert [key for key, _ in raised] == ["stars_refund_unknown_charge"]
    assert balance(user) == (D(10), 0) and not Transaction.objects.filter(kind="payment_refund").exists()


# --- the user's notice --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "↩️ Your payment of 600 ⭐ was refunded; <b>315</b> tokens were taken back.\n💰 Balance: <b>0</b>"),
        ("ru", "↩️ Ваш платёж на 600 ⭐ возвращён; списано <b>315</b> ток.\n💰 Баланс: <b>0</b>"),
    ],
)
def test_the_notice_says_how_much_was_refunded_and_taken_back(shop, sender, lang, expected):
    _, _, payment = shop
    refund(payment)
    payment.refresh_from_db()
    text = refunds.refund_notice_text(payment=payment, lang=lang)
    assert text.startswith(expected.replace("600", str(int(payment.amount)))), text
