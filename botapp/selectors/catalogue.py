"""The active model catalogue as the bot reads it: snapshots (`ModelInfo`) cached per process for
`CATALOGUE_TTL` seconds, or until the catalogue stamp in the shared cache changes (a model paused by a
worker or saved in the admin: botapp.services.control). Sync, any thread; handlers reach it through
the bridge (`bridge.active_models`, `bridge.active_model`...)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from botapp.models import AIModel, GenRequest
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


# --- the buttons under a result ---------------------------------------------------------------------
def result_actions(request: GenRequest) -> tuple[bool, bool]:
    """(can edit, can animate) for a finished request: only image results, only with a model for it."""
    if request.kind != AIModel.Kind.IMAGE:
        return False, False
    return editing_model() is not None, animation_model() is not None


@dataclass(frozen=True, slots=True)
class ResultOptions:
    """What the buttons under a finished request offer (read from the cached catalogue)."""

    can_edit: bool = False
    can_animate: bool = False
    can_upscale: bool = False  # an image model takes the result and makes it larger (see upscale_target)
    can_extend: bool = False  # a video whose model continues its own clips
    can_edit_video: bool = False  # a clip whose model edits it by conversation (Omni)
    can_render_full: bool = False  # a draft whose full render's model is active


def resolution_pixels(value: str | None) -> int:
    """The long side a resolution stands for: "1K" 1024, "4K" 4096, "1080p" 1920; 0 if unknown."""
    text = (value or "").strip().lower()
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        return 0
    number = int(digits)
    if text.endswith("k"):
        return number * 1024
    return number * 16 // 9 if text.endswith("p") else number


def _long_side(request: GenRequest, item: dict[str, Any] | None) -> int:
    if item and item.get("width") and item.get("height"):
        return max(int(item["width"]), int(item["height"]))
    return resolution_pixels((request.params or {}).get("resolution"))


def upscale_target(request: GenRequest, index: int | None = None) -> tuple[ModelInfo, str] | None:
    """The model and resolution an image result is upscaled with: an active image model that takes
    an input photo and whose top resolution (`caps.resolutions`) is larger than the result (the
    request's own model first), or None."""
    if request.kind != AIModel.Kind.IMAGE:
        return None
    results = [r for r in request.results or [] if isinstance(r, dict) and r.get("path") and not r.get("failed")]
    item = (request.results or [])[index] if index is not None and 0 <= index < len(request.results or []) else None
    size = _long_side(request, item if isinstance(item, dict) else (results[0] if results else None))
    candidates = [m for m in models_of_kind(AIModel.Kind.IMAGE) if m.max_input_images > 0 and m.caps.resolutions]
    candidates.sort(key=lambda m: m.id != request.ai_model_id)
    for model in candidates:
        top = max(model.caps.resolutions, key=resolution_pixels)
        if resolution_pixels(top) > size:
            return model, top
    return None


def result_options(request: GenRequest) -> ResultOptions:
    """Edit / animate / upscale for an image result, extend for a video (sync: the cached catalogue)."""
    draft = (request.params or {}).get("draft")
    full = find_model(draft.get("full_model_id")) if isinstance(draft, dict) else None
    if request.kind == AIModel.Kind.VIDEO:
        model = find_model(request.ai_model_id)
        return ResultOptions(
            can_extend=bool(model is not None and model.caps.extension),
            can_edit_video=bool(model is not None and model.caps.edit and request.provider_operation_id),
            can_render_full=full is not None,
        )
    can_edit, can_animate = result_actions(request)
    return ResultOptions(
        can_edit=can_edit,
        can_animate=can_animate,
        can_upscale=upscale_target(request) is not None,
        can_render_full=full is not None,
    )
