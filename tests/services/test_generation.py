from decimal import Decimal

import pytest
from django.db import transaction

from botapp.models import GenRequest, Transaction, UserBalance
from botapp.services import levels
from botapp.services.exceptions import (
    InsufficientFunds,
    InvalidParameter,
    InvalidPrompt,
    InvalidTransition,
    ModelUnavailable,
    PromptTooLong,
    TooManyImages,
    TooManyInFlight,
    UserBanned,
)
from botapp.services.generation import GenerationService

D = Decimal
pytestmark = pytest.mark.django_db
IMG = {"file_id": "f", "file_unique_id": "u", "mime_type": "image/jpeg", "size": 100}


def create(user, model, **kw):
    kw.setdefault("prompt", "a cat in space")
    return GenerationService.create_request(user_id=user.pk, ai_model_id=model.pk, **kw)


def test_create_charges_and_queues_on_commit(make_user, nano, django_capture_on_commit_callbacks):
    user = make_user(balance=10)
    with django_capture_on_commit_callbacks(execute=True):
        request = create(user, nano, params={"aspect_ratio": "16:9"}, chat_id=5)
    request.refresh_from_db()
    assert request.status == "queued" and request.queued_at
    assert request.price == D("1.50") and request.model == "nano-banana-2-1" and request.kind == "image"
    assert request.params["aspect_ratio"] == "16:9"
    assert request.deadline_at > request.created_at
    assert UserBalance.objects.get(user=user).balance == D("8.50")
    assert Transaction.objects.get(operation_key=request.charge_key).gen_request_id == request.pk


def test_rollback_of_outer_transaction_enqueues_nothing(make_user, nano, django_capture_on_commit_callbacks):
    user = make_user(balance=10)
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError), transaction.atomic():
        create(user, nano)
        raise RuntimeError
    assert callbacks == []
    assert not GenRequest.objects.exists()
    assert UserBalance.objects.get(user=user).balance == D(10)


def test_insufficient_balance_creates_nothing(make_user, veo):
    user = make_user(balance=5)
    with pytest.raises(InsufficientFunds) as exc:
        create(user, veo)
    assert exc.value.shortfall == D(14)
    assert not GenRequest.objects.exists()


def test_idempotency_key_charges_once(make_user, nano):
    user = make_user(balance=10)
    a = create(user, nano, idempotency_key="confirm:1:abc")
    b = create(user, nano, idempotency_key="confirm:1:abc")
    assert a.pk == b.pk
    assert UserBalance.objects.get(user=user).balance == D("8.50")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"prompt": "   "}, InvalidPrompt),
        ({"prompt": "x" * 4001}, PromptTooLong),
        ({"input_images": [IMG] * 15}, TooManyImages),
        ({"params": {"aspect_ratio": "7:3"}}, InvalidParameter),
    ],
)
def test_bad_input_is_refused_without_charge(make_user, nano, kwargs, error):
    user = make_user(balance=10)
    with pytest.raises(error):
        create(user, nano, **kwargs)
    assert UserBalance.objects.get(user=user).balance == D(10)
    assert not GenRequest.objects.exists()


def test_video_params_validated(make_user, veo):
    user = make_user(balance=100)
    with pytest.raises(InvalidParameter):
        create(user, veo, params={"duration_seconds": 5})
    with pytest.raises(InvalidParameter):
        create(user, veo, params={"resolution": "8k"})
    with pytest.raises(InvalidParameter):  # Veo makes 1080p and 4k at 8 s only
        create(user, veo, params={"resolution": "1080p", "duration_seconds": 4})
    with pytest.raises(TooManyImages):
        create(user, veo, input_images=[IMG, IMG])
    ok = create(user, veo, params={"duration_seconds": "6", "aspect_ratio": "9:16"}, input_images=[IMG])
    assert ok.params == {"aspect_ratio": "9:16", "duration_seconds": 6, "resolution": "720p", "generate_audio": True}


def test_prompt_limit_counts_characters(make_user, nano):
    user = make_user(balance=10)
    assert create(user, nano, prompt="ж" * 2000).pk  # 4000 bytes, 2000 characters: allowed


def test_inactive_model_and_banned_user(make_user, nano):
    user = make_user(balance=10)
    nano.is_active = False
    nano.save()
    with pytest.raises(ModelUnavailable):
        create(user, nano)
    nano.is_active = True
    nano.save()
    banned = make_user(balance=10, is_banned=True)
    with pytest.raises(UserBanned):
        create(banned, nano)


def test_in_flight_cap(make_user, nano, settings):
    settings.MAX_INFLIGHT_PER_USER = 2
    user = make_user(balance=10)
    create(user, nano)
    second = create(user, nano)
    with pytest.raises(TooManyInFlight):
        create(user, nano)
    GenerationService.mark_running(request_id=second.pk)
    GenerationService.fail(request_id=second.pk, error_code="x")
    create(user, nano)  # a slot is free again


def test_transitions_are_conditional(make_user, nano):
    user = make_user(balance=10)
    req = create(user, nano)
    assert GenerationService.mark_queued(request_id=req.pk)
    assert not GenerationService.mark_queued(request_id=req.pk)
    assert GenerationService.mark_running(request_id=req.pk)
    assert not GenerationService.mark_running(request_id=req.pk)  # a duplicate task gets nothing
    assert GenerationService.mark_succeeded(request_id=req.pk, results=[{"kind": "image"}])
    assert not GenerationService.mark_succeeded(request_id=req.pk, results=[])
    assert GenerationService.mark_delivered(request_id=req.pk)
    assert not GenerationService.fail(request_id=req.pk, error_code="late")
    assert not GenerationService.fail_undelivered(request_id=req.pk, error_code="late")
    req.refresh_from_db()
    assert req.status == "succeeded" and req.refunded_at is None
    with pytest.raises(InvalidTransition):
        GenerationService.admin_refund(request_id=req.pk)
    assert not Transaction.objects.filter(kind="refund").exists()


def test_fail_refunds_exactly_once(make_user, nano):
    user = make_user(balance=10, bonus=1)
    req = create(user, nano)
    GenerationService.mark_running(request_id=req.pk)
    assert GenerationService.fail(request_id=req.pk, error_code="safety", error_message="IMAGE_SAFETY")
    assert not GenerationService.fail(request_id=req.pk, error_code="timeout")
    GenerationService.refund(request_id=req.pk)  # an explicit replay does nothing either
    bal = UserBalance.objects.get(user=user)
    assert (bal.balance, bal.bonus_balance) == (D(10), D(1))
    assert Transaction.objects.filter(kind="refund").count() == 2  # one row per bucket, one operation
    req.refresh_from_db()
    assert req.status == "failed" and req.error_code == "safety" and req.refunded_at


def test_undelivered_success_is_refunded(make_user, nano):
    user = make_user(balance=10)
    req = create(user, nano)
    GenerationService.mark_running(request_id=req.pk)
    GenerationService.mark_succeeded(request_id=req.pk, results=[])
    assert GenerationService.fail_undelivered(request_id=req.pk, error_code="bot_blocked")
    assert UserBalance.objects.get(user=user).balance == D(10)


def test_cancel_only_before_the_provider_is_asked(make_user, nano):
    user = make_user(balance=10)
    a, b, c = create(user, nano), create(user, nano), create(user, nano)
    assert GenerationService.cancel(request_id=a.pk, user_id=user.pk)  # queued
    assert not GenerationService.cancel(request_id=a.pk, user_id=user.pk)  # once
    GenerationService.mark_running(request_id=b.pk)
    assert GenerationService.cancel(request_id=b.pk, user_id=user.pk)  # claimed, not sent yet
    assert not GenerationService.mark_submitted(request_id=b.pk)  # the worker then stops
    GenerationService.mark_running(request_id=c.pk)
    assert GenerationService.mark_submitted(request_id=c.pk)
    assert not GenerationService.cancel(request_id=c.pk, user_id=user.pk)  # sent: Google charges
    assert UserBalance.objects.get(user=user).balance == D("8.50")


def test_admin_refund_of_running_request(make_user, nano):
    user = make_user(balance=10)
    req = create(user, nano)
    GenerationService.mark_running(request_id=req.pk)
    assert GenerationService.admin_refund(request_id=req.pk).amount == D("1.50")
    assert GenerationService.admin_refund(request_id=req.pk).replayed


def test_xp_and_level_up(make_user, veo):
    user = make_user(balance=200)
    level_up = None
    for _ in range(3):
        req = create(user, veo)
        GenerationService.mark_running(request_id=req.pk)
        result = GenerationService.mark_succeeded(request_id=req.pk, results=[])
        level_up = result if isinstance(result, levels.LevelUp) else level_up
    user.refresh_from_db()
    assert user.xp == 3 * 19 * 10
    assert user.level == 3 and level_up.new_level == 3
    progress = levels.progress(user=user)
    assert progress.next_level_xp == 1500 and 0 < progress.fraction < 1
    assert len(progress.bar(10)) == 10


def test_stats(make_user, nano, veo):
    user = make_user(balance=100)
    ok = create(user, nano)
    bad = create(user, veo)
    for r in (ok, bad):
        GenerationService.mark_running(request_id=r.pk)
    GenerationService.mark_succeeded(request_id=ok.pk, results=[])
    GenerationService.fail(request_id=bad.pk, error_code="x")
    stats = GenerationService.user_stats(user_id=user.pk)
    assert (stats.total, stats.succeeded, stats.failed, stats.images, stats.videos) == (2, 1, 1, 1, 0)
    assert stats.tokens_spent == D("1.50")
    glob = GenerationService.global_stats()
    assert glob.requests_by_status == {"succeeded": 1, "failed": 1}
    assert glob.tokens_spent == D("20.50") and glob.tokens_refunded == D(19)
    assert glob.failure_rate == 0.5


def test_admin_refund_waits_while_the_result_is_being_sent(make_user, nano):
    from datetime import timedelta

    from django.utils import timezone

    user = make_user(balance=10)
    req = create(user, nano)
    GenerationService.mark_running(request_id=req.pk)
    GenerationService.mark_succeeded(request_id=req.pk, results=[])
    # A worker's delivery claim: the result may be on its way to Telegram right now.
    GenRequest.objects.filter(pk=req.pk).update(next_poll_at=timezone.now() + timedelta(minutes=1))
    with pytest.raises(InvalidTransition):
        GenerationService.admin_refund(request_id=req.pk)
    assert UserBalance.objects.get(user=user).balance == D("8.50")
    GenRequest.objects.filter(pk=req.pk).update(next_poll_at=None)  # the claim lapsed, nothing was sent
    assert GenerationService.admin_refund(request_id=req.pk).amount == D("1.50")
    assert UserBalance.objects.get(user=user).balance == D(10)


@pytest.mark.parametrize(("model", "updates", "level"), [("nano", 2, 1), ("veo", 3, 2)])
def test_mark_succeeded_releases_the_lease_and_awards_xp_in_few_statements(make_user, request, model, updates, level):
    """The finishing step of every video: one transaction of BEGIN/COMMIT around a read, the move (the
    lease released in it: a free delivery claim) and the XP (added, read back with its level), nothing
    more and no savepoint."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    user = make_user(balance=200)
    req = create(user, request.getfixturevalue(model))
    GenerationService.mark_running(request_id=req.pk)
    GenRequest.objects.filter(pk=req.pk).update(next_poll_at=timezone.now())  # the running step's lease
    with CaptureQueriesContext(connection) as queries:
        outcome = GenerationService.mark_succeeded(request_id=req.pk, results=[])
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    # the test runs in a transaction, so mark_succeeded's own atomic block is the one savepoint
    assert statements.count("SAVEPOINT") == 1 and statements.count("RELEASE") == 1, statements
    # a third UPDATE only when a level is crossed (Veo's 190 XP pass level 2's 150)
    assert statements.count("SELECT") == 2 and statements.count("UPDATE") == updates, statements
    assert (outcome is True) if level == 1 else (outcome.new_level == level)
    req.refresh_from_db()
    assert req.status == "succeeded" and req.next_poll_at is None
    user.refresh_from_db()
    assert (user.xp, user.level) == (req.xp_awarded, level)


def test_award_xp_crosses_thresholds_and_never_lowers_a_level(make_user):
    from botapp.models import Level, TgUser

    user = make_user()
    thresholds = list(Level.objects.order_by("xp_required").values_list("number", "xp_required"))
    (first, _), _, (third, third_xp) = thresholds[:3]
    assert levels.award_xp(user_id=user.pk, tokens=D(0)) is None  # no XP, no statement
    up = levels.award_xp(user_id=user.pk, tokens=D(third_xp) / 10)  # straight past the second level
    assert (up.old_level, up.new_level, up.xp) == (first, third, third_xp)
    assert levels.award_xp(user_id=user.pk, tokens=D("0.1")) is None  # inside the level
    TgUser.objects.filter(pk=user.pk).update(level=third + 1)  # set higher by hand: kept
    assert levels.award_xp(user_id=user.pk, tokens=D(1)) is None
    user.refresh_from_db()
    assert (user.xp, user.level) == (third_xp + 11, third + 1)
    assert levels.award_xp(user_id=10**9, tokens=D(1)) is None  # no such user
