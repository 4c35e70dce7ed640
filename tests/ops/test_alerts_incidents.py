"""Operator alerts for incidents (issue 9, support tools): a model Google answers "not found" for
(probably retired), running generations the poller left overdue (the beat check), and the storm cap
(ALERT_MAX_PER_MINUTE across all alerts, then one summary). The model alert also runs end to end: a
generation against the Google stand-in answering 404 -> the operator gets exactly one message in the
Bot API emulator, however many requests fail."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from botapp import tasks
from botapp.engine import failures
from botapp.models import GenRequest, UserBalance
from botapp.providers import PermanentError
from botapp.services import alerts, control
from botapp.services.generation import GenerationService
from sandbox.google.server import Scenario
from tests.generation.conftest import emulator, engine, fake_google, make_request, run_to_end, tg_user  # noqa: F401

T0 = 1_900_000_020.0  # a moment 20 s into a minute (the storm cap counts per minute)


@pytest.fixture(autouse=True)
def _alert_settings(settings):
    settings.ADMIN_IDS = [501]
    settings.LANGUAGE_CODE = "en"
    settings.ALERT_COOLDOWN_SECONDS = 900
    settings.ALERT_QUEUE_STUCK_MINUTES = 10
    settings.ALERT_MAX_PER_MINUTE = 10
    settings.GENERATION_LEASE_SECONDS = 60
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def queued(monkeypatch):
    """The alert tasks queued (chat_id, key, params), instead of a broker."""
    sent: list[tuple[int, str, dict]] = []
    monkeypatch.setattr(tasks.send_operator_alert, "delay", lambda *args: sent.append(args))
    return sent


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """committed(fn, *args, **kw): call it and run what it left for "on commit" (db tests never commit)."""

    def call(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return call


@pytest.fixture
def clock(monkeypatch):
    """The storm cap's clock, moved by the test."""
    now = {"t": T0}
    monkeypatch.setattr(alerts, "_clock", lambda: now["t"])
    return now


def keys(queued) -> list[str]:
    return [key for _, key, _ in queued]


# --- a model Google does not know ----------------------------------------------------------------------
def running_request(user, model) -> GenRequest:
    request = GenerationService.create_request(user_id=user.pk, ai_model_id=model.pk, prompt="a cat")
    GenerationService.mark_running(request_id=request.pk)
    return GenRequest.objects.select_related("ai_model").get(pk=request.pk)


def sent(request: GenRequest) -> GenRequest:
    """The request as a worker holds it after calling Google (mark_submitted)."""
    assert GenerationService.mark_submitted(request_id=request.pk)
    return GenRequest.objects.select_related("ai_model").get(pk=request.pk)


def test_not_found_on_submit_alerts_once_per_model(committed, make_user, nano, veo, queued):
    """Three requests sent to Google at once all get 404: the model is paused once, one alert."""
    user = make_user(balance=100)
    gone = PermanentError("404 NOT_FOUND: Publisher model was not found", code="model_not_found")
    requests = [sent(running_request(user, nano)) for _ in range(3)]
    for request in requests:
        assert committed(failures.handle_error, request, None, gone, submit=True) == "failed"
    assert keys(queued) == ["model_not_found"]
    params = queued[0][2]
    assert (params["name"], params["model_id"]) == (nano.name, nano.provider_model_id)
    text = alerts.render(key="model_not_found", params=params)
    assert nano.provider_model_id in text and "retired" in text and "AI models" in text and "paused" in text
    assert "Publisher model was not found" in text

    # another model: its own alert
    committed(failures.handle_error, running_request(user, veo), None, gone, submit=True)
    assert keys(queued) == ["model_not_found", "model_not_found"]
    assert queued[1][2]["model_id"] == veo.provider_model_id
    assert GenRequest.objects.filter(status="failed", error_code="model_not_found").count() == 4


def test_a_new_id_of_the_same_model_is_a_new_incident(committed, make_user, nano, queued):
    user = make_user(balance=100)
    gone = PermanentError("404 NOT_FOUND", code="model_not_found")
    committed(failures.handle_error, running_request(user, nano), None, gone, submit=True)
    nano.refresh_from_db()
    assert not nano.is_active and nano.paused_at is not None
    nano.provider_model_id = "gemini-next-image"  # the operator switched it, and Google lacks that one too
    nano.save()
    assert control.resume_models(ai_model_ids=[nano.pk]) == 1
    committed(failures.handle_error, running_request(user, nano), None, gone, submit=True)
    assert [params["model_id"] for _, _, params in queued] == [queued[0][2]["model_id"], "gemini-next-image"]


def test_a_model_resumed_with_the_same_id_and_paused_again_alerts_again(committed, make_user, nano, queued):
    """Each pause is an incident: the operator resumed without fixing the id, the next 404 pauses it again."""
    user = make_user(balance=100)
    gone = PermanentError("404 NOT_FOUND", code="model_not_found")
    committed(failures.handle_error, running_request(user, nano), None, gone, submit=True)
    control.resume_models(ai_model_ids=[nano.pk])
    committed(failures.handle_error, running_request(user, nano), None, gone, submit=True)
    assert keys(queued) == ["model_not_found", "model_not_found"]


def test_the_model_alert_outlasts_the_ordinary_cool_down(committed, make_user, nano, queued, settings, monkeypatch):
    settings.ALERT_COOLDOWN_SECONDS = 1
    calls: list[dict] = []
    original = alerts.alert_operators
    monkeypatch.setattr(alerts, "alert_operators", lambda **kw: calls.append(kw) or original(**kw))
    assert committed(alerts.model_not_found, request=running_request(make_user(balance=10), nano), message="404")
    assert calls[0]["cooldown"] >= alerts.MODEL_ALERT_MIN_COOLDOWN_SECONDS


def test_not_found_while_polling_is_not_a_retired_model(committed, make_user, veo, queued):
    """A 404 on a poll is the operation's (expired, unknown), not the model's: no model alert."""
    request = running_request(make_user(balance=100), veo)
    lost = PermanentError("404 NOT_FOUND: Operation not found", code="model_not_found")
    assert committed(failures.handle_error, request, None, lost, submit=False) == "failed"
    assert queued == []


def test_other_permanent_errors_do_not_alert(committed, make_user, nano, queued):
    request = running_request(make_user(balance=100), nano)
    committed(failures.handle_error, request, None, PermanentError("403 PERMISSION_DENIED", code="auth"), submit=True)
    assert queued == []


@pytest.mark.django_db(transaction=True)
def test_a_retired_model_reaches_the_operator_once_end_to_end(
    engine,  # noqa: F811
    emulator,  # noqa: F811
    fake_google,  # noqa: F811
    tg_user,  # noqa: F811
    nano,
    settings,
):
    """Generations against the Google stand-in answering 404 for the model: each fails and is refunded,
    and the operator (ADMIN_IDS) receives exactly one alert in Telegram, through Celery and the sender."""
    operator = emulator.user(first_name="Operator", language_code="en")
    settings.ADMIN_IDS = [operator.id]
    fake_google.set_model_scenario(nano.provider_model_id, Scenario.error(404))
    emu_user, user = tg_user(balance=50)

    waiting = [make_request(user, nano, emu_user.chat_id).pk for _ in range(3)]
    done = [run_to_end(pk) for pk in waiting]

    assert [(r.status, r.error_code) for r in done] == [("failed", "model_not_found")] * 3
    # The first 404 paused the model and failed the two waiting requests: Google was asked once.
    assert len(fake_google.requests_for(model=nano.provider_model_id)) == 1
    alert = emulator.wait_for_message(operator.id, lambda m: "Model not found" in str(m.get("text")), 10)
    assert nano.provider_model_id in alert["text"] and nano.name in alert["text"]
    assert len(emulator.messages(operator.id)) == 1
    assert UserBalance.objects.get(user=user).total == Decimal(50)  # each one refunded


# --- the video queue ----------------------------------------------------------------------------------
def running(user, model, **fields) -> GenRequest:
    return GenRequest.objects.create(
        user=user, ai_model=model, model=model.slug, prompt="p", status=GenRequest.Status.RUNNING, **fields
    )


def test_due_operations_nobody_polls_alert_once(committed, make_user, veo, queued):
    user = make_user()
    now = timezone.now()
    running(user, veo, next_poll_at=now - timedelta(minutes=25), started_at=now - timedelta(minutes=30))
    running(user, veo, next_poll_at=now - timedelta(minutes=12), started_at=now - timedelta(minutes=13))
    # no alarm: due a lease (60 s here) after it started, i.e. 11 min ago
    running(user, veo, next_poll_at=None, started_at=now - timedelta(minutes=12))
    lag = alerts.video_queue_lag(stuck_after_seconds=600, now=now)
    assert (lag.stuck, round(lag.oldest_minutes)) == (3, 25)

    assert committed(alerts.check_video_queue, now=now) is True
    assert keys(queued) == ["video_queue_stuck"]
    params = queued[0][2]
    assert (params["count"], params["minutes"], params["threshold"]) == ("3", "25", "10")
    for lang in ("en", "ru"):
        text = alerts.render(key="video_queue_stuck", params=params, lang=lang)
        assert "3" in text and "25" in text and "10" in text and "{" not in text
    assert committed(alerts.check_video_queue, now=now + timedelta(minutes=1)) is False  # the same incident
    assert len(queued) == 1


def test_a_queue_that_moves_does_not_alert(committed, make_user, veo, nano, queued):
    user = make_user()
    now = timezone.now()
    running(user, veo, next_poll_at=now - timedelta(minutes=9), started_at=now - timedelta(minutes=20))  # < 10
    running(user, veo, next_poll_at=now + timedelta(seconds=5), started_at=now - timedelta(hours=1))  # claimed
    running(user, nano, next_poll_at=None, started_at=now - timedelta(minutes=10))  # + the lease: not yet
    GenRequest.objects.create(  # finished long ago: not running
        user=user, ai_model=veo, model=veo.slug, prompt="p", status=GenRequest.Status.SUCCEEDED,
        next_poll_at=now - timedelta(hours=2), price=Decimal(1),
    )  # fmt: skip
    assert alerts.video_queue_lag(stuck_after_seconds=600, now=now).stuck == 0
    assert committed(alerts.check_video_queue, now=now) is False
    assert queued == []


def test_the_beat_runs_the_queue_check_on_the_ticks_queue(settings):
    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "botapp.tasks.check_video_queue")
    assert entry["schedule"] == settings.ALERT_QUEUE_CHECK_SECONDS
    assert settings.CELERY_TASK_ROUTES["botapp.tasks.check_video_queue"] == {"queue": settings.CELERY_TICK_QUEUE}
    from config.celery import app

    assert "botapp.tasks.check_video_queue" in app.tasks


def test_the_new_settings_have_their_defaults():
    from tests.ops.test_settings import load_settings

    loaded = load_settings({"SECRET_KEY": "probe-secret-key-not-public-0123456789-abcdefghijklmnop"})
    assert loaded["ALERT_QUEUE_CHECK_SECONDS"] == "60.0"
    assert loaded["ALERT_QUEUE_STUCK_MINUTES"] == "10.0"
    assert loaded["ALERT_MAX_PER_MINUTE"] == "10"


# --- the storm cap ------------------------------------------------------------------------------------
def incident(n: int) -> dict:
    return {
        "telegram_id": n,
        "amount": 100,
        "currency": "XTR",
        "charge_id": f"charge-{n}",
        "payload": "p",
        "reason": "x",
    }


def burst(count: int, start: int = 0) -> list[bool]:
    return [alerts.alert_operators(key="payment_not_credited", **incident(start + n)) for n in range(count)]


def test_a_storm_sends_the_cap_then_one_summary(queued, clock, caplog):
    caplog.set_level("WARNING", logger="botapp.services.alerts")
    assert sum(burst(50)) == 10
    assert keys(queued) == ["payment_not_credited"] * 10
    assert "charge-49" in caplog.text and "suppressed" in caplog.text  # the suppressed ones are logged

    assert alerts.flush_suppressed() == 0  # the storm's minute is not over
    clock["t"] += 60
    assert alerts.flush_suppressed() == 0  # nor the quiet minute after it
    clock["t"] += 60
    assert alerts.flush_suppressed() == 40
    assert keys(queued) == ["payment_not_credited"] * 10 + ["alerts_suppressed"]
    assert queued[-1][2] == {"count": "40", "limit": "10"}
    text = alerts.render(key="alerts_suppressed", params=queued[-1][2])
    assert "40 more alerts were suppressed" in text and "logs" in text
    assert alerts.flush_suppressed() == 0  # ONE summary
    clock["t"] += 600
    assert alerts.flush_suppressed() == 0
    assert len(queued) == 11


def test_a_long_storm_is_summed_up_once_after_it_ends(db, committed, queued, clock):
    for minute in range(3):  # 30 alerts a minute for three minutes
        clock["t"] = T0 + 60 * minute
        committed(burst, 30, start=100 * minute)
        committed(alerts.flush_suppressed)  # the beat, meanwhile
    assert keys(queued) == ["payment_not_credited"] * 30  # the cap each minute, no summary yet
    clock["t"] = T0 + 60 * 4
    assert committed(tasks.check_video_queue.apply).successful()  # the beat's check sends it
    assert keys(queued)[30:] == ["alerts_suppressed"]
    assert queued[-1][2]["count"] == "60"


def test_the_next_alert_after_a_storm_brings_the_summary(queued, clock):
    burst(15)
    clock["t"] += 120
    assert alerts.alert_operators(key="payment_not_credited", **incident(999))
    assert keys(queued)[10:] == ["alerts_suppressed", "payment_not_credited"]
    assert queued[10][2]["count"] == "5"


def test_a_new_minute_opens_the_cap_again(queued, clock):
    assert sum(burst(12)) == 10
    clock["t"] += 60
    assert sum(burst(12, start=100)) == 10


def test_concurrent_alerts_share_one_cap(queued, clock):
    results: list[bool] = []
    lock = threading.Lock()

    def fire(start: int) -> None:
        sent = burst(10, start=start)
        with lock:
            results.extend(sent)

    threads = [threading.Thread(target=fire, args=(100 * i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 10 and len(queued) == 10
    clock["t"] += 120
    assert alerts.flush_suppressed() == 40


def test_duplicates_do_not_count_against_the_cap(queued, clock):
    for _ in range(30):
        alerts.alert_operators(key="payment_not_credited", **incident(1))
    assert sum(burst(9, start=10)) == 9


def test_no_cap_when_it_is_zero(queued, clock, settings):
    settings.ALERT_MAX_PER_MINUTE = 0
    assert sum(burst(50)) == 50
    clock["t"] += 120
    assert alerts.flush_suppressed() == 0


def test_every_operator_gets_the_summary(queued, clock, settings):
    settings.ADMIN_IDS = [501, 502]
    burst(11)
    clock["t"] += 120
    alerts.flush_suppressed()
    assert [(chat, key) for chat, key, _ in queued[-2:]] == [(501, "alerts_suppressed"), (502, "alerts_suppressed")]
