"""Failures: a request that cannot succeed is failed and refunded exactly once, and the user is told
why in their language; what may succeed later is retried with backoff, until its deadline.

- `handle_error`: a ProviderError from a submit or a poll -> fail (permanent: safety, invalid input,
  auth, a retired model) or retry (rate limits, 5xx, network, a transient failure of the operation
  itself: a new operation).
- `retired_model`: Google does not know the model id (404 on submit). A model with a successor that
  can take over switches to it by itself (botapp.services.lifecycle.switch_to_successor: once, one
  alert), and this request is treated like the model's waiting ones: moved to the successor and queued
  again when it costs the same or less there, else failed and refunded once with its own message
  (`model_switched`, `model_switched_options`). Without one, the model is paused in the catalogue
  (once), this request and the model's others that have not reached Google are failed and refunded
  with "the model is unavailable", and the operators are alerted (once per pause).
- `retry`: the request is next due after a backoff (exponential, or Google's retry delay); past its
  deadline it fails with the last error instead.
- `fail`: GenerationService.fail (a conditional UPDATE: refunds once), then notify_failure.
- `notify_failure` (the task's body): the error code -> the user's message (generation.errors.<key>,
  ERROR_TEXT_KEYS), the safety reason, the refund.
"""

from __future__ import annotations

import html
import logging
import random
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import F, Q

from botapp.engine import common, dispatch
from botapp.engine.common import Status, language_of, load, model_label
from botapp.engine.lease import next_poll_delay, set_alarm
from botapp.i18n import fmt_tokens, t
from botapp.models import GenRequest
from botapp.providers import ProviderError, RateLimited, SafetyBlocked
from botapp.redaction import redact
from botapp.services import alerts, control, lifecycle
from botapp.services.generation import NOT_SENT, GenerationService
from botapp.telegram.sender import BotBlocked, OutcomeUnknown, RetryLater, SendRejected, get_sender

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# Error codes (GenRequest.error_code) -> the text the user gets (generation.errors.<key>)
# --------------------------------------------------------------------------------------------------
ERROR_TEXT_KEYS = {
    "safety_blocked": "safety",
    "invalid_input": "invalid_input",
    "unsupported_aspect_ratio": "invalid_input",
    "wrong_kind": "invalid_input",
    "input_not_supported": "invalid_input",
    "bad_image": "bad_image",
    "input_image_invalid": "bad_image",
    "input_image_too_large": "image_too_large",
    "input_image_unavailable": "image_unavailable",
    "input_video_unavailable": "video_unavailable",
    "interaction_not_found": "edit_gone",  # Omni: the clip's interaction expired or was deleted at Google
    "edit_source_unavailable": "edit_gone",
    "input_video_invalid": "video_unavailable",
    "input_video_too_large": "video_unavailable",
    "too_many_images": "invalid_input",
    "rate_limited": "busy",
    "provider_busy": "busy",
    "transient": "busy",
    "timeout": "busy",
    "network": "busy",
    "operation_failed_transient": "busy",
    "operation_timeout": "timeout",
    "deadline": "timeout",
    "download_failed": "download_failed",
    "no_image": "no_result",
    "empty_result": "no_result",
    "operation_failed": "failed",
    "not_configured": "unavailable",
    "auth": "unavailable",
    "backend_unsupported": "unavailable",
    "model_not_found": "model_retired",
    "model_switched": "model_switched",  # botapp/locales/*/lifecycle.toml
    "model_switched_options": "model_switched_options",
    "operation_not_found": "failed",
    "failed_precondition": "unavailable",
    "unknown_provider": "unavailable",
    "model_missing": "unavailable",
    "telegram_refused": "send_failed",
    "result_too_large": "too_large",
    "delivery_failed": "send_failed",
    "telegram_unavailable": "send_failed",
}
SAFETY_REASON_KEYS = {
    "IMAGE_SAFETY": "output",
    "IMAGE_PROHIBITED_CONTENT": "prohibited",
    "PROHIBITED_CONTENT": "prohibited",
    "SAFETY": "prompt",
    "BLOCKLIST": "prompt",
    "RECITATION": "recitation",
    "IMAGE_RECITATION": "recitation",
    "IMAGE_OTHER": "other",
    "SPII": "personal",
    "RAI_PROMPT_BLOCKED": "prompt",
    "RAI_FILTERED": "output",
    "RAI_MEDIA_FILTERED": "output",
    "RAI_OPERATION_BLOCKED": "prompt",
    "OTHER": "other",
}


# --------------------------------------------------------------------------------------------------
# Failing and retrying
# --------------------------------------------------------------------------------------------------
def backoff(attempt: int, retry_after: float | None = None) -> float:
    base = settings.GENERATION_RETRY_BASE_SECONDS
    delay = min(settings.GENERATION_RETRY_MAX_SECONDS, base * (2 ** max(0, attempt - 1)))
    delay *= random.uniform(0.8, 1.2)
    if retry_after:
        delay = max(delay, float(retry_after))
    return delay


def handle_error(request: GenRequest, token: datetime | None, exc: ProviderError, *, submit: bool) -> str:
    log.warning("generation #%s: %s %r", request.pk, "submit" if submit else "poll", exc)
    if not exc.retryable:
        if exc.code == "model_not_found":
            if submit:
                return retired_model(request, exc, token)
            # On a poll a 404 is the operation's (expired, unknown), not the model's.
            return fail(request, "operation_not_found", exc.message)
        reason = exc.reason if isinstance(exc, SafetyBlocked) else None
        return fail(request, exc.code, exc.message, reason=reason)
    retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
    if not submit and "operation_error" in exc.details:
        # The operation itself ended with a transient error (Google's INTERNAL, UNAVAILABLE, quota):
        # polling it again gives the same answer, so start a new one (within attempts and deadline).
        if request.attempts >= settings.GENERATION_MAX_ATTEMPTS:
            return fail(request, exc.code, f"{exc.message} (after {request.attempts} attempts)")
        delay = backoff(request.attempts, retry_after)
        return retry(request, token, exc.code, exc.message, delay, submit=True, new_operation=True)
    if submit:
        if request.attempts >= settings.GENERATION_MAX_ATTEMPTS:
            return fail(request, exc.code, f"{exc.message} (after {request.attempts} attempts)")
        delay = backoff(request.attempts, retry_after)
    else:
        delay = max(float(retry_after or 0), next_poll_delay(request, common.now()))
    return retry(request, token, exc.code, exc.message, delay, submit=submit)


def retry(
    request: GenRequest,
    token: datetime | None,
    code: str,
    message: str,
    delay: float,
    *,
    submit: bool,
    new_operation: bool = False,
) -> str:
    at = common.now() + common.seconds(delay)
    if request.deadline_at and at >= request.deadline_at:
        return fail(request, code, f"{message} (the deadline passed while retrying)")
    changes: dict[str, Any] = {"error_code": code[:64], "error_message": redact(message)[:2000]}
    if submit:
        changes["attempts"] = F("attempts") + 1
    if new_operation:
        changes["provider_operation_id"] = ""
    set_alarm(request.pk, token, at, **changes)
    log.info("generation #%s: %s, retrying in %.1fs", request.pk, code, delay)
    return "retry"


def fail(
    request: GenRequest, code: str, message: str = "", *, reason: str | None = None, only_if: Q | None = None
) -> str:
    """Fail and refund (exactly once: GenerationService.fail is a conditional UPDATE), then tell the user."""
    code = code or "failed"
    moved = GenerationService.fail(
        request_id=request.pk, error_code=code, error_message=redact(message), only_if=only_if
    )
    if not moved:
        return "not-failed"
    log.info("generation #%s failed: %s %s", request.pk, code, message[:300])
    if request.chat_id:
        dispatch.notify_failure(request.pk, reason)
    return "failed"


# --------------------------------------------------------------------------------------------------
# A retired model
# --------------------------------------------------------------------------------------------------
# NOT_SENT (botapp.services.generation): waiting in the queue, or claimed by a worker that has not called
# Google (its `mark_submitted` then finds the request failed and stops).
RETIRED_BATCH = 1000  # the model's other requests failed at once; the sweep takes the rest


def retired_model(request: GenRequest, exc: ProviderError, token: datetime | None = None) -> str:
    """Google answered "not found" for the model. With a successor that can take over: switch to it
    (once; the model's waiting requests move or are refunded there) and move or refund this request
    (held by this worker: `token`). Otherwise: pause it (once), fail + refund this request and the
    model's others not sent yet (the same message), alert the operators once per pause."""
    ai_model = request.ai_model
    if ai_model is not None and ai_model.successor_id is not None and lifecycle.successor_problem(ai_model) is None:
        reason = redact(f"Google answered not found for {ai_model.provider_model_id}: {exc.message}")
        lifecycle.switch_to_successor(
            ai_model_id=ai_model.pk, reason=reason, provider_model_id=ai_model.provider_model_id
        )
        outcome = lifecycle.take_over(request, token, exc.message)  # None: not switched (its id changed)
        if outcome is not None:
            return outcome
    paused_at = None
    if ai_model is not None:
        reason = redact(f"Google answered not found for {ai_model.provider_model_id}: {exc.message}")
        paused_at = control.pause_model(
            ai_model_id=ai_model.pk, provider_model_id=ai_model.provider_model_id, reason=reason
        )
    outcome = fail(request, exc.code, exc.message)
    if ai_model is None or paused_at is not None:
        alerts.model_not_found(request=request, message=exc.message, paused_at=paused_at)
    if paused_at is not None:
        fail_not_sent(ai_model.pk, exc.message)
    return outcome


def fail_not_sent(ai_model_id: int, message: str = "", *, limit: int = RETIRED_BATCH) -> int:
    """Fail and refund the requests of a paused model that have not reached Google (each told why)."""
    failed = 0
    pending = GenRequest.objects.filter(NOT_SENT, status__in=GenRequest.IN_FLIGHT, ai_model_id=ai_model_id)
    for request in pending.select_related("ai_model")[:limit]:
        note = f"the model was paused: Google does not know its id ({message})" if message else "the model is paused"
        if fail(request, "model_not_found", note[:2000], only_if=NOT_SENT) == "failed":
            failed += 1
    if failed:
        log.info("AI model #%s paused: %d waiting request(s) failed and refunded", ai_model_id, failed)
    return failed


# --------------------------------------------------------------------------------------------------
# Telling the user about a failure
# --------------------------------------------------------------------------------------------------


def failure_text(request: GenRequest, lang: str, reason: str | None = None) -> str:
    key = ERROR_TEXT_KEYS.get(request.error_code, "generic")
    params: dict[str, Any] = {"label": html.escape(model_label(request))}
    if key in ("model_switched", "model_switched_options"):
        switch = lifecycle.notice_params(request)
        if switch is None:  # the successor is gone since: the model's own message
            key = "model_retired"
        else:
            params.update({name: html.escape(value) for name, value in switch.items()})
    text = t(f"generation.errors.{key}", lang, **params)
    if key == "safety":
        reason_key = SAFETY_REASON_KEYS.get((reason or "").upper(), "generic")
        text += "\n" + t(f"generation.safety_reasons.{reason_key}", lang)
    if request.error_code == "rate_limited" or key == "busy":
        text += "\n" + t("generation.hints.busy", lang)
    if request.refunded_at and request.price:
        text += "\n\n" + t("generation.refunded", lang, amount=fmt_tokens(request.price))
    return text


def notify_failure(request_id: int, reason: str | None = None) -> float | None:
    """notify_failure: send the failure explanation (and the refund notice). Returns a retry delay."""
    request = load(request_id)
    if request is None or request.status != Status.FAILED or not request.chat_id:
        return None
    if request.error_code == "bot_blocked" or request.user.bot_blocked:
        return None
    sender = get_sender()
    if sender is None:
        return None
    # A redelivered task does not tell the user twice (the creation time makes the key unique even
    # if the database is recreated while the cache lives on).
    marker = f"gen:{request_id}:{request.created_at.timestamp():.6f}:failure-notified"
    if not cache.add(marker, 1, 24 * 3600):
        return None
    lang = language_of(request)
    text = "⚠️ " + failure_text(request, lang, reason)
    markup = None
    try:
        from botapp.keyboards import menu_only

        markup = menu_only(lang)
    except Exception:  # pragma: no cover
        log.debug("no menu keyboard", exc_info=True)
    try:
        sender.send_message(request.chat_id, text, reply_markup=markup)
    except RetryLater as exc:
        cache.delete(marker)
        return exc.retry_in
    except (BotBlocked, SendRejected) as exc:
        log.info("generation #%s: could not tell the user about the failure: %s", request_id, exc)
        return None
    except OutcomeUnknown as exc:  # it may have arrived: not repeated (the refund is in /balance anyway)
        log.info("generation #%s: the failure notice may not have arrived: %s", request_id, exc)
        return None
    if request.status_message_id:
        sender.delete_message(request.chat_id, request.status_message_id)
    return None
