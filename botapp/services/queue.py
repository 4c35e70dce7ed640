"""The queue interface: how a charged request reaches a worker.

`enqueue_generation` runs on commit of the request's creation: it moves the request
created -> queued and hands its id to the dispatcher named by `settings.GENERATION_DISPATCH`
(a dotted path to `f(request_id)`; the Celery task in production). If dispatching fails the request
stays queued and the recovery sweep picks it up, so nothing paid for is ever lost.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils.module_loading import import_string

from botapp.services.generation import GenerationService

log = logging.getLogger(__name__)


def dispatch(request_id: int) -> None:
    path = getattr(settings, "GENERATION_DISPATCH", "")
    if path:
        import_string(path)(request_id)


def enqueue_generation(*, request_id: int) -> bool:
    if not GenerationService.mark_queued(request_id=request_id):
        return False
    try:
        dispatch(request_id)
    except Exception:
        log.exception("could not dispatch generation %s; the sweep will retry it", request_id)
    return True
