"""Operator alerts: the failure-rate selector and threshold, deduplication, the text in the admin
language, the payment handler's alert, and an alert reaching the Bot API emulator through Celery."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from unittest import mock

import pytest
from django.core.cache import cache
from django.utils import timezone

from botapp.i18n import t
from botapp.models import GenRequest
from botapp.services import alerts

TOKEN = "7100000002:AAtest-alerts-token"


@pytest.fixture(autouse=True)
def _alert_settings(settings):
    settings.ADMIN_IDS = [501, 502]
    settings.LANGUAGE_CODE = "en"
    settings.ALERT_FAILURE_WINDOW_SECONDS = 900
    settings.ALERT_FAILURE_PERCENT = 30
    settings.ALERT_FAILURE_MIN_REQUESTS = 10
    settings.ALERT_COOLDOWN_SECONDS = 900
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def queued(monkeypatch):
    """The alert tasks queued (chat_id, key, params), instead of a broker."""
    sent: list[tuple[int, str, dict]] = []
    from botapp import tasks

    monkeypatch.setattr(tasks.send_operator_alert, "delay", lambda *args: sent.append(args))
    return sent


def finished_requests(user, model, *, succeeded: int, failed: int, cancelled: int = 0, ago: timedelta | None = None):
    when = timezone.now() - (ago or timedelta(minutes=1))
    statuses = (
        [GenRequest.Status.SUCCEEDED] * succeeded
        + [GenRequest.Status.FAILED] * failed
        + [GenRequest.Status.CANCELLED] * cancelled
    )
    GenRequest.objects.bulk_create(
        GenRequest(
            user=user, ai_model=model, model=model.slug, prompt="p", status=s, price=Decimal(1), finished_at=when
        )
        for s in statuses
    )


# --- the selector ---------------------------------------------------------------------------------------
def test_failure_rate_counts_succeeded_and_failed_within_the_window(make_user, nano):
    user = make_user()
    finished_requests(user, nano, succeeded=6, failed=3, cancelled=4)
    finished_requests(user, nano, succeeded=0, failed=5, ago=timedelta(minutes=30))  # before the window
    GenRequest.objects.create(user=user, ai_model=nano, model=nano.slug, prompt="p", status=GenRequest.Status.RUNNING)
    rate = alerts.failure_rate(window_seconds=900)
    assert (rate.finished, rate.failed) == (9, 3)
    assert rate.percent == pytest.approx(33.33, abs=0.01)


def test_failure_rate_of_nothing_is_zero(db):
    rate = alerts.failure_rate(window_seconds=900)
    assert (rate.finished, rate.failed, rate.percent) == (0, 0, 0.0)


# --- the threshold --------------------------------------------------------------------------------------
def test_a_spike_alerts_every_operator_once_per_window(make_user, nano, queued, django_capture_on_commit_callbacks):
    finished_requests(make_user(), nano, succeeded=6, failed=4)  # 40 % of 10
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.check_failure_rate() is True
    assert [(chat_id, key) for chat_id, key, _ in queued] == [(501, "failure_rate"), (502, "failure_rate")]
    params = queued[0][2]
    assert (params["failed"], params["finished"], params["percent"], params["minutes"]) == ("4", "10", "40", "15")
    for lang in ("ru", "en"):  # the parameters fill the text in both languages
        text = alerts.render(key="failure_rate", params=params, lang=lang)
        assert "4" in text and "10" in text and "40%" in text and "{" not in text
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.check_failure_rate() is False  # the same window: not again
    assert len(queued) == 2


def test_below_the_threshold_no_alert(make_user, nano, queued, django_capture_on_commit_callbacks):
    finished_requests(make_user(), nano, succeeded=8, failed=2)  # 20 %
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.check_failure_rate() is False
    assert queued == []


def test_too_few_requests_no_alert(make_user, nano, queued, django_capture_on_commit_callbacks):
    finished_requests(make_user(), nano, succeeded=0, failed=9)  # 100 % but 9 < 10
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.check_failure_rate() is False
    assert queued == []


def test_the_beat_schedule_runs_the_check_on_the_ticks_queue(settings):
    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "botapp.tasks.check_failure_rate")
    assert entry["schedule"] == settings.ALERT_FAILURE_CHECK_SECONDS
    assert settings.CELERY_TASK_ROUTES["botapp.tasks.check_failure_rate"] == {"queue": settings.CELERY_TICK_QUEUE}
    assert settings.CELERY_TASK_ROUTES["botapp.tasks.send_operator_alert"] == {"queue": settings.CELERY_SEND_QUEUE}
    from config.celery import app

    assert "botapp.tasks.check_failure_rate" in app.tasks


# --- alert_operators ------------------------------------------------------------------------------------
def test_same_alert_is_deduplicated_a_different_one_is_not(queued, django_capture_on_commit_callbacks, caplog):
    caplog.set_level(logging.WARNING, logger="botapp.services.alerts")
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.alert_operators(key="payment_not_credited", **payment_params("charge-1"))
        assert not alerts.alert_operators(key="payment_not_credited", **payment_params("charge-1"))
        assert alerts.alert_operators(key="payment_not_credited", **payment_params("charge-2"))
    assert [params["charge_id"] for _, _, params in queued] == ["charge-1", "charge-1", "charge-2", "charge-2"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "payment_not_credited" in r.message]
    assert len(warnings) == 3 and "charge-1" in warnings[0].message


def test_no_operators_only_logs(settings, queued, caplog, django_capture_on_commit_callbacks):
    settings.ADMIN_IDS = []
    with (
        caplog.at_level(logging.WARNING, logger="botapp.services.alerts"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert alerts.alert_operators(key="payment_not_credited", **payment_params("charge-3")) is False
    assert queued == []
    assert "charge-3" in caplog.text


def test_a_broken_queue_never_breaks_the_caller(monkeypatch, django_capture_on_commit_callbacks):
    from botapp import tasks

    monkeypatch.setattr(tasks.send_operator_alert, "delay", mock.Mock(side_effect=ConnectionError("broker down")))
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.alert_operators(key="payment_not_credited", **payment_params("charge-4")) is True


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_text_in_the_admin_language_with_escaped_parameters(settings, lang):
    settings.LANGUAGE_CODE = lang
    text = alerts.render(key="payment_not_credited", params=payment_params("<b>x</b>"))
    assert text.startswith(t("ops.payment_not_credited", lang).split("\n")[0])
    assert "&lt;b&gt;x&lt;/b&gt;" in text and "<b>x</b>" not in text


def payment_params(charge_id: str) -> dict:
    return {
        "telegram_id": 42,
        "amount": 100,
        "currency": "XTR",
        "charge_id": charge_id,
        "payload": "pay:1",
        "reason": "amount mismatch",
    }


# --- the payment handler ----------------------------------------------------------------------------------
async def test_a_payment_that_cannot_be_credited_alerts_the_operators(monkeypatch):
    from botapp import bridge
    from botapp.handlers import payment
    from botapp.services.exceptions import DomainError

    async def refuse(**_kwargs):
        raise DomainError("the invoice does not match")

    alerted = mock.AsyncMock(return_value=True)
    monkeypatch.setattr(bridge, "complete_payment", refuse)
    monkeypatch.setattr(bridge, "alert_operators", alerted)
    paid = SimpleNamespace(
        invoice_payload="pay:77",
        telegram_payment_charge_id="stxCHARGE77",
        total_amount=250,
        currency="XTR",
        model_dump=lambda **_: {},
    )
    message = SimpleNamespace(
        successful_payment=paid,
        from_user=SimpleNamespace(id=4242),
        chat=SimpleNamespace(id=4242),
        answer=mock.AsyncMock(),
    )
    await payment.on_successful_payment(message, state=mock.AsyncMock(), lang="en")
    alerted.assert_awaited_once()
    kwargs = alerted.await_args.kwargs
    assert kwargs["key"] == "payment_not_credited"
    assert (kwargs["charge_id"], kwargs["telegram_id"], kwargs["amount"]) == ("stxCHARGE77", 4242, 250)
    message.answer.assert_awaited_once()  # the user is still told


# --- through Celery and the sender to the Bot API emulator ----------------------------------------------
@pytest.fixture
def emulator():
    from sandbox.telegram import BotAPIEmulator

    emu = BotAPIEmulator(TOKEN).start_in_thread()
    try:
        yield emu
    finally:
        emu.stop_in_thread()


def test_an_alert_reaches_the_operators_in_telegram(settings, emulator, django_capture_on_commit_callbacks):
    from botapp.telegram.sender import close_sender
    from config.celery import app

    operators = [emulator.user(first_name="Op", language_code="ru"), emulator.user(first_name="Op2")]
    settings.ADMIN_IDS = [op.id for op in operators]
    settings.BOT_TOKEN = emulator.token
    settings.TELEGRAM_API_URL = emulator.base_url
    settings.LANGUAGE_CODE = "ru"
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True  # the task runs here, through the real sender
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert alerts.alert_operators(key="payment_not_credited", **payment_params("stxREAL1"))
        for op in operators:
            message = emulator.wait_for_message(op.id, lambda m: "stxREAL1" in str(m.get("text")), 10)
            assert message["text"].startswith("🚨 Платёж не зачислен")
            assert any(e["type"] == "bold" for e in message.get("entities", []))  # sent as HTML
    finally:
        app.conf.task_always_eager = eager
        close_sender()
