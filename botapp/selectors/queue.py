"""The generation queue as the user sees it: a request's place in the queue and the estimated wait.

**Position.** `run_generation` has no route of its own in `CELERY_TASK_ROUTES`, so image and video
requests share one Celery queue (the default one), first in, first out. A request's position is
1 + the requests created before it (a smaller id) that are not running yet (created / queued),
of either kind.

**Wait** (until the result), a rough estimate computed on demand (when the status message is sent,
and when the user taps "Refresh"), never on a timer:

    slots  = CELERY_WORKER_CONCURRENCY x GENERATION_WORKER_PROCESSES (threads that run generations)
    hold   = how long one request keeps a slot: an image, its typical duration (the Google call);
             a video only its submit call (VIDEO_SUBMIT_SECONDS; the poller waits for the render)
    work   = sum of `hold` over the requests ahead + half of it over the requests holding a slot now
    start  = 0 while the requests ahead and the busy ones fit in the free slots, else work / slots
    wait   = start + the typical duration of this request's own model

A model's typical duration is the median of started -> finished over its last
TYPICAL_SAMPLE succeeded requests of the last day (a default per kind without history,
QUEUE_DEFAULT_IMAGE_SECONDS / QUEUE_DEFAULT_VIDEO_SECONDS), cached for TYPICAL_CACHE_SECONDS.

Every query is on an index: the queued and running rows through (status, deadline_at), the
history through created_at (a backward range scan of the last day, stopped after the sample).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Sum
from django.utils import timezone

from botapp.models import ZERO, AIModel, GenRequest, Transaction

Status = GenRequest.Status
WAITING = (Status.CREATED, Status.QUEUED)

TYPICAL_SAMPLE = 20  # succeeded requests a model's typical duration is taken from
TYPICAL_WINDOW = timedelta(days=1)
TYPICAL_CACHE_SECONDS = 60
VIDEO_SUBMIT_SECONDS = 5.0  # a video holds a worker slot only while it is submitted
DEFAULT_SECONDS = {AIModel.Kind.IMAGE: 30.0, AIModel.Kind.VIDEO: 120.0}  # without history (see settings)


@dataclass(frozen=True)
class QueueEstimate:
    position: int  # 1: next in line
    ahead: int  # requests before it, not running yet
    wait_seconds: float  # until the result (the start, then the model's typical duration)


@dataclass(frozen=True)
class RequestView:
    """A user's request as the status message shows it (a snapshot safe to hand to the bot)."""

    id: int
    status: str
    kind: str
    label: str
    submitted: bool  # sent to the provider: it charges for the work, cancelling is refused
    price: Decimal
    refunded: Decimal  # tokens returned so far (the ledger)
    estimate: QueueEstimate | None  # while it waits in the queue

    @property
    def cancellable(self) -> bool:
        return self.status in WAITING or (self.status == Status.RUNNING and not self.submitted)


# --- durations ---------------------------------------------------------------------------------------------
def default_seconds(kind: str) -> float:
    name = "QUEUE_DEFAULT_VIDEO_SECONDS" if kind == AIModel.Kind.VIDEO else "QUEUE_DEFAULT_IMAGE_SECONDS"
    return float(getattr(settings, name, 0) or DEFAULT_SECONDS.get(kind, DEFAULT_SECONDS[AIModel.Kind.IMAGE]))


def worker_slots() -> int:
    processes = int(getattr(settings, "GENERATION_WORKER_PROCESSES", 1) or 1)
    return max(1, int(settings.CELERY_WORKER_CONCURRENCY) * processes)


def typical_key(ai_model_id: int | None) -> str:
    return f"queue:typical:{ai_model_id}"


def typical_seconds(*, ai_model_id: int | None, kind: str, now: datetime | None = None) -> float:
    """The median started -> finished of the model's recent succeeded requests (cached), or the default
    of its kind without history."""
    key = typical_key(ai_model_id)
    cached = cache.get(key)
    if cached is not None:
        return float(cached)
    now = now or timezone.now()
    rows = (
        GenRequest.objects.filter(
            created_at__gte=now - TYPICAL_WINDOW,
            ai_model_id=ai_model_id,
            status=Status.SUCCEEDED,
            started_at__isnull=False,
            finished_at__isnull=False,
        )
        .order_by("-created_at")
        .values_list("started_at", "finished_at")[:TYPICAL_SAMPLE]
    )
    durations = [max(0.0, (finished - started).total_seconds()) for started, finished in rows]
    value = statistics.median(durations) if durations else default_seconds(kind)
    cache.set(key, value, TYPICAL_CACHE_SECONDS)
    return value


def hold_seconds(*, ai_model_id: int | None, kind: str) -> float:
    if kind == AIModel.Kind.VIDEO:
        return VIDEO_SUBMIT_SECONDS
    return typical_seconds(ai_model_id=ai_model_id, kind=kind)


# --- the estimate ------------------------------------------------------------------------------------------
def _by_model(queryset) -> list[tuple[int | None, str, int]]:
    rows = queryset.order_by().values_list("ai_model_id", "kind").annotate(n=Count("id"))
    return [(model_id, kind, n) for model_id, kind, n in rows]


def estimate(*, ai_model_id: int | None, kind: str, request_id: int | None = None) -> QueueEstimate:
    """The position and the wait of request `request_id` (None: of a request about to be created, behind
    everything queued now). Two indexed queries, plus the typical durations (cached)."""
    waiting = GenRequest.objects.filter(status__in=WAITING)
    if request_id is not None:
        waiting = waiting.filter(pk__lt=request_id)
    ahead = _by_model(waiting)
    # Holding a worker slot now: a running request without an operation (an image call, a video submit).
    busy = _by_model(GenRequest.objects.filter(status=Status.RUNNING, provider_operation_id=""))
    ahead_count = sum(n for _, _, n in ahead)
    busy_count = sum(n for _, _, n in busy)
    slots = worker_slots()
    start = 0.0
    if ahead_count + busy_count >= slots:
        work = sum(n * hold_seconds(ai_model_id=m, kind=k) for m, k, n in ahead)
        work += sum(n * hold_seconds(ai_model_id=m, kind=k) / 2 for m, k, n in busy)
        start = work / slots
    own = typical_seconds(ai_model_id=ai_model_id, kind=kind)
    return QueueEstimate(position=ahead_count + 1, ahead=ahead_count, wait_seconds=start + own)


# --- a user's request --------------------------------------------------------------------------------------
def label_of(request: GenRequest) -> str:
    ai_model = request.ai_model
    return f"{ai_model.emoji} {ai_model.name}".strip() if ai_model is not None else request.model


def refunded_of(request: GenRequest) -> Decimal:
    if request.status not in (Status.FAILED, Status.CANCELLED):
        return ZERO
    total = Transaction.objects.filter(gen_request=request, kind=Transaction.Kind.REFUND).aggregate(s=Sum("amount"))
    return total["s"] or ZERO


def request_view(*, user_id: int, idempotency_key: str) -> RequestView | None:
    """The user's request created by that confirmation (the unique idempotency key), or None: never
    someone else's."""
    request = (
        GenRequest.objects.select_related("ai_model").filter(idempotency_key=idempotency_key, user_id=user_id).first()
    )
    if request is None:
        return None
    queued = None
    if request.status in WAITING:
        queued = estimate(ai_model_id=request.ai_model_id, kind=request.kind, request_id=request.pk)
    return RequestView(
        id=request.pk,
        status=request.status,
        kind=request.kind,
        label=label_of(request),
        submitted=request.submitted_at is not None,
        price=request.price,
        refunded=refunded_of(request),
        estimate=queued,
    )
