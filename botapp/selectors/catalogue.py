"""The active model catalogue as the bot reads it: snapshots (`ModelInfo`) cached per process for
`CATALOGUE_TTL` seconds, or until the catalogue stamp in the shared cache changes (a model paused by a
worker or saved in the admin: botapp.services.control). Sync, any thread; handlers reach it through
the bridge (`bridge.active_models`, `bridge.active_model`...)."""

from __future__ import annotations

import threading
import time

from botapp.models import AIModel
from botapp.services import control
from botapp.snapshots import ModelInfo

CATALOGUE_TTL = 10.0  # seconds an admin change of the model list takes to reach the bot
_catalogue: tuple[float, tuple[ModelInfo, ...], str | None] | None = None
_catalogue_lock = threading.Lock()
STAMP_CHECK_INTERVAL = 1.0  # seconds between looks at the catalogue stamp (botapp.services.control)
_stamp_checked = 0.0


def _stamp() -> str | None:
    try:
        return control.catalogue_stamp()
    except Exception:  # the cache is down: CATALOGUE_TTL still applies
        return None


def _stamp_unchanged(cached: tuple[float, tuple[ModelInfo, ...], str | None], now: float) -> bool:
    """A model paused by a worker (or resumed in the admin) stamps the shared cache: seen within a second."""
    global _stamp_checked
    if now - _stamp_checked < STAMP_CHECK_INTERVAL:
        return True
    _stamp_checked = now
    return _stamp() == cached[2]


def catalogue() -> tuple[ModelInfo, ...]:
    """Active models, in admin order, cached for `CATALOGUE_TTL` seconds or until the catalogue stamp
    changes (sync; any thread)."""
    global _catalogue
    now = time.monotonic()
    cached = _catalogue
    if cached is not None and now - cached[0] < CATALOGUE_TTL and _stamp_unchanged(cached, now):
        return cached[1]
    with _catalogue_lock:
        stamp = _stamp()
        models = tuple(
            ModelInfo.from_model(m) for m in AIModel.objects.filter(is_active=True).order_by("kind", "sort_order", "id")
        )
        _catalogue = (now, models, stamp)
    return models


def clear_caches() -> None:
    """Forget cached catalogue data (tests, a request refused because its model is gone, and after an
    admin edit if one cannot wait)."""
    global _catalogue
    _catalogue = None


def models_of_kind(kind: str) -> list[ModelInfo]:
    return [m for m in catalogue() if m.kind == kind]


def find_model(model_id: int | None) -> ModelInfo | None:
    return next((m for m in catalogue() if m.id == model_id), None) if model_id else None


def editing_model(preferred_id: int | None = None) -> ModelInfo | None:
    """An active image model that accepts input images (the user's default first)."""
    candidates = [m for m in models_of_kind(AIModel.Kind.IMAGE) if m.max_input_images > 0]
    return next((m for m in candidates if m.id == preferred_id), candidates[0] if candidates else None)


def animation_model(preferred_id: int | None = None) -> ModelInfo | None:
    """An active video model that accepts a starting image (the user's default first)."""
    candidates = [m for m in models_of_kind(AIModel.Kind.VIDEO) if m.max_input_images > 0]
    return next((m for m in candidates if m.id == preferred_id), candidates[0] if candidates else None)
