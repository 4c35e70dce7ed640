"""Control while it runs, in this process: the queue position and the estimated wait
(botapp.selectors.queue), the cancel outcomes (botapp.services.control), a retired model (paused once,
its waiting requests failed with their own message, the catalogue stamp the bot checks), the sweep,
the worker's status message and its buttons, and the admin's resume. End to end (the bot, a real
worker, the fake Google): test_control_e2e.py."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.contrib import admin
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from botapp import bridge
from botapp.engine import common, failures, sweep
from botapp.models import AIModel, GenRequest, Transaction, UserBalance
from botapp.providers import PermanentError
from botapp.selectors import queue
from botapp.services import control
from botapp.services.control import CancelState
from botapp.services.generation import GenerationService
from sandbox.telegram import button_texts

D = Decimal
GONE = PermanentError("404 NOT_FOUND: models/gemini-nano-banana-2.1 is not found", code="model_not_found")


@pytest.fixture(autouse=True)
def _clean_cache(settings):
    settings.MAX_INFLIGHT_PER_USER = 20
    cache.clear()
    bridge.clear_caches()
    yield
    cache.clear()
    bridge.clear_caches()


def create(user, model, **kw) -> GenRequest:
    kw.setdefault("prompt", "a lighthouse at dawn")
    return GenerationService.create_request(user_id=user.pk, ai_model_id=model.pk, **kw)


def refunds(request: GenRequest) -> list[Decimal]:
    return list(
        Transaction.objects.filter(gen_request=request, kind=Transaction.Kind.REFUND).values_list("amount", flat=True)
    )


def history(model: AIModel, user, seconds: list[float]) -> None:
    """Succeeded requests of `model` that took these many seconds (started -> finished)."""
    now = timezone.now()
    for value in seconds:
        request = create(user, model)
        GenRequest.objects.filter(pk=request.pk).update(
            status=GenRequest.Status.SUCCEEDED, started_at=now - timedelta(seconds=value), finished_at=now
        )


# --- the position and the wait ---------------------------------------------------------------------------
@pytest.mark.django_db
def test_position_counts_the_requests_before_it_that_wait_in_the_shared_queue(make_user, nano, veo, settings):
    settings.CELERY_WORKER_CONCURRENCY = 8
    user, other = make_user(balance=100), make_user(balance=100)
    first, second = create(user, nano), create(other, nano)
    video = create(other, veo)
    third = create(user, nano)

    def position(request):
        return queue.estimate(ai_model_id=request.ai_model_id, kind=request.kind, request_id=request.pk).position

    # Images and videos share run_generation's queue: the video counts for the image after it.
    assert [position(r) for r in (first, second, video, third)] == [1, 2, 3, 4]
    assert queue.estimate(ai_model_id=nano.pk, kind="image").position == 5  # one about to be created
    # A running request is no longer waiting; a cancelled one is gone.
    GenerationService.mark_running(request_id=first.pk)
    GenerationService.cancel(request_id=video.pk, user_id=other.pk)
    assert [position(r) for r in (second, third)] == [1, 2]


@pytest.mark.django_db
def test_the_wait_takes_the_workers_concurrency_and_the_models_history(make_user, nano, veo, settings):
    settings.QUEUE_DEFAULT_IMAGE_SECONDS = 40
    settings.QUEUE_DEFAULT_VIDEO_SECONDS = 100
    settings.CELERY_WORKER_CONCURRENCY = 2
    user = make_user(balance=200)
    running, _ahead = create(user, nano), create(user, nano)
    GenerationService.mark_running(request_id=running.pk)
    mine = create(user, nano)

    # No history: the default. One running + one ahead fill both slots: the work ahead is shared by
    # them (the running one half done): (40 + 40 / 2) / 2 = 30 s to start, then 40 s of its own.
    estimate = queue.estimate(ai_model_id=nano.pk, kind="image", request_id=mine.pk)
    assert (estimate.position, estimate.ahead, estimate.wait_seconds) == (2, 1, 70)
    # A video waiting holds a slot only for its submit call; its own wait is its render time.
    video = queue.estimate(ai_model_id=veo.pk, kind="video")
    assert video.position == 3
    assert video.wait_seconds == pytest.approx((40 + 40 + 40 / 2) / 2 + 100)
    # With free slots it starts at once.
    settings.CELERY_WORKER_CONCURRENCY = 16
    assert queue.estimate(ai_model_id=nano.pk, kind="image", request_id=mine.pk).wait_seconds == 40

    # History: the median of the model's recent durations (cached for a minute).
    history(nano, user, [10, 20, 90])
    assert queue.estimate(ai_model_id=nano.pk, kind="image", request_id=mine.pk).wait_seconds == 40  # cached
    cache.clear()
    assert queue.estimate(ai_model_id=nano.pk, kind="image", request_id=mine.pk).wait_seconds == 20


@pytest.mark.django_db
def test_the_estimate_is_a_few_queries(make_user, nano, veo, django_assert_max_num_queries):
    user = make_user(balance=300)
    requests = [create(user, model) for model in (nano, veo) * 5]
    mine = requests[-1]
    with django_assert_max_num_queries(4):  # waiting by model, busy by model, the typical durations
        queue.estimate(ai_model_id=mine.ai_model_id, kind=mine.kind, request_id=mine.pk)
    with django_assert_max_num_queries(2):  # the durations are cached
        queue.estimate(ai_model_id=mine.ai_model_id, kind=mine.kind, request_id=mine.pk)


@pytest.mark.django_db
def test_the_view_is_found_by_the_confirmation_key_of_its_own_user(make_user, nano):
    user, other = make_user(balance=10), make_user(balance=10)
    request = create(user, nano, idempotency_key=f"confirm:{user.pk}:n0nce")
    view = queue.request_view(user_id=user.pk, idempotency_key=f"confirm:{user.pk}:n0nce")
    assert view is not None and view.id == request.pk and view.cancellable
    assert view.estimate is not None and view.estimate.position == 1
    assert queue.request_view(user_id=other.pk, idempotency_key=f"confirm:{user.pk}:n0nce") is None
    assert queue.request_view(user_id=other.pk, idempotency_key=f"confirm:{other.pk}:n0nce") is None


# --- cancel ----------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_cancel_outcomes_and_one_refund(make_user, nano, veo):
    user, other = make_user(balance=50), make_user(balance=50)
    queued = create(user, nano)
    assert control.cancel(user_id=other.pk, request_id=queued.pk) is None  # not theirs
    outcome = control.cancel(user_id=user.pk, request_id=queued.pk)
    assert outcome.state == CancelState.CANCELLED and outcome.refunded == queued.price
    again = control.cancel(user_id=user.pk, request_id=queued.pk)
    assert again.state == CancelState.ALREADY_CANCELLED and again.refunded == queued.price
    assert refunds(queued) == [queued.price]

    claimed = create(user, veo)  # claimed by a worker that has not called Google yet: still cancellable
    GenerationService.mark_running(request_id=claimed.pk)
    assert control.cancel(user_id=user.pk, request_id=claimed.pk).state == CancelState.CANCELLED
    assert not GenerationService.mark_submitted(request_id=claimed.pk)  # the worker stops there

    sent = create(user, veo)
    GenerationService.mark_running(request_id=sent.pk)
    assert GenerationService.mark_submitted(request_id=sent.pk)
    assert control.cancel(user_id=user.pk, request_id=sent.pk).state == CancelState.SUBMITTED
    finished = create(user, nano)
    GenerationService.mark_running(request_id=finished.pk)
    GenerationService.mark_succeeded(request_id=finished.pk, results=[])
    assert control.cancel(user_id=user.pk, request_id=finished.pk).state == CancelState.FINISHED
    assert refunds(sent) == refunds(finished) == []
    assert UserBalance.objects.get(user=user).total == D(50) - sent.price - finished.price


# --- a retired model -----------------------------------------------------------------------------------------
def held(request: GenRequest, *, submitted: bool) -> GenRequest:
    GenerationService.mark_running(request_id=request.pk)
    if submitted:
        GenerationService.mark_submitted(request_id=request.pk)
    return GenRequest.objects.select_related("ai_model").get(pk=request.pk)


@pytest.mark.django_db
def test_a_404_pauses_the_model_once_and_fails_what_has_not_reached_google(
    make_user, nano, veo, django_capture_on_commit_callbacks, settings
):
    settings.ADMIN_IDS = []
    user = make_user(balance=100)
    failing = held(create(user, nano), submitted=True)
    at_google = held(create(user, nano), submitted=True)  # sent too: its own answer decides
    claimed = held(create(user, nano), submitted=False)
    waiting = create(user, nano)
    other_model = create(user, veo)
    stamp = control.catalogue_stamp()

    with django_capture_on_commit_callbacks(execute=True):
        assert failures.handle_error(failing, None, GONE, submit=True) == "failed"

    nano.refresh_from_db()
    assert not nano.is_active and nano.paused_at is not None
    assert "gemini-nano-banana-2.1" in nano.paused_reason and "not found" in nano.paused_reason
    assert control.catalogue_stamp() != stamp
    states = {r.pk: (r.status, r.error_code) for r in GenRequest.objects.all()}
    for request in (failing, claimed, waiting):
        assert states[request.pk] == ("failed", "model_not_found")
        assert refunds(request) == [request.price]
    assert states[at_google.pk][0] == "running" and states[other_model.pk][0] == "created"
    assert not GenerationService.mark_submitted(request_id=claimed.pk)  # its worker stops before Google
    # Once paused, the 404 of the request at Google fails it alone: no second pause, no new reason.
    reason = nano.paused_reason
    at_google = GenRequest.objects.select_related("ai_model").get(pk=at_google.pk)
    assert failures.handle_error(at_google, None, GONE, submit=True) == "failed"
    nano.refresh_from_db()
    assert nano.paused_reason == reason
    assert control.pause_model(ai_model_id=nano.pk, provider_model_id=nano.provider_model_id, reason="x") is None
    # The user's message is the model's own, with the refund; never "the generation failed".
    text = failures.failure_text(GenRequest.objects.get(pk=waiting.pk), "en")
    assert "no longer available" in text and "tokens are back" in text and "failed" not in text
    ru = failures.failure_text(GenRequest.objects.get(pk=waiting.pk), "ru")
    assert "больше недоступна" in ru


@pytest.mark.django_db
def test_a_model_whose_id_the_operator_changed_is_not_paused_by_an_old_404(make_user, nano):
    user = make_user(balance=10)
    failing = held(create(user, nano), submitted=True)
    AIModel.objects.filter(pk=nano.pk).update(provider_model_id="gemini-nano-banana-2.1-fixed")
    assert failures.handle_error(failing, None, GONE, submit=True) == "failed"
    nano.refresh_from_db()
    assert nano.is_active and nano.paused_at is None


@pytest.mark.django_db
def test_a_404_while_polling_is_the_operations_not_the_models(make_user, veo):
    request = held(create(make_user(balance=50), veo), submitted=True)
    assert failures.handle_error(request, None, GONE, submit=False) == "failed"
    veo.refresh_from_db()
    assert veo.is_active and veo.paused_at is None
    done = GenRequest.objects.get(pk=request.pk)
    assert done.error_code == "operation_not_found"
    assert "could not complete" in failures.failure_text(done, "en")


@pytest.mark.django_db
def test_the_sweep_fails_requests_waiting_for_a_paused_model(make_user, nano, veo):
    user = make_user(balance=50)
    waiting, other = create(user, nano), create(user, veo)
    control.pause_model(ai_model_id=nano.pk, provider_model_id=nano.provider_model_id, reason="gone")
    assert sweep.sweep()["failed"] == 1
    assert GenRequest.objects.get(pk=waiting.pk).error_code == "model_not_found"
    assert refunds(waiting) == [waiting.price]
    assert GenRequest.objects.get(pk=other.pk).status == "created"  # (not dispatched in this test)
    # Manually deactivated (not paused by the bot): its requests are left to run.
    AIModel.objects.filter(pk=veo.pk).update(is_active=False)
    assert sweep.sweep()["failed"] == 0


@pytest.mark.django_db
def test_the_bot_stops_offering_a_paused_model_within_a_second(
    make_user, nano, django_capture_on_commit_callbacks, monkeypatch
):
    from botapp.selectors import catalogue

    monkeypatch.setattr(catalogue, "STAMP_CHECK_INTERVAL", 0.0)
    assert nano.pk in [m.id for m in bridge.catalogue()]
    AIModel.objects.filter(pk=nano.pk).update(is_active=False)  # no stamp: the cache holds (CATALOGUE_TTL)
    assert nano.pk in [m.id for m in bridge.catalogue()]
    with django_capture_on_commit_callbacks(execute=True):
        AIModel.objects.filter(pk=nano.pk).update(is_active=True)
        control.pause_model(ai_model_id=nano.pk, provider_model_id=nano.provider_model_id, reason="gone")
    assert nano.pk not in [m.id for m in bridge.catalogue()]
    with django_capture_on_commit_callbacks(execute=True):
        assert control.resume_models(ai_model_ids=[nano.pk]) == 1
    assert nano.pk in [m.id for m in bridge.catalogue()]


# --- the worker's status message -------------------------------------------------------------------------
def status_message(emulator, chat_id: int) -> int:
    url = f"{emulator.base_url}/bot{emulator.token}/sendMessage"
    return httpx.post(url, json={"chat_id": chat_id, "text": "⏳ queued"}).json()["result"]["message_id"]


@pytest.mark.django_db(transaction=True)
def test_the_worker_keeps_the_buttons_until_it_is_sent_and_restores_a_cancel(engine, emulator, tg_user, nano):
    from botapp.telegram.sender import get_sender

    emu_user, user = tg_user(balance=10)
    chat = emu_user.chat_id

    def claimed(nonce: str) -> GenRequest:
        request = create(
            user, nano, chat_id=chat, status_message_id=status_message(emulator, chat),
            idempotency_key=f"confirm:{user.pk}:{nonce}",
        )  # fmt: skip
        GenerationService.mark_running(request_id=request.pk)
        return common.load(request.pk)

    request = claimed("aaaa")
    common.show_status(request, get_sender(), "generation.status.generating", "en")
    shown = emulator.message(chat, request.status_message_id)
    assert "generating" in shown["text"] and button_texts(shown) == ["🔄 Refresh", "❌ Cancel"]

    # The user cancelled while the worker was about to edit: the bot's edit came first, the worker's
    # "generating" would hide it; the worker reads the status again and puts "cancelled" back.
    request = claimed("bbbb")
    GenerationService.cancel(request_id=request.pk, user_id=user.pk)
    common.show_status(request, get_sender(), "generation.status.generating", "en")
    shown = emulator.message(chat, request.status_message_id)
    assert "cancelled" in shown["text"] and "1.5" in shown["text"]
    assert button_texts(shown) == ["🏠 Menu"]

    # Once sent to the provider: no buttons.
    request = claimed("cccc")
    GenerationService.mark_submitted(request_id=request.pk)
    common.show_status(common.load(request.pk), get_sender(), "generation.status.generating", "en")
    assert button_texts(emulator.message(chat, request.status_message_id)) == []


# --- the admin --------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_admin_shows_the_pause_and_resumes_the_model(admin_client, nano, django_capture_on_commit_callbacks):
    control.pause_model(ai_model_id=nano.pk, provider_model_id=nano.provider_model_id, reason="Google: 404 gone")
    changelist = reverse("admin:botapp_aimodel_changelist")
    assert "Google: 404 gone" in admin_client.get(changelist).content.decode()
    page = admin_client.get(reverse("admin:botapp_aimodel_change", args=[nano.pk])).content.decode()
    assert "Paused by the bot" in page and "Google: 404 gone" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            changelist, {"action": "resume", "_selected_action": [str(nano.pk)], "index": "0"}, follow=True
        )
    assert any("Resumed: 1" in str(m) for m in response.context["messages"])
    nano.refresh_from_db()
    assert nano.is_active and nano.paused_at is None and nano.paused_reason == ""
    page = admin_client.get(reverse("admin:botapp_aimodel_change", args=[nano.pk])).content.decode()
    assert "Paused by the bot" not in page


@pytest.mark.django_db
def test_ticking_active_in_the_admin_clears_the_pause(rf, admin_user, nano, django_capture_on_commit_callbacks):
    """Fixing the id and ticking "active" in the form (or the list) is a resume too; the bots are told."""
    control.pause_model(ai_model_id=nano.pk, provider_model_id=nano.provider_model_id, reason="gone")
    nano.refresh_from_db()
    stamp = control.catalogue_stamp()
    nano.is_active, nano.provider_model_id = True, "gemini-nano-banana-2.1-fixed"
    request = rf.post("/")
    request.user = admin_user
    with django_capture_on_commit_callbacks(execute=True):
        admin.site._registry[AIModel].save_model(request, nano, None, True)
    nano.refresh_from_db()
    assert nano.is_active and nano.paused_at is None and nano.paused_reason == ""
    assert nano.provider_model_id == "gemini-nano-banana-2.1-fixed"
    assert control.catalogue_stamp() != stamp
