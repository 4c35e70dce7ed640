"""Tokens spent before a refund (issue "Hardening II", item 10). The policy: the spent part is a loss
recorded with the refund, never a debt nor a negative balance; the payer is flagged (their admin page
lists such refunds) and banned at the second one, with an alert to the operators."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from django.core.management import call_command

from botapp.models import Payment, TgUser, TopUpPackage, UserBalance
from botapp.selectors.payments import spent_refunds
from botapp.services import refunds
from botapp.services.balance import BalanceService
from botapp.services.payments import PaymentService

pytestmark = pytest.mark.django_db


@pytest.fixture
def raised(monkeypatch) -> list[tuple[str, dict]]:
    seen: list[tuple[str, dict]] = []
    monkeypatch.setattr(refunds.alerts, "alert_operators", lambda *, key, **params: seen.append((key, params)))
    return seen


def paid(user, charge: str) -> Payment:
    invoice = PaymentService.create_invoice(user_id=user.pk, package_id=TopUpPackage.objects.get(name="Basic").pk)
    outcome = PaymentService.complete(
        invoice_payload=invoice.invoice_payload,
        provider_charge_id=charge,
        total_amount=int(invoice.amount),
        currency="XTR",
    )
    return outcome.payment


def spend(user, amount: int, key: str) -> None:
    BalanceService.admin_adjust(user_id=user.pk, amount=D(-amount), reason="spent", key=key, notify=False)


def test_a_spent_refund_flags_the_user_and_the_second_bans_them(make_user, raised):
    user = make_user()
    first, second, clean = paid(user, "c-1"), paid(user, "c-2"), paid(user, "c-3")  # 3 × 50 tokens
    spend(user, 120, "s-1")  # 30 tokens left
    refunds.record_refund(payment_id=clean.pk, by="Telegram", source="telegram")  # takes the 30: 20 spent
    assert [(s.payment_id, s.shortfall) for s in spent_refunds(user_id=user.pk)] == [(clean.pk, D(20))]
    user.refresh_from_db()
    assert not user.is_banned and raised == []  # flagged, not banned, at the first
    assert UserBalance.objects.get(user=user).balance == 0  # never below zero: no debt
    refunds.record_refund(payment_id=first.pk, by="Telegram", source="telegram")  # nothing left: 50 spent
    user.refresh_from_db()
    assert user.is_banned and f"payment #{first.pk} (50.00 tokens)" in user.ban_reason
    assert [key for key, _ in raised] == ["banned_after_spent_refunds"] and raised[0][1]["count"] == 2
    refunds.record_refund(payment_id=second.pk, by="Telegram", source="telegram")
    assert len(raised) == 1  # banned once
    call_command("check_ledger")


def test_a_refund_of_unspent_tokens_flags_nothing(make_user, raised, settings):
    user = make_user()
    payments = [paid(user, f"u-{n}") for n in range(3)]
    for payment in payments:
        refunds.record_refund(payment_id=payment.pk, by="Telegram", source="telegram")
    assert spent_refunds(user_id=user.pk) == [] and not TgUser.objects.get(pk=user.pk).is_banned
    settings.REFUND_SHORTFALL_BAN_AFTER = 0  # the ban can be turned off
    other = make_user()
    a, b = paid(other, "o-1"), paid(other, "o-2")
    spend(other, 100, "o-s")
    refunds.record_refund(payment_id=a.pk, by="Telegram", source="telegram")
    refunds.record_refund(payment_id=b.pk, by="Telegram", source="telegram")
    assert len(spent_refunds(user_id=other.pk)) == 2 and not TgUser.objects.get(pk=other.pk).is_banned


def test_the_admin_user_page_shows_the_refunds_after_spending(make_user, raised, admin_client):
    from django.urls import reverse

    user = make_user()
    payment = paid(user, "p-1")
    spend(user, 45, "p-s")
    refunds.record_refund(payment_id=payment.pk, by="Telegram", source="telegram")
    page = admin_client.get(reverse("admin:botapp_tguser_change", args=(user.pk,))).content.decode()
    assert "Refunds after spending" in page
    assert f'/admin/botapp/payment/{payment.pk}/change/">#{payment.pk}</a> (45.00)' in page
