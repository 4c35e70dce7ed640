"""Races provoked on purpose, on the real PostgreSQL (row locks and conditional updates)."""

import threading
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection

from botapp.models import Promocode, PromocodeActivation, Transaction, UserBalance
from botapp.services.balance import BalanceService
from botapp.services.exceptions import DomainError, InsufficientFunds, PromoExhausted
from botapp.services.generation import GenerationService
from botapp.services.promo import PromoService

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_threads(n, target):
    barrier = threading.Barrier(n)
    outcomes: list[object] = []
    lock = threading.Lock()

    def worker(i):
        try:
            barrier.wait()
            result = target(i)
        except Exception as exc:  # collected and asserted by the test
            result = exc
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


@pytest.mark.parametrize(("funds", "remainder"), [("15.00", "0.00"), ("15.75", "0.75")])
def test_50_concurrent_charges_leave_exactly_10(make_user, funds, remainder):
    user = make_user(balance=funds)
    outcomes = run_threads(
        50, lambda i: BalanceService.charge(user_id=user.pk, amount=Decimal("1.50"), key=f"race:{i}")
    )
    charged = [o for o in outcomes if not isinstance(o, Exception)]
    refused = [o for o in outcomes if isinstance(o, InsufficientFunds)]
    assert len(charged) == 10 and len(refused) == 40, [o for o in outcomes if isinstance(o, Exception)][:3]
    assert UserBalance.objects.get(user=user).balance == Decimal(remainder)
    assert Transaction.objects.filter(user=user, kind="charge").count() == 10
    call_command("check_ledger")  # raises (non-zero exit) when the ledger and balances disagree


def test_20_concurrent_redemptions_of_a_5_use_code(make_user):
    Promocode.objects.create(code="RACE5", kind="bonus_tokens", value=2, max_uses=5)
    users = [make_user() for _ in range(20)]
    outcomes = run_threads(20, lambda i: PromoService.redeem(user_id=users[i].pk, code="race5"))
    ok = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(ok) == 5
    assert all(isinstance(o, PromoExhausted) for o in outcomes if isinstance(o, Exception))
    assert Promocode.objects.get(code="RACE5").uses_count == 5
    assert PromocodeActivation.objects.count() == 5
    assert sum(b.bonus_balance for b in UserBalance.objects.all()) == Decimal(10)
    call_command("check_ledger")


def test_one_user_redeeming_twice_at_once_gets_it_once(make_user):
    user = make_user()
    outcomes = run_threads(10, lambda i: PromoService.redeem(user_id=user.pk, code="WELCOME2025"))
    assert len([o for o in outcomes if not isinstance(o, Exception)]) == 1
    assert all(isinstance(o, DomainError) for o in outcomes if isinstance(o, Exception))
    assert UserBalance.objects.get(user=user).bonus_balance == Decimal(10)


def test_double_confirm_and_cap_under_concurrency(make_user, nano, settings):
    settings.MAX_INFLIGHT_PER_USER = 3
    user = make_user(balance=100)
    same = run_threads(
        8,
        lambda i: (
            GenerationService.create_request(
                user_id=user.pk, ai_model_id=nano.pk, prompt="cat", idempotency_key="confirm:x"
            ).pk
        ),
    )
    assert len({o for o in same if isinstance(o, int)}) == 1, same
    many = run_threads(
        8, lambda i: GenerationService.create_request(user_id=user.pk, ai_model_id=nano.pk, prompt=f"cat {i}")
    )
    assert len([o for o in many if not isinstance(o, Exception)]) == 2  # 1 in flight already, cap 3
    assert UserBalance.objects.get(user=user).balance == Decimal("95.50")


def test_concurrent_fail_refunds_once(make_user, nano):
    user = make_user(balance=10)
    req = GenerationService.create_request(user_id=user.pk, ai_model_id=nano.pk, prompt="cat")
    GenerationService.mark_running(request_id=req.pk)
    outcomes = run_threads(10, lambda i: GenerationService.fail(request_id=req.pk, error_code=f"e{i}"))
    assert outcomes.count(True) == 1
    assert UserBalance.objects.get(user=user).balance == Decimal(10)
    assert Transaction.objects.filter(kind="refund").count() == 1
