"""The engine's decisions, run in this process (tasks eager) against the emulator and the fake server:
the demo provider and when it is refused, videos over Telegram's upload limit, the recovery sweep,
input photo checks, poll pacing. The worker-process behaviour is in test_worker_e2e.py."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from PIL import Image

from botapp.engine import common, delivery, failures, inputs, lease, sweep
from botapp.engine import results as engine_results
from botapp.models import GenRequest, Transaction, UserBalance
from botapp.providers.demo import render_video
from botapp.services.generation import GenerationService

from .conftest import make_request, run_to_end

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal


def refunds(request) -> int:
    return Transaction.objects.filter(gen_request=request, kind="refund").count()


# --- the demo provider --------------------------------------------------------------------------------
def test_demo_without_credentials_is_labelled(engine, settings, tg_user, nano, emulator):
    settings.GENERATION_PROVIDER_MODE = "auto"
    settings.GOOGLE_API_KEY = settings.GOOGLE_VERTEX_API_KEY = ""
    settings.GENERATION_ALLOW_DEMO = True
    emu_user, user = tg_user()
    done = run_to_end(make_request(user, nano, emu_user.chat_id).pk)
    assert done.status == "succeeded" and done.delivered_at
    assert done.results[0]["is_demo"] is True
    photo = emulator.last_message(emu_user.chat_id)
    assert "DEMO" in photo["caption"]


def test_demo_video_is_polled_and_delivered(engine, settings, tg_user, veo, emulator):
    settings.GENERATION_PROVIDER_MODE = "demo"
    settings.GENERATION_ALLOW_DEMO = True
    emu_user, user = tg_user()
    done = run_to_end(make_request(user, veo, emu_user.chat_id).pk)
    assert done.status == "succeeded" and done.provider_operation_id.startswith("demo-op-")
    assert "video" in emulator.last_message(emu_user.chat_id)
    from botapp.engine import timing

    # the finished operation taught the poller how long a video of this kind takes
    assert len(timing._samples[(veo.pk, timing._kind(done)[1])]) == 1


def test_a_poller_tick_reports_what_it_did_and_how_long_it_took(engine, settings, tg_user, veo):
    from django.utils import timezone

    from botapp.engine import poller, steps

    settings.GENERATION_PROVIDER_MODE = "demo"
    settings.GENERATION_ALLOW_DEMO = True
    emu_user, user = tg_user()
    request = make_request(user, veo, emu_user.chat_id)
    steps.start(request.pk)
    GenRequest.objects.filter(pk=request.pk).update(next_poll_at=timezone.now())
    report = poller.poll_due()
    assert (report.claimed, report.polled) == (1, 1)
    assert 0 < report.polling_seconds <= report.seconds


def test_demo_is_refused_where_not_allowed(engine, settings, tg_user, nano, emulator):
    settings.GENERATION_PROVIDER_MODE = "auto"
    settings.GOOGLE_API_KEY = settings.GOOGLE_VERTEX_API_KEY = ""
    settings.GENERATION_ALLOW_DEMO = False  # production with the real Telegram: never sell a demo picture
    emu_user, user = tg_user(balance=10)
    done = run_to_end(make_request(user, nano, emu_user.chat_id).pk)
    assert done.status == "failed" and done.error_code == "not_configured"
    assert refunds(done) == 1 and UserBalance.objects.get(user=user).balance == D(10)
    assert "temporarily unavailable" in emulator.last_message(emu_user.chat_id)["text"]


def test_long_prompt_with_markup_characters_fits_the_caption(engine, tg_user, nano, emulator):
    emu_user, user = tg_user()
    prompt = "<b>cats & dogs</b> " * 110  # ~2000 characters that expand when escaped
    done = run_to_end(make_request(user, nano, emu_user.chat_id, prompt=prompt[:2000]).pk)
    assert done.status == "succeeded" and done.delivered_at
    caption = emulator.last_message(emu_user.chat_id)["caption"]
    assert caption.count("<b>cats & dogs</b>") >= 30 and len(caption) <= 1024


# --- videos over the upload limit ---------------------------------------------------------------------
def succeeded_video(user, veo, chat_id, data: bytes) -> GenRequest:
    """A video request that finished: stored, marked succeeded, not yet delivered."""
    from botapp.providers import MediaItem, ProviderResult

    request = make_request(user, veo, chat_id)
    GenerationService.mark_running(request_id=request.pk)
    request = common.load(request.pk)
    results, _ = engine_results.store_media(request, ProviderResult(media=[MediaItem("video/mp4", data=data)]))
    GenerationService.mark_succeeded(request_id=request.pk, results=results)
    return request


@pytest.fixture(scope="module")
def demo_mp4() -> bytes:
    return render_video("a long flight over the mountains", seconds=3)


def test_video_over_the_limit_is_recompressed(engine, settings, tg_user, veo, emulator, demo_mp4):
    settings.TELEGRAM_UPLOAD_LIMIT_BYTES = len(demo_mp4) // 2
    emu_user, user = tg_user(balance=50)
    request = succeeded_video(user, veo, emu_user.chat_id, demo_mp4)
    assert delivery.deliver(request.pk) is None
    done = GenRequest.objects.get(pk=request.pk)
    assert done.delivered_at and done.results[0]["sent_variant"] == "compressed"
    sent = emulator.file_bytes(emulator.last_message(emu_user.chat_id))
    assert 0 < len(sent) <= settings.TELEGRAM_UPLOAD_LIMIT_BYTES


def test_video_that_cannot_fit_goes_as_a_link_from_remote_storage(
    engine, settings, tg_user, veo, emulator, demo_mp4, monkeypatch
):
    settings.TELEGRAM_UPLOAD_LIMIT_BYTES = 1000
    monkeypatch.setattr(engine_results, "shrink_video", lambda data, limit: None)
    monkeypatch.setattr(engine_results, "public_url", lambda path: "https://bucket.example.com/v.mp4?sig=1")
    emu_user, user = tg_user(balance=50)
    request = succeeded_video(user, veo, emu_user.chat_id, demo_mp4)
    delivery.deliver(request.pk)
    done = GenRequest.objects.get(pk=request.pk)
    assert done.delivered_at and done.results[0]["sent_as"] == "link"
    assert "https://bucket.example.com/v.mp4" in emulator.last_message(emu_user.chat_id)["text"]
    assert refunds(done) == 0


def test_video_that_cannot_fit_on_local_storage_is_refunded(
    engine, settings, tg_user, veo, emulator, demo_mp4, monkeypatch
):
    settings.TELEGRAM_UPLOAD_LIMIT_BYTES = 1000
    monkeypatch.setattr(engine_results, "shrink_video", lambda data, limit: None)
    emu_user, user = tg_user(balance=50)
    request = succeeded_video(user, veo, emu_user.chat_id, demo_mp4)
    delivery.deliver(request.pk)
    done = GenRequest.objects.get(pk=request.pk)
    assert done.status == "failed" and done.error_code == "result_too_large" and done.delivered_at is None
    assert refunds(done) == 1 and UserBalance.objects.get(user=user).balance == D(50)
    assert "too large" in emulator.last_message(emu_user.chat_id)["text"]


def test_delivery_never_follows_a_refund(engine, tg_user, veo, emulator, demo_mp4):
    emu_user, user = tg_user(balance=50)
    request = succeeded_video(user, veo, emu_user.chat_id, demo_mp4)
    GenerationService.fail_undelivered(request_id=request.pk, error_code="admin")
    assert delivery.deliver(request.pk) is None
    assert emulator.call_count("sendVideo", emu_user.chat_id) == 0


# --- the sweep -------------------------------------------------------------------------------------------
def test_sweep_queues_created_and_refunds_expired(engine, settings, tg_user, nano, monkeypatch):
    from botapp import tasks

    dispatched: list[int] = []
    monkeypatch.setattr(tasks.run_generation, "delay", lambda pk: dispatched.append(pk))
    settings.GENERATION_DISPATCH = "botapp.tasks.dispatch_generation"
    emu_user, user = tg_user(balance=10)
    old = timezone.now() - timedelta(minutes=5)
    created = make_request(user, nano, emu_user.chat_id)
    expired = make_request(user, nano, emu_user.chat_id)
    GenRequest.objects.filter(pk=created.pk).update(status="created", created_at=old)
    GenRequest.objects.filter(pk=expired.pk).update(status="queued", queued_at=old, deadline_at=old)
    dispatched.clear()

    first = sweep.sweep()
    second = sweep.sweep()
    assert first["queued"] == 1 and first["failed"] == 1 and second["failed"] == 0
    assert GenRequest.objects.get(pk=created.pk).status == "queued" and created.pk in dispatched
    assert GenRequest.objects.get(pk=expired.pk).status == "failed"
    assert refunds(expired) == 1


def test_sweep_resumes_abandoned_operations_and_refunds_undeliverable(engine, settings, tg_user, veo, monkeypatch):
    from botapp import tasks

    resumed: list[int] = []
    redelivered: list[int] = []
    monkeypatch.setattr(tasks.advance_generation, "delay", lambda pk, token=None: resumed.append(pk))
    monkeypatch.setattr(tasks.deliver_generation, "delay", lambda pk, level=None: redelivered.append(pk))
    emu_user, user = tg_user(balance=100)
    long_ago = timezone.now() - timedelta(hours=3)
    running = make_request(user, veo, emu_user.chat_id)
    GenRequest.objects.filter(pk=running.pk).update(
        status="running", provider_operation_id="op-1", next_poll_at=long_ago, started_at=long_ago
    )
    waiting = succeeded_video(user, veo, emu_user.chat_id, b"\x00" * 10)
    stale = succeeded_video(user, veo, emu_user.chat_id, b"\x00" * 10)
    GenRequest.objects.filter(pk=waiting.pk).update(next_poll_at=timezone.now() - timedelta(seconds=1))
    GenRequest.objects.filter(pk=stale.pk).update(finished_at=long_ago)

    stats = sweep.sweep()
    assert resumed == [running.pk] and redelivered == [waiting.pk]
    assert stats["failed"] == 1
    assert GenRequest.objects.get(pk=stale.pk).status == "failed" and refunds(stale) == 1
    sweep.sweep()
    assert refunds(stale) == 1


# --- small decisions --------------------------------------------------------------------------------------
def image_bytes(fmt: str, size=(32, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buffer, format=fmt)
    return buffer.getvalue()


def test_check_image():
    assert inputs.check_image(image_bytes("PNG")) == "image/png"
    assert inputs.check_image(image_bytes("JPEG")) == "image/jpeg"
    assert inputs.check_image(image_bytes("WEBP")) == "image/webp"
    with pytest.raises(inputs.InputImageError) as exc:
        inputs.check_image(image_bytes("GIF"))
    assert exc.value.code == "input_image_invalid"
    with pytest.raises(inputs.InputImageError):
        inputs.check_image(image_bytes("PNG")[:60])  # truncated
    with pytest.raises(inputs.InputImageError) as exc:
        inputs.check_image(image_bytes("PNG", size=(8000, 6000)))
    assert exc.value.code == "input_image_too_large"


def test_poll_pacing_and_backoff(settings):
    settings.VIDEO_POLL_MIN_SECONDS, settings.VIDEO_POLL_MAX_SECONDS, settings.VIDEO_POLL_FRACTION = 5, 20, 0.2
    now = timezone.now()
    young = GenRequest(started_at=now - timedelta(seconds=10))
    old = GenRequest(started_at=now - timedelta(minutes=10))
    assert lease.next_poll_delay(young, now) == 5
    assert lease.next_poll_delay(GenRequest(started_at=now - timedelta(seconds=50)), now) == pytest.approx(10)
    assert lease.next_poll_delay(old, now) == 20
    settings.GENERATION_RETRY_BASE_SECONDS, settings.GENERATION_RETRY_MAX_SECONDS = 2, 60
    assert 1.6 <= failures.backoff(1) <= 2.4
    assert failures.backoff(10) <= 72
    assert failures.backoff(1, retry_after=30) >= 30


def test_each_queue_gets_its_own_messages(settings):
    """Work, ticks and sends are separate queues with their own routing keys (a message lands in one)."""
    queues = settings.CELERY_TASK_QUEUES
    assert len({q.name for q in queues}) == len({q.routing_key for q in queues}) == 3
    names = {q.name for q in queues}
    assert {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} <= names
    assert settings.CELERY_TASK_DEFAULT_QUEUE in names


def test_poll_pacing_learns_when_operations_of_a_kind_finish(settings):
    """Operations of one model and parameters that finished at 58-62 s: the next one is polled every
    2 s from a little before 58 s to 62 s, at the regular pace outside; another kind is not affected."""
    from botapp.engine import timing

    settings.VIDEO_POLL_MIN_SECONDS, settings.VIDEO_POLL_MAX_SECONDS, settings.VIDEO_POLL_FRACTION = 5, 15, 0.1
    settings.VIDEO_POLL_DENSE_SECONDS, settings.VIDEO_POLL_LEARN_MIN = 2, 5
    now = timezone.now()

    def at(age: float, **params) -> float:
        request = GenRequest(ai_model_id=1, params=params or {"duration": 8}, started_at=now - timedelta(seconds=age))
        return lease.next_poll_delay(request, now)

    seen = GenRequest(ai_model_id=1, params={"duration": 8})
    for age in (58, 59, 60, 61, 62)[:4]:
        timing.learn(seen, age)
    assert at(50) == 5  # four seen: not yet learned
    timing.learn(seen, 62)
    start, until = timing.dense_window(seen)
    assert start == pytest.approx(58 * 0.95 - 2) and until == 64
    assert at(20) == 5  # young: the regular pace
    assert at(50) == pytest.approx(start - 50)  # the next poll lands where the window starts
    assert at(start - 1) == 2  # never closer than the dense pace
    assert at(57) == 2 and at(63) == 2
    assert at(90) == 9  # past the window: the regular pace again
    assert at(57, duration=4) == pytest.approx(5.7)  # another kind: nothing learned
    settings.VIDEO_POLL_DENSE_SECONDS = 0
    assert at(57) == pytest.approx(5.7)  # dense polling off


def test_the_dense_window_is_bounded(settings):
    from botapp.engine import timing

    settings.VIDEO_POLL_DENSE_SECONDS, settings.VIDEO_POLL_LEARN_MIN, settings.VIDEO_POLL_DENSE_SPAN_SECONDS = 2, 5, 30
    kind = GenRequest(ai_model_id=2, params={})
    for age in (20, 40, 80, 160, 320, 640):  # widely spread: at most 30 s of dense polling
        timing.learn(kind, age)
    start, until = timing.dense_window(kind)
    assert until - start == 30
    timing.learn(kind, -1)  # nonsense is ignored
    assert len(timing._samples[(2, "{}")]) == 6
