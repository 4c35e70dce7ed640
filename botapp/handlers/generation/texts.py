"""The texts of the generation flow's cards (the options, the photos, the prompt, the confirmation)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings

from botapp import bridge
from botapp.bridge import ModelInfo
from botapp.handlers.common import esc, excerpt
from botapp.i18n import t
from botapp.keyboards import fmt_tokens
from botapp.models import AIModel

PROMPT_PREVIEW = 900  # characters of the prompt shown on the confirmation card


def max_image_bytes() -> int:
    return int(getattr(settings, "MAX_INPUT_IMAGE_BYTES", 10 * 1024 * 1024))


def flow_price(model: ModelInfo, data: dict[str, Any]) -> Decimal:
    """What the flow's options cost: the model's pricing rule, the same the charge applies."""
    return model.quote(data.get("params") or {}, int(data.get("variants") or 1)).total


# --- texts ----------------------------------------------------------------------------------------------
def params_lines(model: ModelInfo, params: dict[str, Any], lang: str) -> list[str]:
    lines = []
    if params.get("aspect_ratio"):
        lines.append(t("gen.param.ratio", lang, value=params["aspect_ratio"]))
    if model.kind == AIModel.Kind.VIDEO:
        if params.get("duration_seconds"):
            lines.append(t("gen.param.duration", lang, value=params["duration_seconds"]))
        if params.get("resolution"):
            lines.append(t("gen.param.resolution", lang, value=params["resolution"]))
    return lines


def photos_line(model: ModelInfo, images: list[dict], lang: str) -> str:
    if not model.max_input_images:
        return ""
    if model.kind == AIModel.Kind.VIDEO:
        return t("gen.param.start_frame_set" if images else "gen.param.start_frame_none", lang)
    return t("gen.param.photos", lang, n=len(images), limit=model.max_input_images)


def models_text(kind: str, models: list[ModelInfo], lang: str) -> str:
    lines = [
        t("gen.model_line", lang, label=esc(m.label), price=fmt_tokens(m.price), description=esc(m.describe(lang)))
        for m in models
    ]
    return t(f"gen.choose_model.{kind}", lang) + "\n\n" + "\n\n".join(lines)


def options_text(model: ModelInfo, data: dict[str, Any], lang: str) -> str:
    head = t("gen.model_head", lang, label=esc(model.label), price=fmt_tokens(model.price))
    parts = [head, esc(model.describe(lang)), ""]
    parts += params_lines(model, data["params"], lang)
    photos = photos_line(model, data.get("images", []), lang)
    if photos:
        parts.append(photos)
    parts += ["", t("gen.options_hint", lang)]
    return "\n".join(parts)


def photos_text(model: ModelInfo, data: dict[str, Any], lang: str) -> str:
    count = len(data.get("images", []))
    if model.kind == AIModel.Kind.VIDEO:
        return t("gen.photos_ask.video", lang, size=max_image_bytes() // (1024 * 1024))
    return t(
        "gen.photos_ask.image", lang, limit=model.max_input_images, n=count, size=max_image_bytes() // (1024 * 1024)
    )


def prompt_text(model: ModelInfo, data: dict[str, Any], lang: str) -> str:
    key = f"gen.prompt_ask.{model.kind}"
    text = t(key, lang, label=esc(model.label), limit=model.max_prompt_length)
    images = data.get("images", [])
    if model.max_input_images and model.kind == AIModel.Kind.IMAGE:
        text += "\n" + t("gen.prompt_photos_hint", lang, n=len(images), limit=model.max_input_images)
    elif model.max_input_images and not images:
        text += "\n" + t("gen.prompt_frame_hint", lang)
    elif images:
        text += "\n" + t("gen.param.start_frame_set", lang)
    if data.get("prompt"):
        text += "\n\n" + t("gen.current_prompt", lang, prompt=esc(excerpt(data["prompt"], PROMPT_PREVIEW)))
    return text


def confirm_text(model: ModelInfo, data: dict[str, Any], balance: bridge.BalanceView, lang: str) -> str:
    parts = [t("gen.confirm_title", lang), "", t("gen.confirm_model", lang, label=esc(model.label))]
    parts += params_lines(model, data["params"], lang)
    if data.get("images"):
        key = "gen.param.start_frame_set" if model.kind == AIModel.Kind.VIDEO else "gen.param.photos_attached"
        parts.append(t(key, lang, n=len(data["images"])))
    parts.append(t("gen.confirm_prompt", lang, prompt=esc(excerpt(data["prompt"], PROMPT_PREVIEW))))
    parts.append("")
    price = flow_price(model, data)
    parts.append(t("gen.confirm_price", lang, price=fmt_tokens(price)))
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
