"""The referrer's first-top-up bonus is paid once per referred user: a refunded first payment still was
the first, so the next top-up earns only the percentage."""

from __future__ import annotations

from decimal import Decimal

import pytest

from botapp.models import TopUpPackage, Transaction
from botapp.services import refunds
from botapp.services.payments import PaymentService
from botapp.services.referral import ReferralService

pytestmark = pytest.mark.django_db


def pay(user, charge_id: str):
    invoice = PaymentService.create_invoice(user_id=user.pk, package_id=TopUpPackage.objects.get(name="Studio").pk)
    outcome = PaymentService.complete(
        invoice_payload=invoice.invoice_payload,
        provider_charge_id=charge_id,
        total_amount=int(invoice.amount),
        currency="XTR",
    )
    assert outcome.credited
    return outcome.payment


def test_a_refunded_first_payment_still_was_the_first(make_user, settings):
    settings.REFERRAL_FIRST_TOPUP_BONUS = Decimal(10)
    settings.REFERRAL_PERCENT = Decimal(5)
    referrer, payer = make_user(), make_user()
    ReferralService.attach(user_id=payer.pk, code=referrer.referral_code, is_new_user=True)

    first = pay(payer, "stx-first")
    refunds.record_refund(payment_id=first.pk, by="telegram support", source="telegram", notify=False)
    second = pay(payer, "stx-second")

    rewards = Transaction.objects.filter(user=referrer, kind=Transaction.Kind.REFERRAL, payment=second)
    assert [row.amount for row in rewards] == [Decimal("15.00")]  # 5% of 300, no second first-top-up bonus
