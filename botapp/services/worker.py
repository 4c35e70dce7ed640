"""The generation engine: what the Celery tasks (`botapp.tasks`) run.

Life of a request (statuses are GenerationService's; every step is a conditional UPDATE, so duplicate
tasks, retries, the poller and the sweep never act twice):

    queued --start()--> running --submit--> (image) result ---------------------------+
                               \\--submit--> (video) operation id, next_poll_at         |
                                 poll_due() every tick: due operations polled at once  |
                                 in a thread pool; done -> result ---------------------+
    result: media stored (default_storage) -> mark_succeeded (XP) -> delivery.deliver():
            claim the delivery -> send photo/video/document -> mark_delivered (file_id kept);
            an upload whose answer is lost is never repeated (see botapp/services/delivery.py)
    any failure: fail() refunds exactly once; the user is told why in their language.
    Stored error texts go through botapp.redaction (no token or key ever reaches the database).

`GenRequest.next_poll_at` is the request's lease and alarm clock:
- running: when the request is next due (a video poll, a retry after 429/5xx) or, while a worker is
  on it, when its claim expires. Whoever moves it (a conditional UPDATE from the value it read) owns
  the next step; a worker killed mid-step leaves a lease that expires, and the poller resumes it.
- succeeded: the delivery claim (NULL: free). A sender claims it before sending, so a duplicate
  delivery task sends nothing.

Retries (rate limits, 5xx, network) back off exponentially, or by Google's retry delay, and stop at
the request's deadline (`deadline_at`): then the request fails with the last error and is refunded.
"""

from __future__ import annotations

import io
import logging
import random
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from threading import Barrier, BrokenBarrierError, Lock
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import close_old_connections, connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from botapp.models import AIModel, GenRequest
from botapp.providers import (
    GoogleConfig,
    InputImage,
    PermanentError,
    PollOutcome,
    Provider,
    ProviderError,
    ProviderRequest,
    ProviderResult,
    RateLimited,
    SafetyBlocked,
    get_provider,
)
from botapp.providers.demo import OPERATION_PREFIX as DEMO_OPERATION_PREFIX
from botapp.providers.media import image_size, probe_mp4
from botapp.redaction import error_text, redact
from botapp.services import alerts, levels
from botapp.services.delivery import (
    chat_action,
    claim_delivery,
    deliver,
    language_of,
    load,
    show_status,
    tasks_module,
    undeliverable,
)
from botapp.services.generation import GenerationService
from botapp.telegram.media import extension_for
from botapp.telegram.sender import (
    FileTooLarge,
    RetryLater,
    SendRejected,
    TelegramSender,
    get_sender,
)

log = logging.getLogger(__name__)
Status = GenRequest.Status

INPUT_IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MAX_INPUT_PIXELS = 40_000_000


class InputImageError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class PollReport:
    """What one poller tick did (logged, and printed by the benchmark)."""

    claimed: int = 0
    polled: int = 0
    pending: int = 0
    finished: int = 0
    failed: int = 0
    retried: int = 0
    dispatched: int = 0
    errors: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------
def _now() -> datetime:
    return timezone.now()


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=float(value))


def work_lease() -> timedelta:
    """How long a claim on a running request lasts: one Google call (+ downloading input photos)."""
    explicit = float(getattr(settings, "GENERATION_LEASE_SECONDS", 0) or 0)
    if explicit > 0:
        return _seconds(explicit)
    return _seconds(settings.GOOGLE_HTTP_TIMEOUT_SECONDS + settings.TELEGRAM_REQUEST_TIMEOUT_SECONDS + 30)


def google_config() -> GoogleConfig:
    return GoogleConfig(
        api_key=settings.GOOGLE_API_KEY or None,
        use_vertex=settings.GOOGLE_GENAI_USE_VERTEXAI,
        project=settings.GOOGLE_CLOUD_PROJECT or None,
        location=settings.GOOGLE_CLOUD_LOCATION or None,
        vertex_api_key=settings.GOOGLE_VERTEX_API_KEY or None,
        gemini_base_url=settings.GOOGLE_GEMINI_BASE_URL or None,
        vertex_base_url=settings.GOOGLE_VERTEX_BASE_URL or None,
        http_timeout=settings.GOOGLE_HTTP_TIMEOUT_SECONDS,
        download_timeout=settings.GOOGLE_DOWNLOAD_TIMEOUT_SECONDS,
    )


def google_backend(ai_model: AIModel) -> str:
    if ai_model.api_backend:
        return ai_model.api_backend
    if ai_model.provider in (AIModel.Provider.IMAGEN, AIModel.Provider.VEO):
        return "vertex"
    return "vertex" if settings.GOOGLE_GENAI_USE_VERTEXAI else "gemini"


def google_ready(ai_model: AIModel) -> bool:
    """Are there credentials for the backend this model uses?"""
    if google_backend(ai_model) == "vertex":
        return bool(settings.GOOGLE_VERTEX_API_KEY or settings.GOOGLE_CLOUD_PROJECT)
    return bool(settings.GOOGLE_API_KEY)


def uses_demo(ai_model: AIModel) -> bool:
    mode = settings.GENERATION_PROVIDER_MODE
    if ai_model.provider == AIModel.Provider.DEMO or mode == "demo":
        return True
    return mode == "auto" and not google_ready(ai_model)


def demo_provider() -> Provider:
    if not settings.GENERATION_ALLOW_DEMO:
        raise PermanentError(
            "the demo provider is disabled here (GENERATION_ALLOW_DEMO) and Google is not configured for "
            "this model: set the Google credentials (see the README)",
            code="not_configured",
        )
    return get_provider("demo", config=google_config(), demo_delay_seconds=settings.DEMO_VIDEO_SECONDS)


def provider_for(request: GenRequest) -> Provider:
    """The provider that runs (or runs on) this request: Google, or the offline demo."""
    ai_model = request.ai_model
    if ai_model is None:
        raise PermanentError("the request has no model", code="model_missing")
    if request.provider_operation_id.startswith(DEMO_OPERATION_PREFIX):
        return demo_provider()
    if uses_demo(ai_model):
        return demo_provider()
    return get_provider(ai_model.provider, config=google_config())


# --------------------------------------------------------------------------------------------------
# Claims
# --------------------------------------------------------------------------------------------------
def claim(request_id: int, token: datetime | None = None, lease: timedelta | None = None) -> datetime | None:
    """Take the next step of a running request: a conditional UPDATE of its lease.

    With `token` (the lease value a poller tick set when it handed the request over) only that
    exact claim is accepted; without, the request must be due (its lease or alarm has passed).
    Returns the new lease (the caller's token) or None when someone else has it.
    """
    now = _now()
    new = now + (lease or work_lease())
    qs = GenRequest.objects.filter(pk=request_id, status=Status.RUNNING)
    if token is not None:
        qs = qs.filter(next_poll_at=token)
    else:
        qs = qs.filter(Q(next_poll_at__lte=now) | Q(next_poll_at__isnull=True))
    return new if qs.update(next_poll_at=new) else None


def _set_alarm(request_id: int, token: datetime | None, at: datetime, **changes: Any) -> bool:
    """Release our claim: the request is next due at `at` (only if we still hold it; token None:
    the claim of a fresh mark_running, with no lease set)."""
    return bool(
        GenRequest.objects.filter(pk=request_id, status=Status.RUNNING, next_poll_at=token).update(
            next_poll_at=at, **changes
        )
    )


def due_filter(now: datetime) -> Q:
    stale = now - work_lease()
    return Q(status=Status.RUNNING) & (Q(next_poll_at__lte=now) | Q(next_poll_at__isnull=True, started_at__lte=stale))


def backoff(attempt: int, retry_after: float | None = None) -> float:
    base = settings.GENERATION_RETRY_BASE_SECONDS
    delay = min(settings.GENERATION_RETRY_MAX_SECONDS, base * (2 ** max(0, attempt - 1)))
    delay *= random.uniform(0.8, 1.2)
    if retry_after:
        delay = max(delay, float(retry_after))
    return delay


def next_poll_delay(request: GenRequest, now: datetime) -> float:
    """Poll often while an operation is young, less as it ages (Veo takes ~10 s to ~6 min)."""
    started = request.started_at or now
    age = max(0.0, (now - started).total_seconds())
    delay = age * settings.VIDEO_POLL_FRACTION
    return max(settings.VIDEO_POLL_MIN_SECONDS, min(settings.VIDEO_POLL_MAX_SECONDS, delay))


# --------------------------------------------------------------------------------------------------
# Entry points of the tasks
# --------------------------------------------------------------------------------------------------
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
    now = _now()
    if request.deadline_at and now >= request.deadline_at:
        return fail(request, request.error_code or "deadline", request.error_message or "deadline passed")
    try:
        provider = provider_for(request)
        provider_request = build_provider_request(request, with_images=True)
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
        first = _now() + _seconds(settings.VIDEO_FIRST_POLL_SECONDS)
        stored = _set_alarm(
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
    if outcome.is_done:
        return finish(request, token, outcome.result, deliver_inline=False)
    now = _now()
    if request.deadline_at and now >= request.deadline_at:
        message = f"operation {request.provider_operation_id} unfinished at the deadline"
        return fail(request, "operation_timeout", message)
    _set_alarm(request.pk, token, now + _seconds(next_poll_delay(request, now)))
    return "pending"


def handle_error(request: GenRequest, token: datetime | None, exc: ProviderError, *, submit: bool) -> str:
    log.warning("generation #%s: %s %r", request.pk, "submit" if submit else "poll", exc)
    if not exc.retryable:
        if submit and exc.code == "model_not_found":  # (on a poll, a 404 is the operation's, not the model's)
            alerts.model_not_found(request=request, message=exc.message)
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
        delay = max(float(retry_after or 0), next_poll_delay(request, _now()))
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
    at = _now() + _seconds(delay)
    if request.deadline_at and at >= request.deadline_at:
        return fail(request, code, f"{message} (the deadline passed while retrying)")
    changes: dict[str, Any] = {"error_code": code[:64], "error_message": redact(message)[:2000]}
    if submit:
        changes["attempts"] = F("attempts") + 1
    if new_operation:
        changes["provider_operation_id"] = ""
    _set_alarm(request.pk, token, at, **changes)
    log.info("generation #%s: %s, retrying in %.1fs", request.pk, code, delay)
    return "retry"


# --------------------------------------------------------------------------------------------------
# Building the provider request (input photos from Telegram, checked with Pillow)
# --------------------------------------------------------------------------------------------------
def build_provider_request(request: GenRequest, *, with_images: bool) -> ProviderRequest:
    ai_model = request.ai_model
    images = [fetch_input_image(meta) for meta in (request.input_images or [])] if with_images else []
    return ProviderRequest(
        provider_model_id=ai_model.provider_model_id if ai_model else request.model,
        kind=request.kind,
        prompt=request.prompt,
        negative_prompt=request.negative_prompt or None,
        input_images=images,
        params=dict(request.params or {}),
        backend=(ai_model.api_backend or None) if ai_model else None,
        request_id=str(request.pk),
    )


def fetch_input_image(meta: dict) -> InputImage:
    limit = settings.MAX_INPUT_IMAGE_BYTES
    size = meta.get("size") or 0
    if size and int(size) > limit:
        raise InputImageError("input_image_too_large", f"input photo of {size} bytes, limit {limit}")
    if meta.get("path"):  # one of our stored results
        try:
            with default_storage.open(meta["path"], "rb") as fh:
                data = fh.read(limit + 1)
        except OSError as exc:
            raise InputImageError("input_image_unavailable", f"stored image {meta['path']}: {error_text(exc)}") from exc
    else:
        sender = get_sender()
        if sender is None or not meta.get("file_id"):
            raise InputImageError("input_image_unavailable", "no Telegram bot to download the input photo")
        try:
            data = sender.download(meta["file_id"], max_bytes=min(limit, settings.TELEGRAM_DOWNLOAD_LIMIT_BYTES))
        except FileTooLarge as exc:
            raise InputImageError("input_image_too_large", error_text(exc)) from exc
        except SendRejected as exc:  # an unknown file_id, or the file server's 4xx
            raise InputImageError("input_image_unavailable", f"download refused: {error_text(exc)}") from exc
    if len(data) > limit:
        raise InputImageError("input_image_too_large", f"input photo over {limit} bytes")
    return InputImage(data=data, mime_type=check_image(data))


def check_image(data: bytes) -> str:
    """The image's MIME type if Pillow can read all of it and Google accepts the format."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            width, height = im.size
            if width * height > MAX_INPUT_PIXELS:
                raise InputImageError("input_image_too_large", f"input photo of {width}x{height} pixels")
            im.verify()
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # verify() does not decode the pixels; a truncated file fails here
    except InputImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputImageError("input_image_too_large", str(exc)) from exc
    except Exception as exc:
        raise InputImageError("input_image_invalid", f"unreadable input photo: {error_text(exc)}") from exc
    if fmt not in INPUT_IMAGE_FORMATS:
        raise InputImageError("input_image_invalid", f"unsupported input photo format {fmt}")
    return INPUT_IMAGE_FORMATS[fmt]


# --------------------------------------------------------------------------------------------------
# Finishing: store the media, mark succeeded, deliver
# --------------------------------------------------------------------------------------------------
def store_media(request: GenRequest, result: ProviderResult) -> tuple[list[dict], dict[str, bytes]]:
    """Save every produced file through Django's storage; return the results and the bytes by path."""
    if not result.media:
        raise PermanentError("the provider returned no media", code="empty_result")
    stamp = (request.created_at or _now()).strftime("%Y/%m/%d")
    results: list[dict] = []
    cache: dict[str, bytes] = {}
    for index, item in enumerate(result.media):
        if item.data is None:
            raise PermanentError(f"the result is only at {item.uri}, which cannot be fetched", code="download_failed")
        kind = "video" if item.mime_type.startswith("video/") else "image"
        width, height, duration = item.width, item.height, item.duration
        if kind == "image" and not (width and height):
            width, height = image_size(item.data)
        if kind == "video" and not (width and height and duration):
            info = probe_mp4(item.data)
            if info is not None:
                width, height, duration = width or info.width, height or info.height, duration or info.duration
        name = f"{settings.GENERATION_STORAGE_PREFIX}/{stamp}/{request.pk}-{index}.{extension_for(item.mime_type)}"
        path = default_storage.save(name, ContentFile(item.data))
        cache[path] = item.data
        results.append(
            {
                "kind": kind,
                "path": path,
                "mime_type": item.mime_type,
                "size": len(item.data),
                "width": width,
                "height": height,
                "duration": duration,
                "is_demo": bool(result.is_demo),
            }
        )
    return results, cache


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
    # The lease of the running step becomes a free delivery claim.
    GenRequest.objects.filter(pk=request.pk, status=Status.SUCCEEDED, delivered_at__isnull=True).update(
        next_poll_at=None
    )
    new_level = outcome.new_level if isinstance(outcome, levels.LevelUp) else None
    log.info("generation #%s succeeded (%d file(s))", request.pk, len(results))
    if not request.chat_id:
        return "succeeded"
    if deliver_inline:
        retry_in = deliver(request.pk, new_level=new_level, cache=cache)
        if retry_in:
            tasks_module().deliver_generation.apply_async((request.pk, new_level), countdown=retry_in)
    else:
        tasks_module().deliver_generation.delay(request.pk, new_level)
    return "succeeded"


def fail(request: GenRequest, code: str, message: str = "", *, reason: str | None = None) -> str:
    """Fail and refund (exactly once: GenerationService.fail is a conditional UPDATE), then tell the user."""
    code = code or "failed"
    moved = GenerationService.fail(request_id=request.pk, error_code=code, error_message=redact(message))
    if not moved:
        return "not-failed"
    log.info("generation #%s failed: %s %s", request.pk, code, message[:300])
    if request.chat_id:
        tasks_module().notify_failure.delay(request.pk, reason)
    return "failed"


# --------------------------------------------------------------------------------------------------
# The poller: every due operation, polled concurrently
# --------------------------------------------------------------------------------------------------
_executors: dict[str, ThreadPoolExecutor] = {}
_executor_lock = Lock()


def _executor(name: str, size: int) -> ThreadPoolExecutor:
    """A process-wide pool: "poll" threads only talk HTTP; "finish" threads own a DB connection each."""
    found = _executors.get(name)
    if found is None:
        with _executor_lock:
            found = _executors.get(name)
            if found is None:
                found = _executors[name] = ThreadPoolExecutor(max_workers=max(1, size), thread_name_prefix=name)
    return found


def close_pools() -> None:
    """Stop the pools, closing the finisher threads' DB connections (worker shutdown, tests)."""
    with _executor_lock:
        pools = dict(_executors)
        _executors.clear()
    finisher = pools.get("finish")
    if finisher is not None:
        size = finisher._max_workers
        barrier = Barrier(size, timeout=5)

        def close() -> None:
            connections.close_all()
            try:
                barrier.wait()  # one job per thread: every thread closes its own connection
            except BrokenBarrierError:
                pass

        for _ in range(size):
            finisher.submit(close)
    for pool in pools.values():
        pool.shutdown(wait=True)


def _finish_in_thread(request: GenRequest, token: datetime, outcome: PollOutcome) -> str:
    """Store, mark succeeded and hand over to delivery, in a finisher thread (its own DB connection)."""
    close_old_connections()
    try:
        return handle_poll(request, token, outcome)
    finally:
        close_old_connections()


def claim_due(limit: int) -> tuple[list[int], datetime | None]:
    """Claim up to `limit` due running requests in one statement; returns their ids and the lease."""
    now = _now()
    lease = now + work_lease()
    with transaction.atomic():
        qs = (
            GenRequest.objects.filter(due_filter(now))
            .order_by(F("next_poll_at").asc(nulls_first=True), "pk")
            .select_for_update(skip_locked=True)
        )
        ids = list(qs.values_list("pk", flat=True)[:limit])
        if not ids:
            return [], None
        GenRequest.objects.filter(pk__in=ids).update(next_poll_at=lease)
    return ids, lease


def _poll_in_thread(request: GenRequest, sender: TelegramSender | None) -> PollOutcome | ProviderError:
    outcome = poll_once(request)
    if isinstance(outcome, PollOutcome) and outcome.is_pending and sender is not None and request.chat_id:
        try:
            chat_action(request, sender)
        except Exception:  # best effort
            log.debug("chat action failed", exc_info=True)
    return outcome


def poll_due(limit: int | None = None) -> PollReport:
    """poll_generations: claim every due running request; poll operations here, hand the rest over."""
    report = PollReport()
    limit = limit or settings.GENERATION_POLL_BATCH
    ids, lease = claim_due(limit)
    if not ids:
        return report
    report.claimed = len(ids)
    requests = list(GenRequest.objects.select_related("ai_model", "user").filter(pk__in=ids))
    with_operation = [r for r in requests if r.provider_operation_id]
    for request in requests:
        if not request.provider_operation_id:  # a retry, or a step abandoned by a dead worker
            tasks_module().advance_generation.delay(request.pk, lease.isoformat())
            report.dispatched += 1
    if not with_operation:
        return report
    sender = get_sender()
    polls = _executor("poll", settings.GENERATION_POLL_THREADS)
    finishers = _executor("finish", settings.GENERATION_FINISH_THREADS)
    futures = {polls.submit(_poll_in_thread, request, sender): request for request in with_operation}
    finishing: dict = {}
    alarms: dict[datetime, list[int]] = {}  # still pending: one UPDATE per distinct next poll time
    for future in as_completed(futures):
        request = futures[future]
        report.polled += 1
        try:
            outcome = future.result()
            if isinstance(outcome, PollOutcome) and outcome.is_done:  # storing takes a while: in parallel
                finishing[finishers.submit(_finish_in_thread, request, lease, outcome)] = request
                continue
            if isinstance(outcome, PollOutcome) and not _past_deadline(request):
                alarms.setdefault(_next_alarm(request), []).append(request.pk)
                report.pending += 1
                continue
            _count(report, handle_poll(request, lease, outcome))
        except Exception as exc:  # one bad request must not stop the tick
            log.exception("generation #%s: handling the poll failed", request.pk)
            report.errors.append(f"#{request.pk}: {error_text(exc)}")
    for at, pks in alarms.items():
        GenRequest.objects.filter(pk__in=pks, status=Status.RUNNING, next_poll_at=lease).update(next_poll_at=at)
    for future in as_completed(finishing):
        try:
            _count(report, future.result())
        except Exception as exc:
            log.exception("generation #%s: finishing failed", finishing[future].pk)
            report.errors.append(f"#{finishing[future].pk}: {error_text(exc)}")
    return report


def _past_deadline(request: GenRequest) -> bool:
    return bool(request.deadline_at and _now() >= request.deadline_at)


def _next_alarm(request: GenRequest) -> datetime:
    """The next poll time, rounded up to a quarter second so that requests started together share
    one UPDATE."""
    now = _now()
    at = now + _seconds(next_poll_delay(request, now))
    quarter = 250_000
    return at.replace(microsecond=0) + timedelta(microseconds=-(-at.microsecond // quarter) * quarter)


def _count(report: PollReport, state: str) -> None:
    if state == "pending":
        report.pending += 1
    elif state == "succeeded":
        report.finished += 1
    elif state == "failed":
        report.failed += 1
    elif state == "retry":
        report.retried += 1


# --------------------------------------------------------------------------------------------------
# The recovery sweep
# --------------------------------------------------------------------------------------------------
def sweep() -> dict[str, int]:
    """sweep_generations: nothing paid for stays stuck.

    - created but never queued (the process died before on_commit ran): queue it;
    - queued but not picked up for GENERATION_REDISPATCH_AFTER_SECONDS: dispatch again (duplicates are
      harmless), or fail + refund past the deadline;
    - running and overdue (the poller is not running, or a worker died holding it): resume it (with an
      operation id: poll; without: submit again), which fails + refunds it past the deadline;
    - succeeded but undelivered: deliver again, or refund after GENERATION_DELIVERY_GRACE_SECONDS.
    """
    from botapp.services.queue import enqueue_generation

    now = _now()
    stats = {"queued": 0, "redispatched": 0, "resumed": 0, "redelivered": 0, "failed": 0}
    stale = now - _seconds(settings.GENERATION_REDISPATCH_AFTER_SECONDS)
    tasks = tasks_module()

    for pk in GenRequest.objects.filter(status=Status.CREATED, created_at__lte=now - timedelta(seconds=30)).values_list(
        "pk", flat=True
    )[:1000]:
        if enqueue_generation(request_id=pk):
            stats["queued"] += 1

    expired = GenRequest.objects.filter(status=Status.QUEUED, deadline_at__lte=now).select_related("ai_model")
    for request in expired[:1000]:
        if fail(request, "deadline", "never started before the deadline") == "failed":
            stats["failed"] += 1
    for pk in GenRequest.objects.filter(status=Status.QUEUED, queued_at__lte=stale).values_list("pk", flat=True)[:1000]:
        tasks.run_generation.delay(pk)
        stats["redispatched"] += 1

    overdue = now - max(work_lease(), _seconds(settings.GENERATION_POLL_TICK_SECONDS * 5))
    running = GenRequest.objects.filter(status=Status.RUNNING).filter(
        Q(next_poll_at__lte=overdue) | Q(next_poll_at__isnull=True, started_at__lte=overdue)
    )
    for pk in running.values_list("pk", flat=True)[:1000]:
        tasks.advance_generation.delay(pk, None)
        stats["resumed"] += 1

    undelivered = GenRequest.objects.filter(
        status=Status.SUCCEEDED, delivered_at__isnull=True, chat_id__isnull=False
    ).filter(Q(next_poll_at__lte=now) | Q(next_poll_at__isnull=True, finished_at__lte=stale))
    grace = _seconds(settings.GENERATION_DELIVERY_GRACE_SECONDS)
    for request in undelivered.select_related("ai_model")[:1000]:
        if request.finished_at and request.finished_at + grace <= now:
            token = claim_delivery(request.pk)
            if token is not None:
                undeliverable(request, token, "delivery_failed", "not delivered within the grace period", notify=True)
                stats["failed"] += 1
        else:
            tasks.deliver_generation.delay(request.pk, None)
            stats["redelivered"] += 1
    if any(stats.values()):
        log.info("generation sweep: %s", stats)
    return stats
