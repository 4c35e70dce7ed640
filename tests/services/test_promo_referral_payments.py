from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from botapp.models import Payment, Promocode, PromocodeActivation, TgUser, TopUpPackage, Transaction, UserBalance
from botapp.services.exceptions import (
    PackageUnavailable,
    PaymentError,
    PromoAlreadyUsed,
    PromoExhausted,
    PromoExpired,
    PromoFirstTopupOnly,
    PromoInactive,
    PromoNotFound,
    PromoNotYetValid,
    ReferralNotAllowed,
)
from botapp.services.payments import PaymentService
from botapp.services.promo import PromoService
from botapp.services.referral import ReferralService

D = Decimal
pytestmark = pytest.mark.django_db


# --- promocodes ------------------------------------------------------------------------------------
def test_welcome_code_is_case_insensitive_and_once(make_user):
    user = make_user()
    result = PromoService.redeem(user_id=user.pk, code="  welcome2025 ")
    assert result.bonus_granted == D(10) and not result.awaiting_topup
    assert UserBalance.objects.get(user=user).bonus_balance == D(10)
    assert Transaction.objects.get(user=user).kind == "promo"
    with pytest.raises(PromoAlreadyUsed):
        PromoService.redeem(user_id=user.pk, code="WELCOME2025")
    assert UserBalance.objects.get(user=user).bonus_balance == D(10)
    assert Promocode.objects.get(code="WELCOME2025").uses_count == 1


@pytest.mark.parametrize("code", ["", "   ", "no such code", "DOESNOTEXIST", "🍌🍌", "x" * 100])
def test_not_a_code(make_user, code):
    with pytest.raises(PromoNotFound):
        PromoService.redeem(user_id=make_user().pk, code=code)


def test_window_activity_and_limits(make_user):
    now = timezone.now()
    expired = Promocode.objects.create(code="OLD", kind="bonus_tokens", value=1, valid_until=now - timedelta(days=1))
    future = Promocode.objects.create(code="SOON", kind="bonus_tokens", value=1, valid_from=now + timedelta(days=1))
    off = Promocode.objects.create(code="OFF", kind="bonus_tokens", value=1, is_active=False)
    one = Promocode.objects.create(code="ONE", kind="bonus_tokens", value=1, max_uses=1)
    user, other = make_user(), make_user()
    for code, error in (("old", PromoExpired), ("soon", PromoNotYetValid), ("off", PromoInactive)):
        with pytest.raises(error):
            PromoService.redeem(user_id=user.pk, code=code)
    PromoService.redeem(user_id=user.pk, code="one")
    with pytest.raises(PromoExhausted):
        PromoService.redeem(user_id=other.pk, code="one")
    assert not PromocodeActivation.objects.filter(promocode__in=[expired, future, off]).exists()
    assert UserBalance.objects.get(user=other).bonus_balance == 0
    one.refresh_from_db()
    assert one.uses_count == 1


def test_per_user_limit_above_one(make_user):
    Promocode.objects.create(code="TWICE", kind="bonus_tokens", value=2, per_user_limit=2)
    user = make_user()
    PromoService.redeem(user_id=user.pk, code="twice")
    PromoService.redeem(user_id=user.pk, code="twice")
    with pytest.raises(PromoAlreadyUsed):
        PromoService.redeem(user_id=user.pk, code="twice")
    assert UserBalance.objects.get(user=user).bonus_balance == D(4)


def paid(user, package, charge="ch-1"):
    payment = PaymentService.create_invoice(user_id=user.pk, package_id=package.pk)
    return PaymentService.complete(
        invoice_payload=payment.invoice_payload,
        provider_charge_id=charge,
        total_amount=int(payment.amount),
        currency="XTR",
    )


def test_first50_discounts_the_first_topup_only(make_user):
    user = make_user()
    package = TopUpPackage.objects.get(name="Pro")  # 100 tokens, 400 stars
    result = PromoService.redeem(user_id=user.pk, code="first50")
    assert result.awaiting_topup
    quote = PaymentService.quote(user_id=user.pk, package_id=package.pk)
    assert (quote.price_stars, quote.base_price_stars, quote.promocode) == (200, 400, "FIRST50")
    outcome = paid(user, package)
    assert outcome.credited and outcome.payment.amount == 200 and outcome.payment.promocode.code == "FIRST50"
    assert PaymentService.quote(user_id=user.pk, package_id=package.pk).price_stars == 400
    other_code = Promocode.objects.create(code="LATER", kind="topup_discount", value=10, first_topup_only=True)
    with pytest.raises(PromoFirstTopupOnly):
        PromoService.redeem(user_id=user.pk, code=other_code.code)


# --- payments --------------------------------------------------------------------------------------
def test_payment_is_credited_once_per_charge_id(make_user):
    user = make_user()
    package = TopUpPackage.objects.get(name="Studio")  # 300 tokens + 5% bonus
    payment = PaymentService.create_invoice(user_id=user.pk, package_id=package.pk)
    PaymentService.validate_precheckout(
        invoice_payload=payment.invoice_payload, telegram_id=user.telegram_id, total_amount=1050, currency="XTR"
    )
    kwargs = dict(invoice_payload=payment.invoice_payload, provider_charge_id="tg-1", total_amount=1050, currency="XTR")
    first = PaymentService.complete(**kwargs)
    second = PaymentService.complete(**kwargs)
    assert first.credited and not second.credited
    bal = UserBalance.objects.get(user=user)
    assert (bal.balance, bal.bonus_balance, bal.total_deposited) == (D(300), D(15), D(300))
    with pytest.raises(PaymentError):
        PaymentService.complete(**{**kwargs, "provider_charge_id": "tg-2"})
    with pytest.raises(PaymentError):  # paid already: a second pre-checkout is refused
        PaymentService.validate_precheckout(
            invoice_payload=payment.invoice_payload, telegram_id=user.telegram_id, total_amount=1050, currency="XTR"
        )


def test_precheckout_refusals(make_user):
    user, stranger = make_user(), make_user()
    package = TopUpPackage.objects.get(name="Start")
    payment = PaymentService.create_invoice(user_id=user.pk, package_id=package.pk)
    base = dict(invoice_payload=payment.invoice_payload, telegram_id=user.telegram_id, total_amount=50, currency="XTR")
    for change in (
        {"telegram_id": stranger.telegram_id},
        {"total_amount": 49},
        {"currency": "USD"},
        {"invoice_payload": "topup:forged"},
    ):
        with pytest.raises(PaymentError):
            PaymentService.validate_precheckout(**{**base, **change})
    package.is_active = False
    package.save()
    with pytest.raises(PackageUnavailable):
        PaymentService.validate_precheckout(**base)
    with pytest.raises(PackageUnavailable):
        PaymentService.create_invoice(user_id=user.pk, package_id=package.pk)


def test_amount_mismatch_credits_nothing(make_user):
    user = make_user()
    payment = PaymentService.create_invoice(user_id=user.pk, package_id=TopUpPackage.objects.get(name="Start").pk)
    with pytest.raises(PaymentError):
        PaymentService.complete(
            invoice_payload=payment.invoice_payload, provider_charge_id="c", total_amount=1, currency="XTR"
        )
    assert UserBalance.objects.get(user=user).balance == 0
    assert Payment.objects.get(pk=payment.pk).status == "pending"


def test_level_perk_adds_bonus(make_user):
    user = make_user(xp=600)  # level 3: +3%
    quote = PaymentService.quote(user_id=user.pk, package_id=TopUpPackage.objects.get(name="Pro").pk)
    assert quote.bonus_percent == D(3) and quote.bonus_tokens == D(3)


def test_payment_refund_takes_back_once(make_user):
    user = make_user()
    outcome = paid(user, TopUpPackage.objects.get(name="Basic"))
    PaymentService.mark_refunded(payment_id=outcome.payment.pk)
    PaymentService.mark_refunded(payment_id=outcome.payment.pk)
    bal = UserBalance.objects.get(user=user)
    assert bal.balance == 0
    assert Transaction.objects.filter(kind="payment_refund").count() == 1


# --- referrals -------------------------------------------------------------------------------------
def test_referral_attach_rules(make_user):
    friend, newcomer, old = make_user(), make_user(), make_user()
    assert ReferralService.attach(user_id=newcomer.pk, code=friend.referral_code.lower(), is_new_user=True) == friend
    newcomer.refresh_from_db()
    assert newcomer.referred_by == friend
    with pytest.raises(ReferralNotAllowed):  # never twice
        ReferralService.attach(user_id=newcomer.pk, code=old.referral_code, is_new_user=True)
    with pytest.raises(ReferralNotAllowed):  # never an existing user
        ReferralService.attach(user_id=old.pk, code=friend.referral_code, is_new_user=False)
    with pytest.raises(ReferralNotAllowed):  # never oneself
        ReferralService.attach(user_id=friend.pk, code=friend.referral_code, is_new_user=True)
    with pytest.raises(ReferralNotAllowed):  # never in a circle
        ReferralService.attach(user_id=friend.pk, code=newcomer.referral_code, is_new_user=True)
    with pytest.raises(ReferralNotAllowed):
        ReferralService.attach(user_id=old.pk, code="NOPE", is_new_user=True)


def test_referrer_rewarded_on_first_and_later_topups(make_user, settings):
    settings.REFERRAL_FIRST_TOPUP_BONUS = D(10)
    settings.REFERRAL_PERCENT = D(5)
    friend, newcomer = make_user(), make_user()
    ReferralService.attach(user_id=newcomer.pk, code=friend.referral_code, is_new_user=True)
    package = TopUpPackage.objects.get(name="Pro")
    paid(newcomer, package, "a")
    assert UserBalance.objects.get(user=friend).bonus_balance == D(15)  # 10 + 5% of 100
    paid(newcomer, package, "b")
    assert UserBalance.objects.get(user=friend).bonus_balance == D(20)
    stats = ReferralService.stats(user_id=friend.pk)
    assert stats == {"invited": 1, "paid": 1, "earned": D(20)}
    assert TgUser.objects.get(pk=newcomer.pk).referred_by_id == friend.pk
