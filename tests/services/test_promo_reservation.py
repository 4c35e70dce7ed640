"""A top-up promocode is reserved by one pending invoice at a time (the newest), consumed by one
successful payment only, and freed when its invoice is refused or expires (botapp/services/payments.py)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.core.management import call_command
from django.utils import timezone

from botapp.models import Payment, Promocode, PromocodeActivation, TopUpPackage, Transaction, UserBalance
from botapp.services.exceptions import InvoiceExpired, InvoiceReplaced, PackageUnavailable, PromoFirstTopupOnly
from botapp.services.payments import RESERVATION_TTL, PaymentService
from botapp.services.promo import PromoService

pytestmark = pytest.mark.django_db


@pytest.fixture
def pro() -> TopUpPackage:
    return TopUpPackage.objects.get(name="Pro")  # 100 tokens, 400 stars


def invoice(user, package) -> Payment:
    return PaymentService.create_invoice(user_id=user.pk, package_id=package.pk)


def precheckout(user, payment: Payment) -> Payment:
    return PaymentService.validate_precheckout(
        invoice_payload=payment.invoice_payload,
        telegram_id=user.telegram_id,
        total_amount=int(payment.amount),
        currency="XTR",
    )


def charge(payment: Payment, charge_id: str):
    """Telegram's successful_payment for an invoice whose pre-checkout was answered ok."""
    return PaymentService.complete(
        invoice_payload=payment.invoice_payload,
        provider_charge_id=charge_id,
        total_amount=int(payment.amount),
        currency="XTR",
    )


def activation(user, code="FIRST50") -> PromocodeActivation:
    return PromocodeActivation.objects.get(user=user, promocode__code=code)


def balance(user) -> tuple[D, D]:
    bal = UserBalance.objects.get(user=user)
    return bal.balance, bal.bonus_balance


@pytest.mark.parametrize("paid_first", ["older", "newer"])
def test_two_stars_presses_then_paying_both_gives_the_discount_once(make_user, pro, paid_first):
    """Press "Stars" twice, then try to pay both invoices, in either order: the newer invoice holds
    the discount; the older one is refused at pre-checkout (so Telegram never charges it)."""
    user = make_user()
    PromoService.redeem(user_id=user.pk, code="FIRST50")
    older, newer = invoice(user, pro), invoice(user, pro)
    assert older.amount == newer.amount == 200, "the invoice in front of the user carries the discount"
    assert activation(user).reserved_by_id == newer.pk
    assert Payment.objects.get(pk=older.pk).status == Payment.Status.CANCELLED

    if paid_first == "older":
        with pytest.raises(InvoiceReplaced):
            precheckout(user, older)
        precheckout(user, newer)
        assert charge(newer, "ch-new").credited
    else:
        precheckout(user, newer)
        assert charge(newer, "ch-new").credited
        with pytest.raises(InvoiceReplaced):
            precheckout(user, older)

    assert balance(user) == (D(100), D(0))
    used = activation(user)
    assert used.consumed_by_id == newer.pk and used.reserved_by_id is None
    assert PaymentService.quote(user_id=user.pk, package_id=pro.pk).price_stars == 400
    assert invoice(user, pro).amount == 400, "the code is spent: the next invoice is at the full price"
    call_command("check_ledger")


@pytest.mark.parametrize("completed_first", ["older", "newer"])
def test_both_invoices_charged_credit_the_discount_once(make_user, pro, completed_first):
    """The race that pre-checkout cannot stop: the older invoice passed pre-checkout, then a newer one
    was made and passed too, and Telegram charged both (200 stars each). The money was taken, so both
    are credited, but the code only once: the other payment gets the regular price's worth of its
    200 stars (50 of the package's 100 tokens per 400 stars), without the code."""
    user = make_user()
    PromoService.redeem(user_id=user.pk, code="FIRST50")
    older = invoice(user, pro)
    precheckout(user, older)
    newer = invoice(user, pro)
    precheckout(user, newer)
    order = [older, newer] if completed_first == "older" else [newer, older]

    first = charge(order[0], "ch-1")
    second = charge(order[1], "ch-2")

    assert first.credited and first.promocode_not_applied is None
    assert first.payment.tokens == 100 and first.payment.promocode.code == "FIRST50"
    assert second.credited and second.promocode_not_applied == "FIRST50"
    assert second.payment.tokens == 50 and second.payment.promocode is None
    assert second.payment.raw["promocode_not_applied"]["invoice"]["tokens"] == "100.00"
    assert balance(user) == (D(150), D(0))
    assert activation(user).consumed_by_id == order[0].pk
    assert Transaction.objects.filter(user=user, kind="deposit", promocode__code="FIRST50").count() == 1
    replay = charge(order[1], "ch-2")
    assert not replay.credited and balance(user) == (D(150), D(0))
    call_command("check_ledger")


def test_a_bonus_code_is_credited_on_one_payment_only(make_user, pro):
    user = make_user()
    Promocode.objects.create(code="PLUS20", kind="topup_bonus", value=20)
    PromoService.redeem(user_id=user.pk, code="PLUS20")
    older = invoice(user, pro)
    precheckout(user, older)
    newer = invoice(user, pro)
    assert older.bonus_tokens == newer.bonus_tokens == 20
    assert charge(newer, "ch-1").payment.bonus_tokens == 20
    late = charge(older, "ch-2")  # charged although replaced: credited, but without the code's 20%
    assert late.promocode_not_applied == "PLUS20" and (late.payment.tokens, late.payment.bonus_tokens) == (100, 0)
    assert balance(user) == (D(200), D(20))


def test_an_expired_invoice_is_refused_and_frees_the_code(make_user, pro):
    user = make_user()
    PromoService.redeem(user_id=user.pk, code="FIRST50")
    stale = invoice(user, pro)
    Payment.objects.filter(pk=stale.pk).update(created_at=timezone.now() - RESERVATION_TTL - timedelta(seconds=1))
    with pytest.raises(InvoiceExpired):
        precheckout(user, stale)
    assert Payment.objects.get(pk=stale.pk).status == Payment.Status.CANCELLED
    assert activation(user).reserved_by_id is None and activation(user).consumed_at is None
    fresh = invoice(user, pro)
    assert fresh.amount == 200 and activation(user).reserved_by_id == fresh.pk
    precheckout(user, fresh)
    assert charge(fresh, "ch-1").payment.promocode.code == "FIRST50"


def test_a_refused_pre_checkout_frees_the_code(make_user, pro):
    user = make_user()
    PromoService.redeem(user_id=user.pk, code="FIRST50")
    payment = invoice(user, pro)
    TopUpPackage.objects.filter(pk=pro.pk).update(is_active=False)
    with pytest.raises(PackageUnavailable):
        precheckout(user, payment)
    assert activation(user).reserved_by_id is None and activation(user).consumed_at is None
    TopUpPackage.objects.filter(pk=pro.pk).update(is_active=True)
    with pytest.raises(InvoiceReplaced):  # its reservation is gone: that invoice stays unpayable
        precheckout(user, payment)
    again = invoice(user, pro)
    assert again.amount == 200 and activation(user).reserved_by_id == again.pk


def test_an_invoice_without_a_code_is_untouched(make_user, pro):
    user = make_user()
    plain = invoice(user, pro)
    PromoService.redeem(user_id=user.pk, code="FIRST50")
    discounted = invoice(user, pro)
    assert (plain.amount, discounted.amount) == (400, 200)
    assert Payment.objects.get(pk=plain.pk).status == Payment.Status.PENDING
    precheckout(user, plain)
    assert charge(plain, "ch-plain").payment.tokens == 100
    # FIRST50 is for the first top-up only, and the plain invoice was the first one paid.
    with pytest.raises(PromoFirstTopupOnly):
        precheckout(user, discounted)
    assert activation(user).reserved_by_id is None
    assert balance(user) == (D(100), D(0))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_invoices_leave_one_discounted_invoice_payable(make_user, pro):
    """12 invoices for one user at once (double taps, two devices): they serialise on the locked
    activation row; exactly one of them holds the code, every other discounted one is void and its
    pre-checkout refused, so at most one discounted invoice can be charged."""
    from tests.services.test_concurrency import run_threads

    user = make_user()
    PromoService.redeem(user_id=user.pk, code="FIRST50")
    outcomes = run_threads(12, lambda i: invoice(user, pro))
    made = [o for o in outcomes if isinstance(o, Payment)]
    assert len(made) == 12, [o for o in outcomes if not isinstance(o, Payment)][:3]

    holder = activation(user).reserved_by_id
    payable = []
    for payment in made:
        try:
            precheckout(user, payment)
        except InvoiceReplaced:
            continue
        payable.append(payment)
    assert [p.pk for p in payable] == [holder]
    assert payable[0].amount == 200
    pending = Payment.objects.filter(user=user, status=Payment.Status.PENDING)
    assert list(pending.values_list("pk", flat=True)) == [holder]
    assert charge(payable[0], "ch-race").payment.tokens == 100
    assert activation(user).consumed_by_id == holder
