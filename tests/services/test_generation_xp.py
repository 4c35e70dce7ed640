"""XP does not survive a refund: a generation that succeeded gave XP; if it is then refunded (its
result could not be delivered, or an operator refunded it), the XP goes back with the tokens, in the
same transaction, exactly once, and the level (and so the top-up perk) follows."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from django.db import transaction

from botapp.models import GenRequest, TgUser, TopUpPackage
from botapp.services import levels
from botapp.services.generation import GenerationService
from botapp.services.payments import PaymentService

pytestmark = pytest.mark.django_db

VEO_XP = 19 * 10  # Veo 3.1 Fast costs 19 tokens; XP_PER_TOKEN is 10


def succeeded(user, model) -> GenRequest:
    req = GenerationService.create_request(user_id=user.pk, ai_model_id=model.pk, prompt="a lighthouse at dusk")
    GenerationService.mark_running(request_id=req.pk)
    assert GenerationService.mark_succeeded(request_id=req.pk, results=[{"kind": "video"}])
    return req


def xp_and_level(user) -> tuple[int, int]:
    user = TgUser.objects.get(pk=user.pk)
    return user.xp, user.level


def level_perk(user) -> D:
    quote = PaymentService.quote(user_id=user.pk, package_id=TopUpPackage.objects.get(name="Pro").pk)
    return quote.bonus_percent


def test_an_undelivered_result_takes_its_xp_back(make_user, veo):
    user = make_user(balance=100, xp=400, level=2)  # level 2 (150 XP); level 3 at 500 XP gives +3% on top-ups
    req = succeeded(user, veo)
    assert xp_and_level(user) == (400 + VEO_XP, 3) and level_perk(user) == 3
    assert GenRequest.objects.get(pk=req.pk).xp_awarded == VEO_XP

    assert GenerationService.fail_undelivered(request_id=req.pk, error_code="bot_blocked")
    assert xp_and_level(user) == (400, 2) and level_perk(user) == 0
    GenerationService.refund(request_id=req.pk)  # a replayed refund takes nothing more

    # Requests that fail or are cancelled before succeeding gave no XP, and take none.
    failed = GenerationService.create_request(user_id=user.pk, ai_model_id=veo.pk, prompt="a storm")
    GenerationService.mark_running(request_id=failed.pk)
    assert GenerationService.fail(request_id=failed.pk, error_code="provider_error")
    cancelled = GenerationService.create_request(user_id=user.pk, ai_model_id=veo.pk, prompt="a calm sea")
    assert GenerationService.cancel(request_id=cancelled.pk)
    assert not GenerationService.fail_undelivered(request_id=req.pk, error_code="bot_blocked")
    assert xp_and_level(user) == (400, 2)
    assert GenRequest.objects.get(pk=req.pk).xp_awarded == 0


def test_an_operator_refund_takes_the_xp_back_once(make_user, veo):
    user = make_user(balance=100)
    kept, refunded = succeeded(user, veo), succeeded(user, veo)
    GenerationService.mark_delivered(request_id=kept.pk)
    assert xp_and_level(user) == (2 * VEO_XP, 2)
    assert GenerationService.admin_refund(request_id=refunded.pk).amount == D(19)
    assert xp_and_level(user) == (VEO_XP, 2)
    assert GenerationService.admin_refund(request_id=refunded.pk).replayed
    assert xp_and_level(user) == (VEO_XP, 2), "the delivered generation's XP stays"


def test_xp_is_taken_back_in_the_refunds_transaction(make_user, veo):
    user = make_user(balance=100)
    req = succeeded(user, veo)
    with pytest.raises(RuntimeError), transaction.atomic():
        GenerationService.fail_undelivered(request_id=req.pk, error_code="bot_blocked")
        assert xp_and_level(user) == (0, 1)
        raise RuntimeError("the refund's transaction rolls back")
    assert xp_and_level(user) == (VEO_XP, 2) and GenRequest.objects.get(pk=req.pk).xp_awarded == VEO_XP
    assert GenerationService.fail_undelivered(request_id=req.pk, error_code="bot_blocked")
    assert xp_and_level(user) == (0, 1)


def test_xp_never_goes_below_zero(make_user, veo):
    user = make_user(balance=100)
    req = succeeded(user, veo)
    TgUser.objects.filter(pk=user.pk).update(xp=50, level=1)  # e.g. an operator reset the XP meanwhile
    GenerationService.admin_refund(request_id=req.pk)
    assert xp_and_level(user) == (0, 1)
    assert levels.revoke_xp(user_id=user.pk, xp=0) == 1
