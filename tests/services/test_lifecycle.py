"""A model's lifecycle (botapp/services/lifecycle.py), in this process: the switch to the successor (once,
under duplicates; the waiting requests moved or refunded by price; one alert), the validation of a
successor (itself, another kind, cycles), the engine's 404 on a model with a successor, the sweep, the
daily check (the 14- and 3-day warnings once each across runs and days; past the shutdown without a
successor: a daily alert and the dashboard's banner, no pause) and the check against Google's list of
models (the fake Google). End to end through the worker: tests/generation/test_lifecycle_e2e.py."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection

from botapp import bridge
from botapp.engine import failures, sweep
from botapp.models import AIModel, GenRequest, Transaction, UserSettings
from botapp.providers import PermanentError
from botapp.services import control, lifecycle
from botapp.services.generation import GenerationService
from botapp.services.lifecycle import SuccessorError, check_successor
from tests.fake_google import _fresh_fake_google, server  # noqa: F401  (fixtures)

D = Decimal
TODAY = date(2026, 12, 10)
OLD_ID = "gemini-old-image"
GONE = PermanentError(f"404 NOT_FOUND: models/{OLD_ID} is not found for API version v1beta", code="model_not_found")
DISPATCHED: list[int] = []


def record_dispatch(request_id: int) -> None:
    """settings.GENERATION_DISPATCH in these tests: what was handed to the workers."""
    DISPATCHED.append(request_id)


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.MAX_INFLIGHT_PER_USER = 20
    settings.ADMIN_IDS = [701]
    settings.LANGUAGE_CODE = "en"
    settings.GENERATION_DISPATCH = "tests.services.test_lifecycle.record_dispatch"
    DISPATCHED.clear()
    cache.clear()
    bridge.clear_caches()
    yield
    cache.clear()
    bridge.clear_caches()


@pytest.fixture
def alerts_sent(monkeypatch):
    """The operator alerts queued (to be sent on commit): (chat_id, key, params)."""
    sent: list[tuple[int, str, dict]] = []
    from botapp.services import alerts

    monkeypatch.setattr(alerts, "_enqueue", lambda key, params, admin_ids: sent.append((admin_ids[0], key, params)))
    return sent


@pytest.fixture
def successor(nano):
    """Nano Banana 2.1 at 1.50, 4K twice that (3.00), prompts up to 4000 characters."""
    AIModel.objects.filter(pk=nano.pk).update(price=D("1.50"), pricing={"resolution": {"4K": "2"}})
    nano.refresh_from_db()
    return nano


def make_old(base: AIModel, **fields) -> AIModel:
    """A model like `base` (its successor unless `successor=` says otherwise)."""
    caps = {k: v for k, v in base.capabilities.items() if k not in ("thinking_levels", "draft")}
    values = {
        "slug": "nano-old",
        "name": "Nano Old",
        "emoji": "🍌",
        "kind": AIModel.Kind.IMAGE,
        "provider": AIModel.Provider.GEMINI_IMAGE,
        "provider_model_id": OLD_ID,
        "price": D("1.50"),
        "pricing": {},
        "is_active": True,
        "status": AIModel.Lifecycle.DEPRECATED,
        "successor": base,
        "capabilities": {**caps, "max_prompt_length": 8000},
        "default_params": {"aspect_ratio": "1:1", "resolution": "1K"},
        **fields,
    }
    return AIModel.objects.create(**values)


@pytest.fixture
def old(successor):
    """An active model (flat 1.50 at every resolution) whose successor is Nano Banana 2.1."""
    return make_old(successor)


def create(user, model, **kw) -> GenRequest:
    kw.setdefault("prompt", "a lighthouse at dawn")
    return GenerationService.create_request(user_id=user.pk, ai_model_id=model.pk, **kw)


def held(request: GenRequest, *, submitted: bool) -> GenRequest:
    GenerationService.mark_running(request_id=request.pk)
    if submitted:
        GenerationService.mark_submitted(request_id=request.pk)
    return GenRequest.objects.select_related("ai_model").get(pk=request.pk)


def ledger(request: GenRequest) -> list[tuple[str, Decimal]]:
    rows = Transaction.objects.filter(gen_request=request).order_by("pk").values_list("kind", "amount")
    return [(kind, abs(amount)) for kind, amount in rows]


def fresh(request: GenRequest) -> GenRequest:
    return GenRequest.objects.select_related("ai_model").get(pk=request.pk)


def keys(sent) -> list[str]:
    return [key for _, key, _ in sent]


# --- the switch -----------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_switch_moves_what_costs_the_same_or_less_and_refunds_the_dearer_once(
    make_user, old, successor, alerts_sent, django_capture_on_commit_callbacks
):
    user = make_user(balance=100)
    UserSettings.objects.filter(user=user).update(default_image_model=old)
    same = create(user, old, params={"resolution": "1K"})  # 1.50 there too
    dearer = create(user, old, params={"resolution": "4K"})  # 3.00 there: paid 1.50
    GenRequest.objects.filter(pk=same.pk).update(status="queued")
    claimed = held(create(user, old, params={"resolution": "2K", "aspect_ratio": "21:9"}), submitted=False)
    at_google = held(create(user, old), submitted=True)  # its own answer decides
    stamp = control.catalogue_stamp()

    with django_capture_on_commit_callbacks(execute=True):
        outcome = lifecycle.switch_to_successor(ai_model_id=old.pk, reason="test")
    assert outcome is not None and (outcome.moved, outcome.refunded) == (2, 1)
    assert outcome.successor_id == successor.pk

    old.refresh_from_db()
    assert old.status == "retired" and not old.is_active and old.switched_at == outcome.switched_at
    assert old.paused_at is None  # switched, not paused
    assert control.catalogue_stamp() != stamp
    assert UserSettings.objects.get(user=user).default_image_model_id == successor.pk

    moved = fresh(same)
    assert (moved.ai_model_id, moved.model, moved.status) == (successor.pk, successor.slug, "queued")
    assert moved.params["resolution"] == "1K" and moved.params["thinking_level"] == "medium"  # its default
    assert moved.price == D("1.50") and ledger(moved) == [("charge", D("1.50"))]
    # Claimed by a worker that has not asked Google: back in the queue on the successor; that worker stops.
    requeued = fresh(claimed)
    assert (requeued.ai_model_id, requeued.status, requeued.started_at) == (successor.pk, "queued", None)
    assert requeued.params["aspect_ratio"] == "21:9" and requeued.price == D("1.50")
    assert not GenerationService.mark_submitted(request_id=claimed.pk)
    assert sorted(DISPATCHED) == sorted([same.pk, claimed.pk])

    refunded = fresh(dearer)
    assert (refunded.status, refunded.error_code, refunded.ai_model_id) == ("failed", "model_switched", old.pk)
    assert ledger(refunded) == [("charge", D("1.50")), ("refund", D("1.50"))]
    assert fresh(at_google).status == "running" and fresh(at_google).ai_model_id == old.pk

    text = failures.failure_text(refunded, "en")
    assert "Nano Old" in text and "Nano Banana 2.1" in text and "<b>3</b> tokens" in text
    assert "<b>1.5</b> tokens are back" in text
    ru = failures.failure_text(refunded, "ru")
    assert "Nano Banana 2.1" in ru and "<b>3</b> токенов" in ru and "вернулись" in ru

    assert keys(alerts_sent) == ["lifecycle_switched"]
    params = alerts_sent[0][2]
    assert (params["moved"], params["refunded"], params["model_id"]) == ("2", "1", OLD_ID)

    # Called again (a duplicate task, another worker): nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.switch_to_successor(ai_model_id=old.pk, reason="again") is None
    assert keys(alerts_sent) == ["lifecycle_switched"]
    assert ledger(fresh(dearer)) == [("charge", D("1.50")), ("refund", D("1.50"))]
    call_command("check_ledger")


@pytest.mark.django_db
def test_a_cheaper_successor_takes_the_request_without_a_partial_refund(make_user, successor, alerts_sent):
    old = make_old(successor, price=D("2.50"))
    user = make_user(balance=10)
    request = create(user, old, params={"resolution": "2K"})  # paid 2.50; 1.50 on the successor
    outcome = lifecycle.switch_to_successor(ai_model_id=old.pk, reason="test")
    assert (outcome.moved, outcome.refunded) == (1, 0)
    moved = fresh(request)
    assert moved.ai_model_id == successor.pk and moved.status == "created"  # its own enqueue follows
    assert moved.price == D("2.50") and ledger(moved) == [("charge", D("2.50"))]
    assert user.balance.total == D("7.50")
    call_command("check_ledger")


@pytest.mark.django_db
def test_a_request_the_successor_does_not_take_as_it_is_is_refunded_with_its_own_message(
    make_user, old, successor, alerts_sent
):
    request = create(make_user(balance=10), old, prompt="x" * 5000)  # the successor takes 4000 characters
    outcome = lifecycle.switch_to_successor(ai_model_id=old.pk, reason="test")
    assert (outcome.moved, outcome.refunded) == (0, 1)
    done = fresh(request)
    assert (done.status, done.error_code) == ("failed", "model_switched_options")
    assert ledger(done) == [("charge", D("1.50")), ("refund", D("1.50"))]
    text = failures.failure_text(done, "en")
    assert "does not take this request" in text and "Nano Banana 2.1" in text and "tokens are back" in text


@pytest.mark.django_db
def test_a_retired_successor_is_refused_and_the_model_paused_instead(
    make_user, old, successor, alerts_sent, django_capture_on_commit_callbacks
):
    AIModel.objects.filter(pk=successor.pk).update(status=AIModel.Lifecycle.RETIRED)
    request = create(make_user(balance=10), old)
    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.switch_to_successor(ai_model_id=old.pk, reason="test") is None
    old.refresh_from_db()
    assert not old.is_active and old.paused_at is not None and old.switched_at is None and old.status != "retired"
    assert keys(alerts_sent) == ["lifecycle_switch_refused"]
    assert "retired too" in alerts_sent[0][2]["problem"]
    # Its waiting request is the paused model's: the sweep refunds it as "unavailable".
    assert fresh(request).ai_model_id == old.pk
    sweep.sweep()
    assert (fresh(request).status, fresh(request).error_code) == ("failed", "model_not_found")


@pytest.mark.django_db
def test_an_inactive_successor_becomes_active_with_its_status_unchanged(make_user, old, successor):
    AIModel.objects.filter(pk=successor.pk).update(is_active=False, status=AIModel.Lifecycle.PREVIEW)
    assert lifecycle.switch_to_successor(ai_model_id=old.pk, reason="test") is not None
    successor.refresh_from_db()
    assert successor.is_active and successor.status == "preview"


# --- the successor's validation ------------------------------------------------------------------------------
@pytest.mark.django_db
def test_check_successor_refuses_itself_another_kind_and_cycles(old, successor, veo):
    check_successor(old, successor)  # fine
    check_successor(old, None)
    with pytest.raises(SuccessorError) as exc:
        check_successor(old, old)
    assert exc.value.code == "self"
    with pytest.raises(SuccessorError) as exc:
        check_successor(old, veo)
    assert exc.value.code == "kind"
    # A -> B -> A
    AIModel.objects.filter(pk=successor.pk).update(successor=old)
    with pytest.raises(SuccessorError) as exc:
        check_successor(old, AIModel.objects.get(pk=successor.pk))
    assert exc.value.code == "cycle"
    # A -> C -> B -> A (longer)
    third = make_old(successor, slug="nano-third", provider_model_id="gemini-third-image", successor=successor)
    with pytest.raises(SuccessorError) as exc:
        check_successor(old, third)
    assert exc.value.code == "cycle"
    # A chain that does not come back (C -> B, B -> nothing) is fine; an unrelated loop is not followed forever.
    AIModel.objects.filter(pk=successor.pk).update(successor=None)
    check_successor(old, AIModel.objects.get(pk=third.pk))
    lite = AIModel.objects.get(slug="nano-banana-2-lite")
    AIModel.objects.filter(pk=successor.pk).update(successor=lite)
    AIModel.objects.filter(pk=lite.pk).update(successor=successor)
    check_successor(old, AIModel.objects.get(pk=third.pk))
    # A new model (no id yet) may take any successor of its kind.
    check_successor(AIModel(kind="image"), successor)


# --- the engine: Google's 404 ----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_404_switches_the_model_and_moves_the_request_that_got_it(
    make_user, old, successor, alerts_sent, django_capture_on_commit_callbacks
):
    user = make_user(balance=100)
    first = held(create(user, old), submitted=True)
    second = held(create(user, old, params={"resolution": "4K"}), submitted=True)  # dearer there
    third = held(create(user, old, params={"resolution": "2K"}), submitted=True)
    waiting = create(user, old)

    with django_capture_on_commit_callbacks(execute=True):
        assert failures.handle_error(first, None, GONE, submit=True) == "moved"
    old.refresh_from_db()
    assert old.switched_at is not None and old.status == "retired" and old.paused_at is None
    moved = fresh(first)
    assert (moved.status, moved.ai_model_id, moved.submitted_at, moved.provider_operation_id) == (
        "queued",
        successor.pk,
        None,
        "",
    )
    assert first.pk in DISPATCHED and fresh(waiting).ai_model_id == successor.pk
    # Two more workers get the 404 after the switch: no second switch, no second alert.
    with django_capture_on_commit_callbacks(execute=True):
        assert failures.handle_error(second, None, GONE, submit=True) == "failed"
        assert failures.handle_error(third, None, GONE, submit=True) == "moved"
        assert failures.handle_error(second, None, GONE, submit=True) == "not-failed"  # a duplicate
    assert (fresh(second).status, fresh(second).error_code) == ("failed", "model_switched")
    assert ledger(second) == [("charge", D("1.50")), ("refund", D("1.50"))]
    assert fresh(third).ai_model_id == successor.pk and ledger(third) == [("charge", D("1.50"))]
    assert keys(alerts_sent) == ["lifecycle_switched"]
    call_command("check_ledger")


@pytest.mark.django_db
def test_a_request_held_by_another_lease_is_not_moved_by_a_stale_404(make_user, old, successor):
    request = held(create(make_user(balance=10), old), submitted=True)
    GenRequest.objects.filter(pk=request.pk).update(next_poll_at=request.created_at)  # someone else's claim
    assert failures.handle_error(request, None, GONE, submit=True) == "lost"
    assert fresh(request).ai_model_id == old.pk and fresh(request).status == "running"


@pytest.mark.django_db
def test_without_a_successor_a_404_pauses_as_before(make_user, successor, alerts_sent):
    old = make_old(successor, successor=None)
    request = held(create(make_user(balance=10), old), submitted=True)
    assert failures.handle_error(request, None, GONE, submit=True) == "failed"
    old.refresh_from_db()
    assert old.paused_at is not None and old.switched_at is None
    assert fresh(request).error_code == "model_not_found"


@pytest.mark.django_db
def test_the_sweep_moves_what_waits_for_a_switched_model_and_never_fails_it(
    make_user, old, successor, django_capture_on_commit_callbacks
):
    user = make_user(balance=10)
    lifecycle.switch_to_successor(ai_model_id=old.pk, reason="test")
    # Created while the switch ran (the bot had read the model as active).
    late = GenRequest.objects.create(
        user=user,
        ai_model=old,
        model=old.slug,
        prompt="p",
        status="queued",
        price=D("1.50"),
        params={"resolution": "1K"},
    )
    with django_capture_on_commit_callbacks(execute=True):
        stats = sweep.sweep()
    assert stats["moved"] == 1 and stats["failed"] == 0
    assert fresh(late).ai_model_id == successor.pk and fresh(late).status == "queued"
    assert late.pk in DISPATCHED


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_get_the_404_at_once_one_switch_one_alert(make_user, successor, alerts_sent):
    old = make_old(successor)
    user = make_user(balance=100)
    requests = [held(create(user, old), submitted=True) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def worker(request):
        try:
            barrier.wait()
            outcomes.append(failures.handle_error(request, None, GONE, submit=True))
        except Exception as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(r,)) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(map(str, outcomes)) == ["moved", "moved"]
    assert keys(alerts_sent) == ["lifecycle_switched"]
    assert {fresh(r).ai_model_id for r in requests} == {successor.pk}
    call_command("check_ledger")


# --- the daily check ------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_14_and_3_day_warnings_are_sent_once_each_across_runs_and_days(old, successor, alerts_sent):
    AIModel.objects.filter(pk=old.pk).update(shutdown_date=TODAY + timedelta(days=14))
    warned = []
    for day in range(0, 12):  # two runs a day, 14 days ahead down to 3
        for _ in range(2):
            report = lifecycle.lifecycle_daily(today=TODAY + timedelta(days=day))
            warned += report.warned
    assert warned == [(old.pk, 14), (old.pk, 3)]
    assert keys(alerts_sent) == ["lifecycle_shutdown_soon", "lifecycle_shutdown_soon"]
    assert [params["days"] for _, _, params in alerts_sent] == ["14", "3"]
    assert alerts_sent[0][2]["successor"] == str(successor)
    # A restart (a new process) keeps them: the markers are in the shared cache.
    assert lifecycle.lifecycle_daily(today=TODAY + timedelta(days=12)).warned == []
    # A new shutdown date is a new warning.
    AIModel.objects.filter(pk=old.pk).update(shutdown_date=TODAY + timedelta(days=20))
    assert lifecycle.lifecycle_daily(today=TODAY + timedelta(days=12)).warned == [(old.pk, 14)]


@pytest.mark.django_db
def test_a_model_first_seen_two_days_before_gets_only_the_3_day_warning(make_user, successor, alerts_sent):
    alone = make_old(successor, successor=None, shutdown_date=TODAY + timedelta(days=2))
    assert lifecycle.lifecycle_daily(today=TODAY).warned == [(alone.pk, 3)]
    assert lifecycle.lifecycle_daily(today=TODAY + timedelta(days=1)).warned == []
    assert keys(alerts_sent) == ["lifecycle_shutdown_soon_alone"]
    # Inactive models and models without a date are not warned about.
    AIModel.objects.filter(pk=alone.pk).update(is_active=False, shutdown_date=TODAY + timedelta(days=10))
    assert lifecycle.lifecycle_daily(today=TODAY).warned == []


@pytest.mark.django_db
def test_past_the_shutdown_without_a_successor_a_daily_alert_and_the_banner_no_pause(successor, alerts_sent):
    alone = make_old(successor, successor=None, shutdown_date=TODAY - timedelta(days=1))
    soon = make_old(
        successor, slug="nano-soon", provider_model_id="gemini-soon", shutdown_date=TODAY + timedelta(days=20)
    )
    make_old(successor, slug="nano-later", provider_model_id="gemini-later", shutdown_date=TODAY + timedelta(days=45))
    for day in (0, 0, 1):
        report = lifecycle.lifecycle_daily(today=TODAY + timedelta(days=day))
        assert report.past_without_successor == [alone.pk] and report.switched == []
    alone.refresh_from_db()
    assert alone.is_active and alone.paused_at is None and alone.switched_at is None
    assert keys(alerts_sent) == ["lifecycle_past_shutdown", "lifecycle_past_shutdown"]  # once a day

    banner = lifecycle.shutdown_banner(today=TODAY)
    assert [(n.ai_model_id, n.days, n.danger) for n in banner] == [(alone.pk, -1, True), (soon.pk, 20, False)]
    assert banner[1].successor == str(successor)


@pytest.mark.django_db
def test_on_its_shutdown_date_a_model_with_a_successor_switches(make_user, old, successor, alerts_sent):
    AIModel.objects.filter(pk=old.pk).update(shutdown_date=TODAY)
    request = create(make_user(balance=10), old)
    report = lifecycle.lifecycle_daily(today=TODAY)
    assert report.switched == [old.pk]
    assert fresh(request).ai_model_id == successor.pk
    assert lifecycle.lifecycle_daily(today=TODAY + timedelta(days=1)).switched == []  # inactive now
    assert keys(alerts_sent) == ["lifecycle_switched"]
    assert "shutdown date" in alerts_sent[0][2]["reason"]


@pytest.mark.django_db
def test_the_beat_task_runs_the_daily_check(old, settings):
    from botapp import tasks

    AIModel.objects.filter(pk=old.pk).update(shutdown_date=date.today() + timedelta(days=3))
    assert tasks.check_model_lifecycle()["warned"] == 1
    entry = settings.CELERY_BEAT_SCHEDULE["model-lifecycle"]
    assert (
        entry["task"] == "botapp.tasks.check_model_lifecycle" and entry["schedule"] == settings.LIFECYCLE_CHECK_SECONDS
    )


# --- asking Google ----------------------------------------------------------------------------------------------
@pytest.fixture
def google_at(settings, server):  # noqa: F811 (the fixture)
    """Both backends pointed at the fake Google, with keys."""
    from botapp.providers.google.client import clear_client_cache

    settings.GOOGLE_API_KEY = settings.GOOGLE_VERTEX_API_KEY = "test-key"
    settings.GOOGLE_GEMINI_BASE_URL = settings.GOOGLE_VERTEX_BASE_URL = server.base_url
    settings.GOOGLE_GENAI_USE_VERTEXAI = False
    clear_client_cache()
    yield server
    clear_client_cache()


@pytest.mark.django_db
def test_check_with_google_flags_the_catalogue_ids_google_does_not_list(google_at, successor, veo):
    google_at.retire_model(successor.provider_model_id)
    checks = {check.backend: check for check in lifecycle.check_with_google()}
    assert set(checks) == {"gemini", "vertex"}
    gemini, vertex = checks["gemini"], checks["vertex"]
    assert not gemini.error and not vertex.error
    assert "gemini-3.1-flash-lite-image" in gemini.visible and successor.provider_model_id not in gemini.visible
    listed = {m.provider_model_id: m.listed for m in gemini.models}
    assert listed[successor.provider_model_id] is False and listed["gemini-3.1-flash-lite-image"] is True
    assert [m.provider_model_id for m in gemini.missing] == [successor.provider_model_id]
    assert {m.provider_model_id: m.listed for m in vertex.models}[veo.provider_model_id] is True
    assert "imagen-4.0-generate-001" in [m.provider_model_id for m in vertex.missing]  # shut down at Google too
    assert {r.path for r in google_at.requests_for("listModels")} == {
        "/v1/models",
        "/v1beta1/publishers/google/models",
    }

    only = lifecycle.check_with_google(backend="vertex")
    assert [check.backend for check in only] == ["vertex"]


@pytest.mark.django_db
def test_check_with_google_reports_an_error_without_the_key(google_at, settings, successor):
    key = "AIza" + "S" * 35
    settings.GOOGLE_API_KEY = key
    google_at.expected_api_key = "another-key"
    gemini = next(check for check in lifecycle.check_with_google() if check.backend == "gemini")
    assert gemini.error and "API key not valid" in gemini.error and key not in gemini.error
    assert gemini.visible == () and all(m.listed is None for m in gemini.models)
