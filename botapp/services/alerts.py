"""Operator alerts: short messages in Telegram to every operator in ADMIN_IDS, in the admin language.

    alert_operators(key="payment_not_credited", charge_id=..., ...)
        -> logged at WARNING (always, also without ADMIN_IDS or a bot token)
        -> deduplicated: the same alert (key + parameters, or `dedupe`) at most once per cool-down,
           through Django's cache (`cache.add`; shared by all processes with Redis)
        -> on commit: one `send_operator_alert` Celery task per operator (the send queue), so a
           handler never waits for Telegram; the task sends through the one rate-limited sender.

The text is `ops.<key>` from botapp/locales (ops.toml); parameters are HTML-escaped.

A storm of *different* alerts (say 500 payments failing to credit) is capped: at most
ALERT_MAX_PER_MINUTE alerts a minute are sent, counted across all keys and processes (an atomic
counter per minute in the cache). Alerts over the cap are logged (the WARNING above) but not sent;
once the storm is over (a whole minute without a suppressed alert) ONE summary "N more alerts were
suppressed, see the logs" is sent, by the next alert or by the beat check (`flush_suppressed`).

Alerts so far: a successful payment that could not be credited (the payment handler), a generation
failure rate over the threshold (`check_failure_rate`, a beat task every ALERT_FAILURE_CHECK_SECONDS),
a model whose id Google does not know any more (`model_not_found`, from the worker, which paused it), running
generations the poller left overdue (`check_video_queue`, a beat task every ALERT_QUEUE_CHECK_SECONDS)
and the end of a broadcast (botapp/services/broadcasts.py). A model's lifecycle (botapp/services/lifecycle.py):
a model switched to its successor (`model_switched`, one per switch), a switch refused and the model paused
(`model_switch_refused`), a shutdown 14 and 3 days ahead (`model_shutdown_soon`) and an active model past its
shutdown date without a successor (`model_past_shutdown`, daily).
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Min, Q
from django.utils import timezone

from botapp.i18n import t
from botapp.models import GenRequest

log = logging.getLogger(__name__)

CACHE_PREFIX = "ops-alert"
# The storm cap (ALERT_MAX_PER_MINUTE): sent alerts per minute, and the alerts suppressed since the
# last summary (with the minute of the last one), shared by all processes through the cache.
MINUTE_KEY = f"{CACHE_PREFIX}:minute"
SUPPRESSED_KEY = f"{CACHE_PREFIX}:suppressed"
SUPPRESSED_MINUTE_KEY = f"{CACHE_PREFIX}:suppressed-minute"
SUMMARY_LOCK_KEY = f"{CACHE_PREFIX}:summary-lock"
SUPPRESSED_TTL = 7 * 24 * 3600
# A retired model fails every request until an operator switches its id: remind at most this often.
MODEL_ALERT_MIN_COOLDOWN_SECONDS = 6 * 3600

_clock = time.time  # the storm cap's clock (tests move it)


def admin_language() -> str:
    """The operators' language: the admin's (ADMIN_LANGUAGE, i.e. settings.LANGUAGE_CODE)."""
    return str(settings.LANGUAGE_CODE or "en").split("-")[0]


def render(*, key: str, params: dict[str, object], lang: str | None = None) -> str:
    """The alert's text in `lang` (default: the admin language), parameters HTML-escaped."""
    safe = {name: html.escape(str(value), quote=False) for name, value in params.items()}
    return t(f"ops.{key}", lang or admin_language(), **safe)


def _dedupe_key(key: str, params: dict[str, object], dedupe: str | None) -> str:
    identity = dedupe if dedupe is not None else json.dumps(params, sort_keys=True, default=str)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    return f"{CACHE_PREFIX}:{key}:{digest}"


def alert_operators(*, key: str, dedupe: str | None = None, cooldown: float | None = None, **params: object) -> bool:
    """Alert every operator (ADMIN_IDS) with the text `ops.<key>`; True when the alert was queued.

    Never raises (alerts are sent from error paths): a failure to queue is logged. The same alert
    (by `dedupe`, or by key and parameters) is sent at most once per `cooldown` seconds
    (ALERT_COOLDOWN_SECONDS by default). Over ALERT_MAX_PER_MINUTE alerts a minute (all keys) an alert
    is only logged and counted for the summary (`flush_suppressed`); its cool-down still holds.
    """
    try:
        log.warning("operator alert %s: %s", key, render(key=key, params=params, lang="en"))
        admin_ids = _admin_ids()
        if not admin_ids:
            return False
        ttl = settings.ALERT_COOLDOWN_SECONDS if cooldown is None else cooldown
        if not cache.add(_dedupe_key(key, params, dedupe), 1, timeout=max(1, int(ttl))):
            log.info("operator alert %s: already sent within the cool-down", key)
            return False
        now = _clock()
        flush_suppressed(now=now)  # the summary of a storm that is over goes first
        if _over_the_cap(now):
            _suppress(key, now)
            return False
        _enqueue(key, {name: str(value) for name, value in params.items()}, admin_ids)
        return True
    except Exception:
        log.exception("operator alert %s could not be queued", key)
        return False


def _admin_ids() -> list[int]:
    return [int(chat_id) for chat_id in settings.ADMIN_IDS]


def _enqueue(key: str, payload: dict[str, str], admin_ids: list[int]) -> None:
    """One `send_operator_alert` task per operator, on commit (the caller's transaction)."""

    def enqueue() -> None:
        from botapp.tasks import send_operator_alert

        for chat_id in admin_ids:
            try:
                send_operator_alert.delay(chat_id, key, payload)
            except Exception:
                log.exception("operator alert %s: could not queue the message to %s", key, chat_id)

    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(enqueue)
    else:  # as on_commit would, without opening a database connection for nothing (the bot's threads)
        enqueue()


# --- the storm cap -----------------------------------------------------------------------------------
def _minute(now: float) -> int:
    return int(now // 60)


def _count(key: str, timeout: int) -> int:
    """An atomic counter in the cache (Redis: INCR, shared by all processes); returns the new value."""
    cache.add(key, 0, timeout=timeout)
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=timeout)
        return 1


def _over_the_cap(now: float) -> bool:
    """Count this alert in its minute; True when the minute already had ALERT_MAX_PER_MINUTE (0: no cap)."""
    cap = int(settings.ALERT_MAX_PER_MINUTE)
    if cap <= 0:
        return False
    return _count(f"{MINUTE_KEY}:{_minute(now)}", timeout=120) > cap


def _suppress(key: str, now: float) -> None:
    suppressed = _count(SUPPRESSED_KEY, timeout=SUPPRESSED_TTL)
    cache.set(SUPPRESSED_MINUTE_KEY, _minute(now), timeout=SUPPRESSED_TTL)
    log.warning(
        "operator alert %s suppressed: more than ALERT_MAX_PER_MINUTE=%s alerts this minute (%d suppressed "
        "since the last summary)",
        key,
        settings.ALERT_MAX_PER_MINUTE,
        suppressed,
    )


def flush_suppressed(*, now: float | None = None) -> int:
    """Once a storm is over (no alert suppressed in this minute or the one before), send ONE summary
    of the alerts it suppressed. Returns how many it summarised (0: nothing to send, or not yet).

    Called by every alert and by the beat check (`botapp.tasks.check_video_queue`); a lock in the
    cache and an atomic decrement make concurrent callers send it once and lose no count.
    """
    try:
        now = _clock() if now is None else now
        if not cache.get(SUPPRESSED_KEY):
            return 0
        last = cache.get(SUPPRESSED_MINUTE_KEY)
        if last is not None and int(last) >= _minute(now) - 1:
            return 0  # the storm may still be going on
        if not cache.add(SUMMARY_LOCK_KEY, 1, timeout=60):
            return 0
        try:
            count = int(cache.get(SUPPRESSED_KEY) or 0)
            if count <= 0:
                return 0
            cache.decr(SUPPRESSED_KEY, count)  # alerts suppressed meanwhile stay counted
            params = {"count": count, "limit": settings.ALERT_MAX_PER_MINUTE}
            log.warning(
                "operator alert alerts_suppressed: %s", render(key="alerts_suppressed", params=params, lang="en")
            )
            admin_ids = _admin_ids()
            if admin_ids:
                _enqueue("alerts_suppressed", {name: str(value) for name, value in params.items()}, admin_ids)
            return count
        finally:
            cache.delete(SUMMARY_LOCK_KEY)
    except Exception:
        log.exception("the summary of suppressed operator alerts could not be queued")
        return 0


def send_alert(*, chat_id: int, key: str, params: dict[str, object]) -> float | None:
    """Send one operator their alert (the task's body). Returns seconds to retry after, or None when
    done (sent, or given up for good: no bot token, the operator blocked the bot, Telegram refused)."""
    from botapp.telegram.sender import BotBlocked, RetryLater, SendRejected, get_sender

    sender = get_sender()
    if sender is None:
        log.warning("operator alert %s not sent to %s: BOT_TOKEN is not set", key, chat_id)
        return None
    try:
        sender.send_message(chat_id, render(key=key, params=params))
    except RetryLater as exc:
        return exc.retry_in
    except (BotBlocked, SendRejected) as exc:
        log.warning("operator alert %s not delivered to %s: %s", key, chat_id, exc)
    return None


# --- the generation failure rate -----------------------------------------------------------------------
@dataclass(frozen=True)
class FailureRate:
    finished: int  # succeeded + failed (a cancellation is the user's choice, not a failure)
    failed: int
    window_seconds: float

    @property
    def percent(self) -> float:
        return 100.0 * self.failed / self.finished if self.finished else 0.0


def failure_rate(*, window_seconds: float, now: datetime | None = None) -> FailureRate:
    """Generations that finished within the last `window_seconds`: how many, and how many failed.

    One aggregate query; the lower bound on `created_at` (indexed) keeps it off a full table scan: a
    request finishes at the latest its timeout (plus the sweep's slack) after it was created.
    """
    now = now or timezone.now()
    since = now - timedelta(seconds=window_seconds)
    oldest = since - timedelta(seconds=max(settings.IMAGE_TIMEOUT_SECONDS, settings.VIDEO_TIMEOUT_SECONDS) + 3600)
    failed = GenRequest.Status.FAILED
    counts = GenRequest.objects.filter(
        created_at__gte=oldest,
        finished_at__gte=since,
        finished_at__lte=now,
        status__in=(GenRequest.Status.SUCCEEDED, failed),
    ).aggregate(finished=Count("id"), failed=Count("id", filter=Q(status=failed)))
    return FailureRate(finished=counts["finished"], failed=counts["failed"], window_seconds=window_seconds)


def check_failure_rate(*, now: datetime | None = None) -> bool:
    """Alert the operators when the failure rate of the last window reaches the threshold (with
    enough requests to mean something); at most once per window. True when an alert was queued."""
    window = float(settings.ALERT_FAILURE_WINDOW_SECONDS)
    rate = failure_rate(window_seconds=window, now=now)
    if rate.finished < settings.ALERT_FAILURE_MIN_REQUESTS or rate.percent < settings.ALERT_FAILURE_PERCENT:
        return False
    return alert_operators(
        key="failure_rate",
        dedupe="window",
        cooldown=window,
        failed=rate.failed,
        finished=rate.finished,
        minutes=f"{window / 60:g}",
        percent=f"{rate.percent:.0f}",
        threshold=f"{settings.ALERT_FAILURE_PERCENT:g}",
    )


# --- a model Google does not know (any more) -------------------------------------------------------------
def model_not_found(*, request: GenRequest, message: str = "", paused_at: datetime | None = None) -> bool:
    """Google answered "not found" for the model of `request`: it probably retired or renamed the id.

    The worker has paused the model (`botapp.services.control.pause_model`: inactive, refunded, its
    waiting requests failed) and calls this once per pause (`paused_at`): the operators are told to
    fix the id in the admin (Catalogue -> AI models) and resume the model. The alert is deduplicated
    per model, provider id and pause (reminded at most every MODEL_ALERT_MIN_COOLDOWN_SECONDS, or
    ALERT_COOLDOWN_SECONDS if longer): a model resumed with the same id and paused again is a new
    incident. True when the alert was queued.
    """
    ai_model = request.ai_model
    model_id = ai_model.provider_model_id if ai_model else request.model
    name = ai_model.name if ai_model else request.model
    incident = f"{request.ai_model_id}:{model_id}"
    if paused_at is not None:
        incident += f":{paused_at.isoformat()}"
    return alert_operators(
        key="model_not_found",
        dedupe=incident,
        cooldown=max(float(settings.ALERT_COOLDOWN_SECONDS), MODEL_ALERT_MIN_COOLDOWN_SECONDS),
        name=name,
        model_id=model_id,
        error=message[:300],
    )


# --- the video queue: due operations nobody polls --------------------------------------------------------
@dataclass(frozen=True)
class QueueLag:
    stuck: int  # running requests due for longer than the threshold
    oldest_minutes: float  # how long the most overdue of them has been due


def video_queue_lag(*, stuck_after_seconds: float, now: datetime | None = None) -> QueueLag:
    """Running requests that have been due for more than `stuck_after_seconds` and are still not taken.

    A running request is due (botapp.engine.lease.due_filter) at `next_poll_at` (its next poll, a retry,
    or the end of a worker's claim) or, without one, a work lease after `started_at` (a worker that died
    on its first step). The poller (poll_generations) takes due requests every tick, so one due for minutes
    means the poller or the workers are not running. One aggregate query.
    """
    from botapp.engine.lease import work_lease

    now = now or timezone.now()
    lease = work_lease()
    limit = now - timedelta(seconds=stuck_after_seconds)
    without_alarm = Q(next_poll_at__isnull=True)
    counts = GenRequest.objects.filter(
        Q(next_poll_at__lte=limit) | Q(without_alarm, started_at__lte=limit - lease),
        status=GenRequest.Status.RUNNING,
    ).aggregate(
        stuck=Count("id"),
        oldest_alarm=Min("next_poll_at"),
        oldest_start=Min("started_at", filter=without_alarm),
    )
    due_since = [at for at in (counts["oldest_alarm"], counts["oldest_start"] and counts["oldest_start"] + lease) if at]
    oldest = (now - min(due_since)).total_seconds() / 60 if due_since else 0.0
    return QueueLag(stuck=counts["stuck"], oldest_minutes=oldest)


def check_video_queue(*, now: datetime | None = None) -> bool:
    """Alert the operators when running generations have been due for more than
    ALERT_QUEUE_STUCK_MINUTES without being polled; once per incident (per cool-down). True when an
    alert was queued."""
    threshold = float(settings.ALERT_QUEUE_STUCK_MINUTES)
    lag = video_queue_lag(stuck_after_seconds=threshold * 60, now=now)
    if not lag.stuck:
        return False
    return alert_operators(
        key="video_queue_stuck",
        dedupe="video_queue",
        count=lag.stuck,
        minutes=f"{lag.oldest_minutes:.0f}",
        threshold=f"{threshold:g}",
    )


# --- the lifecycle of a model (botapp/services/lifecycle.py) ---------------------------------------------
# A lifecycle alert is decided once by its caller (a conditional UPDATE, a marker): the dedupe here only
# keeps a replay quiet, so its cool-down is long.
LIFECYCLE_ALERT_COOLDOWN_SECONDS = 7 * 24 * 3600


def model_switched(*, ai_model, successor, switched_at: datetime, reason: str, moved: int, refunded: int) -> bool:
    """The model was retired in favour of its successor (one alert per switch: model id + switch time)."""
    return alert_operators(
        key="lifecycle_switched",
        dedupe=f"{ai_model.pk}:{switched_at.isoformat()}",
        cooldown=LIFECYCLE_ALERT_COOLDOWN_SECONDS,
        name=str(ai_model),
        model_id=ai_model.provider_model_id,
        successor=str(successor),
        successor_id=successor.provider_model_id,
        reason=reason[:300],
        moved=moved,
        refunded=refunded,
    )


def model_switch_refused(*, ai_model, problem: str, paused_at: datetime) -> bool:
    """The model had to switch but its successor cannot take over (retired, paused, invalid): paused."""
    from botapp.services.lifecycle import problem_text

    successor = ai_model.successor
    return alert_operators(
        key="lifecycle_switch_refused",
        dedupe=f"{ai_model.pk}:{paused_at.isoformat()}",
        cooldown=LIFECYCLE_ALERT_COOLDOWN_SECONDS,
        name=str(ai_model),
        model_id=ai_model.provider_model_id,
        successor=str(successor) if successor is not None else "—",
        problem=problem_text(problem, admin_language()),
    )


def model_shutdown_soon(*, ai_model, days: int, threshold: int) -> bool:
    """A warning `threshold` days (or fewer) before the model's shutdown date (its caller sends it once)."""
    successor = ai_model.successor
    key = "lifecycle_shutdown_soon" if successor is not None else "lifecycle_shutdown_soon_alone"
    return alert_operators(
        key=key,
        dedupe=f"{ai_model.pk}:{ai_model.shutdown_date.isoformat()}:{threshold}",
        cooldown=LIFECYCLE_ALERT_COOLDOWN_SECONDS,
        name=str(ai_model),
        model_id=ai_model.provider_model_id,
        date=ai_model.shutdown_date.isoformat(),
        days=days,
        successor=str(successor) if successor is not None else "",
    )


def model_past_shutdown(*, ai_model, today) -> bool:
    """An active model past its shutdown date without a successor: not paused (Google may still serve it),
    reminded once a day."""
    return alert_operators(
        key="lifecycle_past_shutdown",
        dedupe=f"{ai_model.pk}:{ai_model.shutdown_date.isoformat()}:{today.isoformat()}",
        cooldown=20 * 3600,
        name=str(ai_model),
        model_id=ai_model.provider_model_id,
        date=ai_model.shutdown_date.isoformat(),
    )
