"""The poller (poll_generations, every GENERATION_POLL_TICK_SECONDS): every due running request is
claimed in one statement; due operations are polled at once in a thread pool ("poll": HTTP only),
finished ones stored and handed to delivery in a second pool ("finish": a DB connection per thread),
pending ones get their next alarm (one UPDATE per distinct time); a due request without an operation
(a retry, or a step abandoned by a dead worker) goes to advance_generation."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from threading import Barrier, BrokenBarrierError, Lock, local

from django.conf import settings
from django.db import close_old_connections, connections

from botapp.engine import dispatch
from botapp.engine.common import Status, chat_action
from botapp.engine.lease import claim_due, next_alarm, past_deadline
from botapp.engine.steps import handle_poll, poll_once
from botapp.models import GenRequest
from botapp.providers import PollOutcome, ProviderError
from botapp.redaction import error_text
from botapp.telegram.sender import TelegramSender, get_sender

log = logging.getLogger(__name__)


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
    polling_seconds: float = 0.0  # from the claim until every poll was answered
    seconds: float = 0.0  # the whole tick, finishing included


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


_tidied = local()


def _tidy_connections(*, every: float = 1.0) -> None:
    """Django's rule for a long-lived thread (close a connection past its age or broken), applied at most
    once a second in a busy finisher thread, as each call costs the next query a health check; at once
    after a database error, and always after a quiet spell."""
    now = time.monotonic()
    errors = any(conn.errors_occurred for conn in connections.all(initialized_only=True))
    if now < getattr(_tidied, "until", 0.0) and not errors:
        return
    _tidied.until = now + every
    close_old_connections()


def _finish_in_thread(request: GenRequest, token: datetime, outcome: PollOutcome) -> str:
    """Store, mark succeeded and hand over to delivery, in a finisher thread (its own DB connection)."""
    _tidy_connections()
    try:
        return handle_poll(request, token, outcome)
    finally:
        _tidy_connections()


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
    started = time.monotonic()
    try:
        return _poll_due(report, started, limit or settings.GENERATION_POLL_BATCH)
    finally:
        report.seconds = time.monotonic() - started


def _poll_due(report: PollReport, started: float, limit: int) -> PollReport:
    ids, lease = claim_due(limit)
    if not ids:
        return report
    report.claimed = len(ids)
    requests = list(GenRequest.objects.select_related("ai_model", "user").filter(pk__in=ids))
    with_operation = [r for r in requests if r.provider_operation_id]
    for request in requests:
        if not request.provider_operation_id:  # a retry, or a step abandoned by a dead worker
            dispatch.advance_generation(request.pk, lease.isoformat())
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
            if isinstance(outcome, PollOutcome) and not past_deadline(request):
                alarms.setdefault(next_alarm(request), []).append(request.pk)
                report.pending += 1
                continue
            _count(report, handle_poll(request, lease, outcome))
        except Exception as exc:  # one bad request must not stop the tick
            log.exception("generation #%s: handling the poll failed", request.pk)
            report.errors.append(f"#{request.pk}: {error_text(exc)}")
    report.polling_seconds = time.monotonic() - started
    for at, pks in alarms.items():
        GenRequest.objects.filter(pk__in=pks, status=Status.RUNNING, next_poll_at=lease).update(next_poll_at=at)
    for future in as_completed(finishing):
        try:
            _count(report, future.result())
        except Exception as exc:
            log.exception("generation #%s: finishing failed", finishing[future].pk)
            report.errors.append(f"#{finishing[future].pk}: {error_text(exc)}")
    return report


def _count(report: PollReport, state: str) -> None:
    if state == "pending":
        report.pending += 1
    elif state == "succeeded":
        report.finished += 1
    elif state == "failed":
        report.failed += 1
    elif state == "retry":
        report.retried += 1
