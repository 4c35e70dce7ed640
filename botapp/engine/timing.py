"""How long operations take, learned from this process's own polls, so that a video is polled densely
around the time its kind of operation finishes instead of up to a whole poll interval late.

The kind is the model and the request's parameters (a 4 s 720p Veo clip and an 8 s 1080p one take
different times). Each operation found finished adds its age (from the start of the request) to the
kind's last VIDEO_POLL_LEARN_SAMPLES; with at least VIDEO_POLL_LEARN_MIN of them, `dense_window` gives
the span of ages, from a little before the 10th percentile to the 90th (at most
VIDEO_POLL_DENSE_SPAN_SECONDS long), in which botapp.engine.lease polls every VIDEO_POLL_DENSE_SECONDS.
Nothing is stored: a restarted worker learns again from its first few videos, and polls at the regular
pace meanwhile."""

from __future__ import annotations

import json
from collections import deque
from threading import Lock

from django.conf import settings

from botapp.models import GenRequest

_samples: dict[tuple[int, str], deque[float]] = {}
_lock = Lock()


def _kind(request: GenRequest) -> tuple[int, str]:
    return request.ai_model_id, json.dumps(request.params or {}, sort_keys=True, default=str)


def learn(request: GenRequest, age: float) -> None:
    """An operation of this request's kind was found finished `age` seconds after the request started."""
    if age <= 0 or settings.VIDEO_POLL_DENSE_SECONDS <= 0:
        return
    key = _kind(request)
    found = _samples.get(key)
    if found is None:
        with _lock:
            found = _samples.setdefault(key, deque(maxlen=max(1, settings.VIDEO_POLL_LEARN_SAMPLES)))
    found.append(age)


def dense_window(request: GenRequest) -> tuple[float, float] | None:
    """(from, until): the ages at which an operation of this kind is polled densely; None while too
    few of its kind have been seen (or dense polling is off)."""
    dense = settings.VIDEO_POLL_DENSE_SECONDS
    found = _samples.get(_kind(request))
    if dense <= 0 or found is None or len(found) < max(1, settings.VIDEO_POLL_LEARN_MIN):
        return None
    ages = sorted(found)
    low, high = ages[len(ages) // 10], ages[(len(ages) * 9) // 10]
    start = max(0.0, low * 0.95 - dense)
    return start, min(high + dense, start + settings.VIDEO_POLL_DENSE_SPAN_SECONDS)


def forget() -> None:
    """Drop what was learned (tests)."""
    with _lock:
        _samples.clear()
