"""The texts of the generation flow's cards (the options, the photos, the prompt, the confirmation)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings

from botapp import bridge
from botapp.bridge import ModelInfo
from botapp.capabilities import default_role, image_role
from botapp.handlers.common import esc, excerpt
from botapp.handlers.generation.prompting import final_of, improve_fee
from botapp.i18n import t
from botapp.keyboards import fmt_resolution, fmt_tokens
from botapp.models import AIModel

PROMPT_PREVIEW = 900  # characters of the prompt shown on the confirmation card


def max_image_bytes() -> int:
    return int(getattr(settings, "MAX_INPUT_IMAGE_BYTES", 10 * 1024 * 1024))


def flow_price(model: ModelInfo, data: dict[str, Any]) -> Decimal:
    """What the flow's options cost: the model's pricing rule, the same the charge applies."""
    return model.quote(data.get("params") or {}, int(data.get("variants") or 1)).total


def images_of(data: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """The flow's photos in one role (see botapp.capabilities.ROLES)."""
    kind = data.get("kind", AIModel.Kind.IMAGE)
    return [i for i in data.get("images", []) if image_role(kind, i) == role]


# --- texts ----------------------------------------------------------------------------------------------
def params_lines(model: ModelInfo, data: dict[str, Any], lang: str) -> list[str]:
    params = data.get("params") or {}
    lines = []
    if params.get("extend_from"):
        lines.append(t("gen.param.extends", lang, id=params["extend_from"], seconds=model.caps.extension_seconds))
    if params.get("edit_of"):
        lines.append(t("studio.param.edits", lang, id=params["edit_of"]))
    if params.get("aspect_ratio") and not params.get("extend_from"):
        lines.append(t("gen.param.ratio", lang, value=params["aspect_ratio"]))
    if model.kind == AIModel.Kind.VIDEO and params.get("duration_seconds") and not params.get("extend_from"):
        lines.append(t("gen.param.duration", lang, value=params["duration_seconds"]))
    if params.get("resolution") and len(model.caps.resolutions) > 1:
        lines.append(t("gen.param.resolution", lang, value=fmt_resolution(params["resolution"])))
    if params.get("thinking_level") and model.caps.thinking_levels:
        lines.append(t("studio.param.thinking", lang, level=t(f"studio.thinking.{params['thinking_level']}", lang)))
    if model.caps.audio and "generate_audio" in params:
        lines.append(t("gen.param.audio_on" if params["generate_audio"] else "gen.param.audio_off", lang))
    if int(data.get("variants") or 1) > 1:
        lines.append(t("gen.param.variants", lang, n=int(data["variants"])))
    if data.get("draft"):
        lines.append(t("studio.param.draft", lang))
    if data.get("negative_prompt"):
        lines.append(t("gen.param.negative", lang, text=esc(excerpt(data["negative_prompt"], 200))))
    return lines


def photos_line(model: ModelInfo, data: dict[str, Any], lang: str) -> str:
    caps = model.caps
    if model.kind != AIModel.Kind.VIDEO:
        if not caps.max_input_images:
            return ""
        return t("gen.param.photos", lang, n=len(images_of(data, "image")), limit=caps.max_input_images)
    if (data.get("params") or {}).get("extend_from"):
        return ""
    lines = []
    if caps.max_input_images:
        first = images_of(data, "first")
        lines.append(t("gen.param.start_frame_set" if first else "gen.param.start_frame_none", lang))
    if caps.last_frame:
        last = images_of(data, "last")
        lines.append(t("gen.param.last_frame_set" if last else "gen.param.last_frame_none", lang))
    if caps.max_reference_images:
        refs = images_of(data, "reference")
        lines.append(t("gen.param.references", lang, n=len(refs), limit=caps.max_reference_images))
    return "\n".join(lines)


def models_text(kind: str, models: list[ModelInfo], lang: str) -> str:
    lines = []
    for m in models:
        key = "gen.model_line_from" if m.price_varies else "gen.model_line"
        lines.append(
            t(key, lang, label=esc(m.label), price=fmt_tokens(m.price_from), description=esc(m.describe(lang)))
        )
    return t(f"gen.choose_model.{kind}", lang) + "\n\n" + "\n\n".join(lines)


def options_text(model: ModelInfo, data: dict[str, Any], lang: str) -> str:
    head = t("gen.model_head", lang, label=esc(model.label), price=fmt_tokens(flow_price(model, data)))
    parts = [head, esc(model.describe(lang)), ""]
    parts += params_lines(model, data, lang)
    photos = photos_line(model, data, lang)
    if photos:
        parts.append(photos)
    parts += ["", t("gen.options_hint", lang)]
    return "\n".join(parts)


def photos_text(model: ModelInfo, data: dict[str, Any], lang: str) -> str:
    size = max_image_bytes() // (1024 * 1024)
    role = data.get("photo_role") or default_role(model.kind)
    if role == "image":
        n = len(images_of(data, "image"))
        return t("gen.photos_ask.image", lang, limit=model.caps.max_input_images, n=n, size=size)
    if role == "reference":
        n = len(images_of(data, "reference"))
        return t("gen.photos_ask.reference", lang, limit=model.caps.max_reference_images, n=n, size=size)
    return t(f"gen.photos_ask.{role}", lang, size=size)


def prompt_text(model: ModelInfo, data: dict[str, Any], lang: str) -> str:
    params = data.get("params") or {}
    key = "gen.prompt_ask.extend" if params.get("extend_from") else f"gen.prompt_ask.{model.kind}"
    if params.get("edit_of"):
        key = "studio.prompt_ask.edit_video"
    text = t(key, lang, label=esc(model.label), limit=model.max_prompt_length)
    if model.kind == AIModel.Kind.IMAGE and model.max_input_images:
        n = len(images_of(data, "image"))
        text += "\n" + t("gen.prompt_photos_hint", lang, n=n, limit=model.max_input_images)
    elif model.kind == AIModel.Kind.VIDEO and not (params.get("extend_from") or params.get("edit_of")):
        frames = photos_line(model, data, lang)
        if model.max_input_images and not data.get("images"):
            text += "\n" + t("gen.prompt_frame_hint", lang)
        elif frames:
            text += "\n" + frames
    if data.get("prompt"):
        text += "\n\n" + t("gen.current_prompt", lang, prompt=esc(excerpt(data["prompt"], PROMPT_PREVIEW)))
    return text


def confirm_text(
    model: ModelInfo, data: dict[str, Any], balance: bridge.BalanceView, lang: str, *, notes: Sequence[str] = ()
) -> str:
    """The confirmation card; `notes` go above the price (a draft's full render and its price)."""
    parts = [t("gen.confirm_title", lang), "", t("gen.confirm_model", lang, label=esc(model.label))]
    parts += params_lines(model, data, lang)
    if model.kind == AIModel.Kind.VIDEO:
        frames = photos_line(model, data, lang)
        if frames and data.get("images"):
            parts.append(frames)
    elif data.get("images"):
        parts.append(t("gen.param.photos_attached", lang, n=len(data["images"])))
    if data.get("style_label"):  # the final prompt: the description with the style applied
        parts.append(t("style.line", lang, name=esc(data["style_label"])))
    key = "style.final_prompt" if data.get("style_label") else "gen.confirm_prompt"
    parts.append(t(key, lang, prompt=esc(excerpt(final_of(data), PROMPT_PREVIEW))))
    parts.extend(notes)
    parts.append("")
    price = flow_price(model, data)
    parts.append(t("gen.confirm_price", lang, price=fmt_tokens(price)))
    if improve_fee(data):  # a rewrite the user took: its own charge, on its own line
        parts.append(t("improve.confirm_line", lang, price=fmt_tokens(improve_fee(data))))
        price += improve_fee(data)
    if balance.total >= price:
        parts.append(
            t(
                "gen.confirm_balance",
                lang,
                balance=fmt_tokens(balance.total),
                after=fmt_tokens(balance.total - price),
            )
        )
    else:
        parts.append(
            t(
                "gen.confirm_short",
                lang,
                balance=fmt_tokens(balance.total),
                shortfall=fmt_tokens(price - balance.total),
            )
        )
    return "\n".join(parts)
