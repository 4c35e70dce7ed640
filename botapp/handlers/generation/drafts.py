"""The draft a request may make first (`caps.draft`): which model makes it, and what Generate then asks
for (see botapp/handlers/generation/studio.py)."""

from __future__ import annotations

from typing import Any

from botapp import bridge
from botapp.bridge import ModelInfo
from botapp.capabilities import normalize_params
from botapp.handlers.common import esc
from botapp.i18n import t
from botapp.keyboards import fmt_resolution, fmt_tokens

SOURCE_KEYS = ("extend_from", "edit_of", "draft")  # what a request says of the clip it came from


async def draft_model_for(model: ModelInfo) -> ModelInfo | None:
    """The active model that makes this model's drafts (itself, or the one its `caps.draft` names), or None."""
    draft = model.caps.draft
    if draft is None:
        return None
    target = model
    if draft.model:
        target = next((m for m in await bridge.active_models(model.kind) if m.slug == draft.model), None)
    if target is None or (draft.resolution and draft.resolution not in target.caps.resolutions):
        return None
    return target


async def planned(model: ModelInfo, data: dict[str, Any]) -> tuple[ModelInfo, dict[str, Any]]:
    """What Generate will ask for: the flow's model and options, or, with "⚡ Draft" on, the draft's
    model at the draft's resolution, one variant, with the seed and a note of the full render."""
    if not data.get("draft"):
        return model, data
    target = await bridge.active_model(data.get("draft_model_id")) if data.get("draft_model_id") else None
    if target is None or model.caps.draft is None:
        return model, {**data, "draft": False}
    seed = int(data.get("seed") or 0)
    full_params = {k: v for k, v in (data.get("params") or {}).items() if k not in SOURCE_KEYS}
    full_params["seed"] = seed
    params = {**full_params}
    if model.caps.draft.resolution:
        params["resolution"] = model.caps.draft.resolution
    params = normalize_params(target.caps, params, kind=target.kind)
    params["draft"] = {"full_model_id": model.id, "full_params": full_params}
    images = data.get("images", []) if target.caps.photo_limits(target.kind) else []
    return target, {**data, "params": params, "variants": 1, "images": images}


def draft_lines(model: ModelInfo, data: dict[str, Any], lang: str) -> list[str]:
    """The confirm card of a draft: both prices."""
    params = data.get("params") or {}
    full = model.quote(params, 1).total
    resolution = params.get("resolution")
    where = fmt_resolution(resolution) if resolution else ""
    return [t("studio.draft.confirm_full", lang, label=esc(model.label), resolution=where, price=fmt_tokens(full))]
