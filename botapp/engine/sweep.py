"""The recovery sweep (sweep_generations, every GENERATION_SWEEP_SECONDS): nothing paid for stays stuck."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q

from botapp.engine import common, dispatch
from botapp.engine.common import Status
from botapp.engine.delivery import claim_delivery, undeliverable
from botapp.engine.failures import fail
from botapp.engine.lease import work_lease
from botapp.models import GenRequest
from botapp.services import lifecycle
from botapp.services.generation import NOT_SENT
from botapp.services.queue import enqueue_generation

log = logging.getLogger(__name__)


def sweep() -> dict[str, int]:
    """sweep_generations: nothing paid for stays stuck.

    - created but never queued (the process died before on_commit ran): queue it;
    - queued but not picked up for GENERATION_REDISPATCH_AFTER_SECONDS: dispatch again (duplicates are
      harmless), or fail + refund past the deadline;
    - waiting for a model the bot paused (Google no longer knows its id): fail + refund, with the
      "model unavailable" message (what the worker that paused it did not take);
    - waiting for a model that switched to its successor (botapp.services.lifecycle): moved there (or
      refunded when dearer there), never failed as "unavailable": what the switch did not take (its
      batch, or a request created while it ran);
    - running and overdue (the poller is not running, or a worker died holding it): resume it (with an
      operation id: poll; without: submit again), which fails + refunds it past the deadline;
    - succeeded but undelivered: deliver again, or refund after GENERATION_DELIVERY_GRACE_SECONDS.
    """
    now = common.now()
    stats = {"queued": 0, "redispatched": 0, "resumed": 0, "redelivered": 0, "failed": 0, "moved": 0}
    stale = now - common.seconds(settings.GENERATION_REDISPATCH_AFTER_SECONDS)

    paused = GenRequest.objects.filter(
        status__in=(Status.CREATED, Status.QUEUED),
        ai_model__is_active=False,
        ai_model__paused_at__isnull=False,
        ai_model__switched_at__isnull=True,  # a switched model's requests move to its successor (below)
    )
    for request in paused.select_related("ai_model")[:1000]:
        if fail(request, "model_not_found", "the model is paused", only_if=NOT_SENT) == "failed":
            stats["failed"] += 1

    for ai_model_id in list(lifecycle.switched_models_waiting()):
        report = lifecycle.move_waiting(ai_model_id=ai_model_id)
        stats["moved"] += report.moved
        stats["failed"] += report.refunded

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
        dispatch.run_generation(pk)
        stats["redispatched"] += 1

    overdue = now - max(work_lease(), common.seconds(settings.GENERATION_POLL_TICK_SECONDS * 5))
    running = GenRequest.objects.filter(status=Status.RUNNING).filter(
        Q(next_poll_at__lte=overdue) | Q(next_poll_at__isnull=True, started_at__lte=overdue)
    )
    for pk in running.values_list("pk", flat=True)[:1000]:
        dispatch.advance_generation(pk, None)
        stats["resumed"] += 1

    undelivered = GenRequest.objects.filter(
        status=Status.SUCCEEDED, delivered_at__isnull=True, chat_id__isnull=False
    ).filter(Q(next_poll_at__lte=now) | Q(next_poll_at__isnull=True, finished_at__lte=stale))
    grace = common.seconds(settings.GENERATION_DELIVERY_GRACE_SECONDS)
    for request in undelivered.select_related("ai_model")[:1000]:
        if request.finished_at and request.finished_at + grace <= now:
            token = claim_delivery(request.pk)
            if token is not None:
                undeliverable(request, token, "delivery_failed", "not delivered within the grace period", notify=True)
                stats["failed"] += 1
        else:
            dispatch.deliver_generation(request.pk, None)
            stats["redelivered"] += 1
    if any(stats.values()):
        log.info("generation sweep: %s", stats)
    return stats
