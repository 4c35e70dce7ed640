"""Operator alerts: short messages in Telegram to every operator in ADMIN_IDS, in the admin language.

    alert_operators(key="payment_not_credited", charge_id=..., ...)
        -> logged at WARNING (always, also without ADMIN_IDS or a bot token)
        -> deduplicated: the same alert (key + parameters, or `dedupe`) at most once per cool-down,
           through Django's cache (`cache.add`; shared by all processes with Redis)
        -> on commit: one `send_operator_alert` Celery task per operator (the send queue), so a
           handler never waits for Telegram; the task sends through the one rate-limited sender.

The text is `ops.<key>` from botapp/locales (ops.toml); parameters are HTML-escaped.

Alerts so far: a successful payment that could not be credited (the payment handler) and a
generation failure rate over the threshold (`check_failure_rate`, a beat task every
ALERT_FAILURE_CHECK_SECONDS).
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from botapp.i18n import t
from botapp.models import GenRequest

log = logging.getLogger(__name__)

CACHE_PREFIX = "ops-alert"


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
    (ALERT_COOLDOWN_SECONDS by default).
    """
    try:
        log.warning("operator alert %s: %s", key, render(key=key, params=params, lang="en"))
        admin_ids = [int(chat_id) for chat_id in settings.ADMIN_IDS]
        if not admin_ids:
            return False
        ttl = settings.ALERT_COOLDOWN_SECONDS if cooldown is None else cooldown
        if not cache.add(_dedupe_key(key, params, dedupe), 1, timeout=max(1, int(ttl))):
            log.info("operator alert %s: already sent within the cool-down", key)
            return False
        payload = {name: str(value) for name, value in params.items()}

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
        return True
    except Exception:
        log.exception("operator alert %s could not be queued", key)
        return False


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
