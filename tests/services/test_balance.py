from decimal import Decimal

import pytest

from botapp.models import Transaction, UserBalance
from botapp.services.balance import BalanceService
from botapp.services.exceptions import (
    DuplicateOperation,
    InsufficientFunds,
    InvalidAmount,
    NothingToRefund,
    UserBanned,
    UserNotFound,
)

D = Decimal
pytestmark = pytest.mark.django_db


def ledger_sum(user, bucket):
    return sum((t.amount for t in Transaction.objects.filter(user=user, bucket=bucket)), D(0))


def assert_consistent(user):
    bal = UserBalance.objects.get(user=user)
    assert ledger_sum(user, "main") == bal.balance
    assert ledger_sum(user, "bonus") == bal.bonus_balance


def test_charge_spends_bonus_first_and_writes_one_row_per_bucket(make_user):
    user = make_user(balance=10, bonus="1.00")
    result = BalanceService.charge(user_id=user.pk, amount=D("1.50"), key="c1")
    assert (result.bonus_delta, result.main_delta) == (D("-1.00"), D("-0.50"))
    assert (result.bonus_balance, result.balance) == (D("0.00"), D("9.50"))
    rows = Transaction.objects.filter(operation_key="c1").order_by("bucket")
    assert [(r.bucket, r.amount, r.balance_after) for r in rows] == [
        ("bonus", D("-1.00"), D("0.00")),
        ("main", D("-0.50"), D("9.50")),
    ]
    assert {r.idempotency_key for r in rows} == {"c1:bonus", "c1:main"}
    assert UserBalance.objects.get(user=user).total_spent == D("1.50")
    assert_consistent(user)


def test_charge_only_main_when_no_bonus(make_user):
    user = make_user(balance=5)
    result = BalanceService.charge(user_id=user.pk, amount=D("1.5"), key="c")
    assert len(result.transaction_ids) == 1
    assert result.balance == D("3.50")


def test_replay_returns_original_and_changes_nothing(make_user):
    user = make_user(balance=10)
    first = BalanceService.charge(user_id=user.pk, amount=D("3"), key="same")
    again = BalanceService.charge(user_id=user.pk, amount=D("3"), key="same")
    assert again.replayed and not first.replayed
    assert again.transaction_ids == first.transaction_ids
    assert UserBalance.objects.get(user=user).balance == D("7.00")
    assert Transaction.objects.filter(operation_key="same").count() == 1


def test_same_key_other_data_is_a_duplicate(make_user):
    user, other = make_user(balance=10), make_user(balance=10)
    BalanceService.charge(user_id=user.pk, amount=D("3"), key="k")
    with pytest.raises(DuplicateOperation):
        BalanceService.charge(user_id=user.pk, amount=D("4"), key="k")
    with pytest.raises(DuplicateOperation):
        BalanceService.charge(user_id=other.pk, amount=D("3"), key="k")
    with pytest.raises(DuplicateOperation):
        BalanceService.deposit(user_id=user.pk, amount=D("3"), key="k")
    assert UserBalance.objects.get(user=other).balance == D("10.00")


def test_insufficient_funds_writes_nothing(make_user):
    user = make_user(balance=1, bonus="0.40")
    with pytest.raises(InsufficientFunds) as exc:
        BalanceService.charge(user_id=user.pk, amount=D("1.50"), key="x")
    assert exc.value.shortfall == D("0.10")
    assert exc.value.required == D("1.50")
    assert not Transaction.objects.filter(operation_key="x").exists()
    bal = UserBalance.objects.get(user=user)
    assert (bal.balance, bal.bonus_balance) == (D("1.00"), D("0.40"))


@pytest.mark.parametrize("amount", [D(0), D(-1), D("0.001"), 1.5, "abc", D("NaN"), D("Infinity"), None])
def test_bad_amounts_are_refused(make_user, amount):
    user = make_user(balance=10)
    with pytest.raises(InvalidAmount):
        BalanceService.charge(user_id=user.pk, amount=amount, key="bad")
    with pytest.raises(InvalidAmount):
        BalanceService.deposit(user_id=user.pk, amount=amount, key="bad2")
    assert Transaction.objects.filter(operation_key__in=["bad", "bad2"]).count() == 0


def test_unknown_user(db):
    with pytest.raises(UserNotFound):
        BalanceService.deposit(user_id=999_999, amount=D(1), key="nobody")


def test_banned_user_cannot_spend_but_can_be_credited(make_user):
    user = make_user(balance=10, is_banned=True)
    with pytest.raises(UserBanned):
        BalanceService.charge(user_id=user.pk, amount=D(1), key="b")
    BalanceService.deposit(user_id=user.pk, amount=D(1), key="d")
    assert UserBalance.objects.get(user=user).balance == D("11.00")


def test_deposit_with_bonus_one_operation(make_user):
    user = make_user()
    result = BalanceService.deposit(user_id=user.pk, amount=D(100), bonus_amount=D(5), key="pay:1")
    assert (result.balance, result.bonus_balance) == (D(100), D(5))
    assert Transaction.objects.filter(operation_key="pay:1").count() == 2
    assert UserBalance.objects.get(user=user).total_deposited == D(100)
    assert_consistent(user)


def test_refund_returns_to_the_buckets_it_came_from_once(make_user):
    user = make_user(balance=10, bonus=1)
    BalanceService.charge(user_id=user.pk, amount=D("1.50"), key="gen:1:charge")
    BalanceService.bonus(user_id=user.pk, amount=D(2), key="gift")  # the bonus bucket changes meanwhile
    first = BalanceService.refund(charge_key="gen:1:charge")
    second = BalanceService.refund(charge_key="gen:1:charge")
    assert (first.bonus_delta, first.main_delta) == (D("1.00"), D("0.50"))
    assert second.replayed
    bal = UserBalance.objects.get(user=user)
    assert (bal.balance, bal.bonus_balance, bal.total_refunded) == (D(10), D(3), D("1.50"))
    assert_consistent(user)


def test_refund_without_charge(db):
    with pytest.raises(NothingToRefund):
        BalanceService.refund(charge_key="never")


def test_admin_adjustment_grant_and_take(make_user):
    user = make_user(balance=5)
    BalanceService.admin_adjust(user_id=user.pk, amount=D("-2"), reason="mistake", key="a1")
    BalanceService.admin_adjust(user_id=user.pk, amount=D("3"), reason="gift", key="a2", bucket="bonus")
    bal = UserBalance.objects.get(user=user)
    assert (bal.balance, bal.bonus_balance) == (D(3), D(3))
    with pytest.raises(InsufficientFunds):
        BalanceService.admin_adjust(user_id=user.pk, amount=D("-4"), reason="too much", key="a3")
    with pytest.raises(InvalidAmount):
        BalanceService.admin_adjust(user_id=user.pk, amount=D("1"), reason="  ", key="a4")
    assert Transaction.objects.get(operation_key="a1").description == "mistake"
    assert_consistent(user)


def test_referral_and_promo_kinds_go_to_bonus(make_user):
    user = make_user()
    BalanceService.referral_reward(user_id=user.pk, amount=D(3), key="r")
    assert Transaction.objects.get(operation_key="r").kind == "referral"
    assert UserBalance.objects.get(user=user).bonus_balance == D(3)


def test_check_and_ensure(make_user):
    user = make_user(balance=1)
    assert BalanceService.can_afford(user_id=user.pk, amount=D(1))
    assert not BalanceService.can_afford(user_id=user.pk, amount=D("1.01"))
    with pytest.raises(InsufficientFunds):
        BalanceService.ensure_can_afford(user_id=user.pk, amount=D(2))
