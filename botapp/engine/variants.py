"""A request for several variants of an image (`GenRequest.variants` 2..4): one provider call each.

The variants of a round are independent synchronous calls (Nano Banana's generate_content), made at
once in a few threads, so a round holds the request's lease about as long as one call. Each variant
ends on its own:

- a result: stored (`<pk>-v<n>`) and kept in `GenRequest.results` as `{"variant": n, "path": ...}`;
- a permanent error (the safety filter, invalid input...): `{"variant": n, "failed": true,
  "error_code", "reason", "error"}` in `results` (no `path`: nothing to send or show);
- a transient error (429, 5xx, network): the variant stays pending. The finished variants are saved
  with the request's next alarm in one conditional UPDATE of our lease (`set_alarm`), so the next round
  (within the request's attempts and deadline) makes only the pending ones, never a finished one again.

When no variant is pending: none succeeded -> the request fails and is refunded whole, as a single
request (`failures.handle_error` / `fail`); some did -> `mark_succeeded` (XP for their share only) and
delivery, which refunds the share of the variants that did not reach the user once, when it settles
(`GenerationService.mark_delivered_variants`). A request without a chat settles at once.
"""

from __future__ import annotations

import dataclasses
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import F

from botapp.engine import common, dispatch
from botapp.engine.backends import provider_for
from botapp.engine.delivery import deliver
from botapp.engine.failures import backoff, fail, handle_error
from botapp.engine.inputs import InputImageError, build_provider_request
from botapp.engine.lease import set_alarm
from botapp.engine.results import store_media
from botapp.models import GenRequest
from botapp.providers import (
    PermanentError,
    Provider,
    ProviderError,
    ProviderRequest,
    RateLimited,
    Submission,
    Transient,
)
from botapp.redaction import error_text, redact
from botapp.services import levels
from botapp.services.generation import GenerationService
from botapp.telegram.sender import RetryLater

log = logging.getLogger(__name__)

Outcome = Submission | ProviderError


def is_failed(item: dict) -> bool:
    return bool(item.get("failed"))


def variant_entries(results: list[dict] | None) -> dict[int, dict]:
    """The variants decided so far (a result or a failure), by index."""
    return {int(item["variant"]): item for item in results or [] if isinstance(item, dict) and "variant" in item}


def failed_entry(index: int, exc: ProviderError) -> dict:
    return {
        "variant": index,
        "kind": "image",
        "failed": True,
        "error_code": exc.code[:64],
        "reason": getattr(exc, "reason", None) or "",
        "error": redact(exc.message)[:500],
    }


def ordered(entries: dict[int, dict]) -> list[dict]:
    return [entries[index] for index in sorted(entries)]


# --------------------------------------------------------------------------------------------------
# A round
# --------------------------------------------------------------------------------------------------
def advance(request: GenRequest, token: datetime | None) -> str:
    """The next round of a request for several variants that we hold (see the module docstring)."""
    done = variant_entries(request.results)
    pending = [index for index in range(request.variants) if index not in done]
    if not pending:  # a worker died after saving the last round
        return settle(request, done, {}, None)
    if request.deadline_at and common.now() >= request.deadline_at:
        code, message = request.error_code or "deadline", request.error_message or "deadline passed"
        return close(request, done, pending, PermanentError(message, code=code))
    try:
        provider = provider_for(request)
        base = build_provider_request(request, with_images=True)
        # From here on the provider charges for the work: the user can no longer cancel.
        if not GenerationService.mark_submitted(request_id=request.pk):
            log.info("generation #%s: cancelled before it was sent to the provider", request.pk)
            return "cancelled"
    except InputImageError as exc:  # the same photos for every variant: none can be made
        return close(request, done, pending, PermanentError(exc.message, code=exc.code))
    except RetryLater as exc:
        error = Transient(error_text(exc), code="input_image_unavailable")
        return later(request, token, done, pending, {index: error for index in pending}, max(1.0, exc.retry_in))
    except ProviderError as exc:
        return close(request, done, pending, exc)
    except Exception as exc:
        log.exception("generation #%s: unexpected error while preparing the variants", request.pk)
        return close(request, done, pending, PermanentError(error_text(exc), code="internal"))

    outcomes = submit_all(provider, base, pending)
    cache: dict[str, bytes] = {}
    transient: dict[int, ProviderError] = {}
    first_error: ProviderError | None = None
    for index in pending:
        outcome = outcomes[index]
        if isinstance(outcome, Submission):
            outcome = store_variant(request, index, outcome, done, cache)
        if isinstance(outcome, ProviderError):
            log.info("generation #%s: variant %d: %r", request.pk, index + 1, outcome)
            if outcome.retryable:
                transient[index] = outcome
            else:
                done[index] = failed_entry(index, outcome)
                first_error = first_error or outcome
    if transient:
        return later(request, token, done, list(transient), transient, None)
    return settle(request, done, cache, first_error, token=token)


def submit_all(provider: Provider, base: ProviderRequest, pending: list[int]) -> dict[int, Outcome]:
    """One provider call per pending variant, at once (no database access in the threads)."""
    demo = provider.name == "demo"

    def one(index: int) -> Outcome:
        # The offline demo draws the prompt: the variants differ by their number, as its own do.
        req = dataclasses.replace(base, prompt=f"{base.prompt} #{index + 1}") if demo and index else base
        try:
            return provider.submit(req)
        except ProviderError as exc:
            return exc
        except Exception as exc:
            log.exception("variant %d: unexpected error while submitting", index + 1)
            return PermanentError(f"unexpected error: {error_text(exc)}", code="internal")

    if len(pending) == 1:
        return {pending[0]: one(pending[0])}
    with ThreadPoolExecutor(max_workers=len(pending), thread_name_prefix="variant") as pool:
        futures = {index: pool.submit(one, index) for index in pending}
        return {index: future.result() for index, future in futures.items()}


def store_variant(
    request: GenRequest, index: int, submission: Submission, done: dict[int, dict], cache: dict[str, bytes]
) -> ProviderError | None:
    """Store a variant's result in `done`; or the error that makes it a failed (or pending) variant."""
    if submission.is_pending or submission.result is None:
        return PermanentError("a long-running operation cannot be one of several variants", code="invalid_input")
    try:
        results, stored = store_media(request, submission.result, variant=index)
    except ProviderError as exc:
        return exc
    except Exception as exc:
        log.exception("generation #%s: storing variant %d failed", request.pk, index + 1)
        return Transient(f"storage: {error_text(exc)}", code="storage")
    done[index] = results[0]
    cache.update(stored)
    return None


def later(
    request: GenRequest,
    token: datetime | None,
    done: dict[int, dict],
    pending: list[int],
    errors: dict[int, ProviderError],
    delay: float | None,
) -> str:
    """Transient errors: keep what is finished and try the pending variants again after a backoff,
    within the request's attempts and deadline; past them, the pending variants fail."""
    error = errors[pending[0]]
    if delay is None:
        delay = backoff(request.attempts, error.retry_after if isinstance(error, RateLimited) else None)
    at = common.now() + common.seconds(delay)
    exhausted = request.attempts >= settings.GENERATION_MAX_ATTEMPTS
    if exhausted or (request.deadline_at and at >= request.deadline_at):
        why = f"after {request.attempts} attempts" if exhausted else "the deadline passed while retrying"
        return close(request, done, pending, PermanentError(f"{error.message} ({why})", code=error.code))
    changes: dict[str, Any] = {
        "results": ordered(done),
        "attempts": F("attempts") + 1,
        "error_code": error.code[:64],
        "error_message": redact(error.message)[:2000],
    }
    if not set_alarm(request.pk, token, at, **changes):
        log.warning("generation #%s: lost the claim; this round's variants are dropped", request.pk)
        return "lost"
    log.info("generation #%s: %d variant(s) to retry in %.1fs (%s)", request.pk, len(pending), delay, error.code)
    return "retry"


def close(request: GenRequest, done: dict[int, dict], pending: list[int], error: ProviderError) -> str:
    """No more rounds: the pending variants fail with `error`, and the request settles."""
    for index in pending:
        done[index] = failed_entry(index, error)
    return settle(request, done, {}, error)


# --------------------------------------------------------------------------------------------------
# Every variant decided
# --------------------------------------------------------------------------------------------------
def settle(
    request: GenRequest,
    done: dict[int, dict],
    cache: dict[str, bytes],
    error: ProviderError | None,
    *,
    token: datetime | None = None,
) -> str:
    """None succeeded: the request fails (refunded whole). Some did: it succeeds and is delivered."""
    results = ordered(done)
    kept = sum(1 for item in results if not is_failed(item))
    if not kept:
        if error is not None and not error.retryable:
            return handle_error(request, token, error, submit=True)  # as a single request: alerts too
        first = next((item for item in results if is_failed(item)), {})
        return fail(request, first.get("error_code") or "failed", first.get("error", ""), reason=first.get("reason"))
    outcome = GenerationService.mark_succeeded(request_id=request.pk, results=results, paid_variants=kept)
    if outcome is False:
        log.info("generation #%s: finished elsewhere; these variants are dropped", request.pk)
        return "lost"
    new_level = outcome.new_level if isinstance(outcome, levels.LevelUp) else None
    log.info("generation #%s succeeded: %d of %d variants", request.pk, kept, request.variants)
    if not request.chat_id:  # nothing to deliver: the failed variants are refunded now
        GenerationService.refund_variants(request_id=request.pk, failed=request.variants - kept)
        return "succeeded"
    retry_in = deliver(request.pk, new_level=new_level, cache=cache)
    if retry_in:
        dispatch.deliver_generation(request.pk, new_level, countdown=retry_in)
    return "succeeded"
