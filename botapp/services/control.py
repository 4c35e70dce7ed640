"""Control while a generation runs: the user's cancel (with the reason when it is refused), and
pausing a model Google no longer knows (and the operator's resume).

Cancel: `GenerationService.cancel` moves a request that has not reached the provider yet to
CANCELLED and refunds it, once (a conditional UPDATE; the worker's `mark_submitted` is the other
side of the race). `cancel` here tells the caller what happened: cancelled now, already cancelled,
already sent to the provider (which charges for the work), or already finished.

Pause: Google answers 404 NOT_FOUND for a retired or renamed model id. `pause_model` deactivates the
model by a conditional UPDATE (active, with the id that failed), so however many requests fail at
once the model is paused once and only the caller that paused it alerts the operators. A model
whose id the operator has changed meanwhile is left alone. `resume_models` is the operator's way
back (after fixing the id).

The bot caches the active catalogue per process (`botapp.selectors.catalogue`, CATALOGUE_TTL). A pause
or a resume writes a new catalogue stamp into Django's cache (Redis in production: shared by every
process), which the bot compares every second or so: the paused model stops being offered at once.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from botapp.models import AIModel, GenRequest
from botapp.selectors.queue import label_of, refunded_of
from botapp.services.generation import GenerationService

log = logging.getLogger(__name__)

Status = GenRequest.Status
CATALOGUE_STAMP_KEY = "catalogue:stamp"


# --- the catalogue stamp -----------------------------------------------------------------------------------
def catalogue_stamp() -> str | None:
    """The current stamp of the active catalogue (None: never changed since the cache was empty)."""
    return cache.get(CATALOGUE_STAMP_KEY)


def catalogue_changed() -> None:
    """Tell every bot process the active catalogue changed (on commit of the caller's transaction)."""

    def stamp() -> None:
        try:
            cache.set(CATALOGUE_STAMP_KEY, uuid.uuid4().hex, timeout=None)
        except Exception:  # the bots fall back to CATALOGUE_TTL
            log.exception("could not stamp the catalogue change")

    transaction.on_commit(stamp)


# --- cancel ------------------------------------------------------------------------------------------------
class CancelState:
    CANCELLED = "cancelled"  # cancelled now, refunded
    ALREADY_CANCELLED = "already_cancelled"
    SUBMITTED = "submitted"  # sent to the provider: refused
    FINISHED = "finished"  # succeeded or failed: refused


@dataclass(frozen=True)
class CancelOutcome:
    state: str  # a CancelState
    request_id: int
    label: str
    refunded: Decimal  # tokens returned for the request (the ledger)


def cancel(*, user_id: int, request_id: int) -> CancelOutcome | None:
    """The user cancels their request; None when it is not theirs (or does not exist)."""
    moved = GenerationService.cancel(request_id=request_id, user_id=user_id)
    request = GenRequest.objects.select_related("ai_model").filter(pk=request_id, user_id=user_id).first()
    if request is None:
        return None
    if moved:
        state = CancelState.CANCELLED
        log.info("generation #%s cancelled by the user", request_id)
    elif request.status == Status.CANCELLED:
        state = CancelState.ALREADY_CANCELLED
    elif request.status == Status.RUNNING:  # not cancellable while running: it was sent to the provider
        state = CancelState.SUBMITTED
    else:
        state = CancelState.FINISHED
    return CancelOutcome(state=state, request_id=request.pk, label=label_of(request), refunded=refunded_of(request))


# --- pause and resume a model ------------------------------------------------------------------------------
def pause_model(*, ai_model_id: int, provider_model_id: str, reason: str) -> datetime | None:
    """Deactivate the model because its provider id failed (once: only an active model with that id).
    Returns the pause time when this call paused it, None otherwise."""
    now = timezone.now()
    paused = AIModel.objects.filter(pk=ai_model_id, is_active=True, provider_model_id=provider_model_id).update(
        is_active=False, paused_reason=reason[:255], paused_at=now, updated_at=now
    )
    if not paused:
        return None
    log.error("AI model #%s (%s) paused: %s", ai_model_id, provider_model_id, reason)
    catalogue_changed()
    return now


def resume_models(*, ai_model_ids: list[int]) -> int:
    """The operator resumes paused models (after fixing the provider id): active again, the pause
    cleared. Returns how many were paused."""
    now = timezone.now()
    resumed = AIModel.objects.filter(pk__in=ai_model_ids, paused_at__isnull=False).update(
        is_active=True, paused_reason="", paused_at=None, updated_at=now
    )
    if resumed:
        catalogue_changed()
    return resumed
