"""A running request's steps: what run_generation and advance_generation do.

    start()   (run_generation): claim a queued request (mark_running), show "generating", advance
    resume()  (advance_generation): take over a due running request (its lease, see botapp.engine.lease)
    advance() submit the request (image: the result at once; video: an operation id and an alarm),
              or poll its operation; several variants: a round of calls (botapp/engine/variants.py)
    handle_poll() a poll's outcome: done -> finish; pending -> the next alarm; an error -> failures
    finish()  store the result, mark_succeeded (XP), hand over to delivery (inline for an image)

Every step runs under the request's lease and ends by moving it (a conditional UPDATE), so a
duplicate task, the poller and the sweep never act twice.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings

from botapp.engine import common, dispatch, timing, variants
from botapp.engine.backends import provider_for
from botapp.engine.common import chat_action, language_of, load, show_status
from botapp.engine.delivery import deliver
from botapp.engine.failures import backoff, fail, handle_error, retry
from botapp.engine.inputs import InputImageError, build_provider_request
from botapp.engine.lease import claim, next_poll_delay, set_alarm
from botapp.engine.results import store_media
from botapp.models import AIModel, GenRequest
from botapp.providers import PermanentError, PollOutcome, ProviderError, ProviderResult
from botapp.redaction import error_text
from botapp.services import levels
from botapp.services.generation import GenerationService
from botapp.telegram.sender import RetryLater, get_sender

log = logging.getLogger(__name__)


def start(request_id: int) -> str:
    """run_generation: claim a queued request (a duplicate task gets nothing) and take its first step."""
    if not GenerationService.mark_running(request_id=request_id):
        return "not-claimed"
    # Our claim is the fresh `started_at` with no lease (next_poll_at NULL): the poller only takes
    # such a request once started_at is older than a lease, i.e. if this worker died.
    request = load(request_id)
    if request is None:
        return "not-claimed"
    sender = get_sender()
    if request.chat_id and sender is not None:
        if request.status_message_id:
            video = request.kind == AIModel.Kind.VIDEO
            key = "generation.status.generating_video" if video else "generation.status.generating"
            show_status(request, sender, key, language_of(request))
        chat_action(request, sender)
    return advance(request, None)


def resume(request_id: int, token: str | None = None) -> str:
    """advance_generation: the poller (or the sweep) hands over a running request that is due."""
    parsed = datetime.fromisoformat(token) if token else None
    lease = claim(request_id, parsed)
    if lease is None:
        return "not-claimed"
    request = load(request_id)
    if request is None:
        return "gone"
    return advance(request, lease)


def advance(request: GenRequest, token: datetime | None) -> str:
    """The next step of a running request we hold: submit it, or poll its operation."""
    if request.provider_operation_id:
        return handle_poll(request, token, poll_once(request))
    if request.variants > 1:  # one provider call per variant (botapp/engine/variants.py)
        return variants.advance(request, token)
    now = common.now()
    if request.deadline_at and now >= request.deadline_at:
        return fail(request, request.error_code or "deadline", request.error_message or "deadline passed")
    try:
        provider = provider_for(request)
        provider_request = build_provider_request(request, with_images=True)
        # From here on the provider charges for the work: the user can no longer cancel. A request
        # cancelled since the claim stops here, before Google is asked.
        if not GenerationService.mark_submitted(request_id=request.pk):
            log.info("generation #%s: cancelled before it was sent to the provider", request.pk)
            return "cancelled"
        submission = provider.submit(provider_request)
    except InputImageError as exc:
        return fail(request, exc.code, exc.message)
    except RetryLater as exc:  # Telegram (downloading the input photos) is unavailable for now
        if request.attempts >= settings.GENERATION_MAX_ATTEMPTS:
            return fail(request, "input_image_unavailable", f"{error_text(exc)} (after {request.attempts} attempts)")
        delay = max(exc.retry_in, backoff(request.attempts))
        return retry(request, token, "input_image_unavailable", error_text(exc), delay, submit=True)
    except ProviderError as exc:
        return handle_error(request, token, exc, submit=True)
    except Exception as exc:
        log.exception("generation #%s: unexpected error while submitting", request.pk)
        return fail(request, "internal", error_text(exc))
    if submission.is_pending:
        first = common.now() + common.seconds(settings.VIDEO_FIRST_POLL_SECONDS)
        stored = set_alarm(
            request.pk, token, first, provider_operation_id=submission.operation_id, error_code="", error_message=""
        )
        if not stored:
            log.warning("generation #%s: lost the claim; operation %s dropped", request.pk, submission.operation_id)
            return "lost"
        log.info("generation #%s: operation %s started", request.pk, submission.operation_id)
        return "submitted"
    return finish(request, token, submission.result, deliver_inline=True)


def poll_once(request: GenRequest) -> PollOutcome | ProviderError:
    """One poll of the request's operation (no database access: safe in a pool thread)."""
    try:
        provider = provider_for(request)
        return provider.poll(request.provider_operation_id, build_provider_request(request, with_images=False))
    except ProviderError as exc:
        return exc
    except Exception as exc:
        log.exception("generation #%s: unexpected error while polling", request.pk)
        return PermanentError(f"unexpected error while polling: {error_text(exc)}", code="internal")


def handle_poll(request: GenRequest, token: datetime | None, outcome: PollOutcome | ProviderError) -> str:
    if isinstance(outcome, ProviderError):
        return handle_error(request, token, outcome, submit=False)
    now = common.now()
    if outcome.is_done:
        timing.learn(request, (now - (request.started_at or now)).total_seconds())
        return finish(request, token, outcome.result, deliver_inline=False)
    if request.deadline_at and now >= request.deadline_at:
        message = f"operation {request.provider_operation_id} unfinished at the deadline"
        return fail(request, "operation_timeout", message)
    set_alarm(request.pk, token, now + common.seconds(next_poll_delay(request, now)))
    return "pending"


def finish(request: GenRequest, token: datetime | None, result: ProviderResult | None, *, deliver_inline: bool) -> str:
    if result is None:
        return fail(request, "empty_result", "no result")
    try:
        results, cache = store_media(request, result)
    except ProviderError as exc:
        return fail(request, exc.code, exc.message)
    except Exception as exc:
        log.exception("generation #%s: storing the result failed", request.pk)
        return retry(request, token, "storage", error_text(exc), backoff(1), submit=False)
    outcome = GenerationService.mark_succeeded(request_id=request.pk, results=results)
    if outcome is False:
        log.info("generation #%s: finished elsewhere; this result is dropped", request.pk)
        return "lost"
    new_level = outcome.new_level if isinstance(outcome, levels.LevelUp) else None
    log.info("generation #%s succeeded (%d file(s))", request.pk, len(results))
    if not request.chat_id:
        return "succeeded"
    if deliver_inline:
        retry_in = deliver(request.pk, new_level=new_level, cache=cache)
        if retry_in:
            dispatch.deliver_generation(request.pk, new_level, countdown=retry_in)
    else:
        dispatch.deliver_generation(request.pk, new_level)
    return "succeeded"
