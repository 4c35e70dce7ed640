"""Partial refunds of a request with several variants (GenerationService.refund_variants,
BalanceService.refund_part): one ledger row for the failed variants' share, exactly once, the right
bucket, XP for the kept share only, and a later full refund that returns only what is left."""

from decimal import Decimal

import pytest
from django.core.management import call_command

from botapp.models import GenRequest, TgUser, Transaction, UserBalance
from botapp.services.balance import BalanceService
from botapp.services.exceptions import InvalidAmount
from botapp.services.generation import GenerationService, variant_share

D = Decimal
pytestmark = pytest.mark.django_db
REFUND = Transaction.Kind.REFUND


def create(user, model, **kw):
    kw.setdefault("prompt", "a cat in space")
    return GenerationService.create_request(user_id=user.pk, ai_model_id=model.pk, **kw)


def succeed(request, kept: int):
    """What the engine does when `kept` of the variants came back: running, then succeeded."""
    assert GenerationService.mark_running(request_id=request.pk)
    results = [{"variant": i, "kind": "image", "path": f"r/{i}.png"} for i in range(kept)]
    results += [
        {"variant": i, "kind": "image", "failed": True, "error_code": "safety_blocked"}
        for i in range(kept, request.variants)
    ]
    assert GenerationService.mark_succeeded(request_id=request.pk, results=results, paid_variants=kept)
    request.refresh_from_db()
    return request


def refund_rows(request):
    return list(Transaction.objects.filter(gen_request=request, kind=REFUND).order_by("pk"))


def balance(user):
    row = UserBalance.objects.get(user=user)
    return row.balance, row.bonus_balance


def ledger_ok():
    call_command("check_ledger")  # raises CommandError on any difference


def test_price_times_variants_is_charged_exactly(make_user, nano):
    user = make_user(balance=20)
    request = create(user, nano, variants=4, params={"resolution": "2K"})
    unit = nano.quote({"resolution": "2K", "aspect_ratio": "1:1"}, 1).total
    assert request.price == unit * 4 == D("9.00")  # 1.50 x 1.5 (2K) x 4
    assert balance(user) == (D("11.00"), D(0))
    assert variant_share(request, 1) == D("2.25") and variant_share(request, 3) == D("6.75")


def test_one_blocked_of_four_refunds_one_share_once(make_user, nano):
    user = make_user(balance=10)
    request = succeed(create(user, nano, variants=4), kept=3)
    xp_three = int(D("4.50") * 10)
    assert request.xp_awarded == xp_three and TgUser.objects.get(pk=user.pk).xp == xp_three

    first = GenerationService.refund_variants(request_id=request.pk, failed=1)
    assert first is not None and first.amount == D("1.50")
    again = GenerationService.refund_variants(request_id=request.pk, failed=1)
    other = GenerationService.refund_variants(request_id=request.pk, failed=2)  # a retry that counted differently
    assert again is None and other is None
    rows = refund_rows(request)
    assert [(r.operation_key, r.amount, r.bucket) for r in rows] == [(request.partial_refund_key, D("1.50"), "main")]
    request.refresh_from_db()
    assert request.refunded_variants == 1 and request.status == "succeeded"
    assert balance(user) == (D("5.50"), D(0))  # 10 - 6 + 1.5
    assert TgUser.objects.get(pk=user.pk).xp == xp_three  # the kept share's XP stays
    ledger_ok()


def test_refused_item_lowers_the_xp_to_the_share_kept(make_user, nano):
    """mark_succeeded gave XP for 3 variants; Telegram then refused one: 2 kept, 2 refunded."""
    user = make_user(balance=10)
    request = succeed(create(user, nano, variants=4), kept=3)
    GenerationService.refund_variants(request_id=request.pk, failed=2)
    request.refresh_from_db()
    assert request.xp_awarded == 30 and TgUser.objects.get(pk=user.pk).xp == 30
    assert sum(r.amount for r in refund_rows(request)) == D("3.00")


def test_the_share_comes_back_to_main_first_then_bonus(make_user, nano):
    """The charge took the bonus first; the tokens it took last (main) go back first."""
    user = make_user(balance=2, bonus=5)
    request = succeed(create(user, nano, variants=4), kept=1)  # 6.00: 5 bonus + 1 main
    assert balance(user) == (D("1.00"), D(0))
    GenerationService.refund_variants(request_id=request.pk, failed=3)  # 4.50: 1 main + 3.50 bonus
    assert balance(user) == (D("2.00"), D("3.50"))
    assert {r.bucket: r.amount for r in refund_rows(request)} == {"main": D("1.00"), "bonus": D("3.50")}
    ledger_ok()


def test_a_later_full_refund_returns_only_what_is_left(make_user, nano):
    user = make_user(balance=3, bonus=3)
    request = succeed(create(user, nano, variants=4), kept=2)  # 6.00: 3 bonus + 3 main
    GenerationService.refund_variants(request_id=request.pk, failed=2)  # 3.00, all main
    assert balance(user) == (D("3.00"), D(0))
    result = GenerationService.admin_refund(request_id=request.pk, reason="undelivered", notify=False)
    assert result is not None and result.amount == D("3.00")
    assert {r.bucket: r.amount for r in Transaction.objects.filter(operation_key=request.refund_key)} == {
        "bonus": D("3.00")
    }
    assert sum(r.amount for r in refund_rows(request)) == request.price == D("6.00")
    assert balance(user) == (D("3.00"), D("3.00"))  # everything back where it came from
    request.refresh_from_db()
    assert request.status == "failed" and request.xp_awarded == 0
    assert TgUser.objects.get(pk=user.pk).xp == 0
    # Replays refund nothing more.
    GenerationService.refund(request_id=request.pk)
    assert GenerationService.refund_variants(request_id=request.pk, failed=1) is None
    assert sum(r.amount for r in refund_rows(request)) == D("6.00")
    ledger_ok()


def test_delivered_and_refunded_in_one_step(make_user, nano):
    user = make_user(balance=10)
    request = succeed(create(user, nano, variants=3), kept=2)
    moved, refund = GenerationService.mark_delivered_variants(request_id=request.pk, results=request.results, failed=1)
    assert moved and refund is not None and refund.amount == D("1.50")
    moved, refund = GenerationService.mark_delivered_variants(request_id=request.pk, results=request.results, failed=1)
    assert not moved and refund is None
    assert len(refund_rows(request)) == 1
    request.refresh_from_db()
    assert request.delivered_at and request.refunded_variants == 1


def test_nothing_to_refund_or_everything_is_not_a_partial_refund(make_user, nano):
    user = make_user(balance=10)
    request = succeed(create(user, nano, variants=2), kept=2)
    assert GenerationService.refund_variants(request_id=request.pk, failed=0) is None
    assert GenerationService.refund_variants(request_id=request.pk, failed=2) is None  # that is a failure
    queued = create(user, nano, variants=2)
    assert GenerationService.refund_variants(request_id=queued.pk, failed=1) is None  # not succeeded
    assert not Transaction.objects.filter(kind=REFUND).exists()
    assert GenRequest.objects.get(pk=request.pk).refunded_variants == 0


def test_refund_part_never_exceeds_the_charge(make_user, nano):
    user = make_user(balance=10)
    request = create(user, nano, variants=2)
    with pytest.raises(InvalidAmount):
        BalanceService.refund_part(charge_key=request.charge_key, amount=D("3.01"), key="x")
    done = BalanceService.refund_part(charge_key=request.charge_key, amount=D("1.50"), key="part")
    replay = BalanceService.refund_part(charge_key=request.charge_key, amount=D("1.50"), key="part")
    assert replay.replayed and replay.transaction_ids == done.transaction_ids
    rest = BalanceService.refund(charge_key=request.charge_key, key="rest", after=("part",))
    assert rest.amount == D("1.50")
    assert balance(user) == (D("10.00"), D(0))
    ledger_ok()
