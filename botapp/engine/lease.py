"""The lease and alarm clock of a running request: `GenRequest.next_poll_at`.

While a worker is on a running request, `next_poll_at` is when its claim expires; otherwise it is
when the request is next due (a video poll, a retry after 429/5xx). Whoever moves it (a conditional
UPDATE from the value it read) owns the next step; a worker killed mid-step leaves a lease that
expires, and the poller resumes the request. (Of a succeeded request it is the delivery claim: see
botapp.engine.delivery.)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from botapp.engine import common, timing
from botapp.engine.common import Status
from botapp.models import GenRequest


def work_lease() -> timedelta:
    """How long a claim on a running request lasts: one Google call (+ downloading input photos)."""
    explicit = float(getattr(settings, "GENERATION_LEASE_SECONDS", 0) or 0)
    if explicit > 0:
        return common.seconds(explicit)
    return common.seconds(settings.GOOGLE_HTTP_TIMEOUT_SECONDS + settings.TELEGRAM_REQUEST_TIMEOUT_SECONDS + 30)


def claim(request_id: int, token: datetime | None = None, lease: timedelta | None = None) -> datetime | None:
    """Take the next step of a running request: a conditional UPDATE of its lease.

    With `token` (the lease value a poller tick set when it handed the request over) only that
    exact claim is accepted; without, the request must be due (its lease or alarm has passed).
    Returns the new lease (the caller's token) or None when someone else has it.
    """
    now = common.now()
    new = now + (lease or work_lease())
    qs = GenRequest.objects.filter(pk=request_id, status=Status.RUNNING)
    if token is not None:
        qs = qs.filter(next_poll_at=token)
    else:
        qs = qs.filter(Q(next_poll_at__lte=now) | Q(next_poll_at__isnull=True))
    return new if qs.update(next_poll_at=new) else None


def set_alarm(request_id: int, token: datetime | None, at: datetime, **changes: Any) -> bool:
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


def claim_due(limit: int) -> tuple[list[int], datetime | None]:
    """Claim up to `limit` due running requests in one statement; returns their ids and the lease."""
    now = common.now()
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


def next_poll_delay(request: GenRequest, now: datetime) -> float:
    """Poll often while an operation is young, less as it ages (Veo takes ~10 s to ~6 min), and every
    VIDEO_POLL_DENSE_SECONDS around the age at which operations of its kind have been finishing
    (botapp.engine.timing), so that a finished video is seen within seconds, not a whole interval late."""
    started = request.started_at or now
    age = max(0.0, (now - started).total_seconds())
    delay = max(
        settings.VIDEO_POLL_MIN_SECONDS, min(settings.VIDEO_POLL_MAX_SECONDS, age * settings.VIDEO_POLL_FRACTION)
    )
    window = timing.dense_window(request)
    if window is None:
        return delay
    start, until = window
    dense = settings.VIDEO_POLL_DENSE_SECONDS
    if age < start:
        return max(dense, min(delay, start - age))
    return dense if age < until else delay


def next_alarm(request: GenRequest) -> datetime:
    """The next poll time, rounded up to a quarter second so that requests started together share
    one UPDATE."""
    now = common.now()
    at = now + common.seconds(next_poll_delay(request, now))
    quarter = 250_000
    return at.replace(microsecond=0) + timedelta(microseconds=-(-at.microsecond // quarter) * quarter)


def past_deadline(request: GenRequest) -> bool:
    return bool(request.deadline_at and common.now() >= request.deadline_at)
