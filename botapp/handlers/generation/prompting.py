"""The flow's prompt pieces the shared screens use (base.py, texts.py, flow.py): the chosen style, the
final prompt and the price of a rewrite. No screen and no router here (prompt_help.py has them), so
base.py can use it without an import circle.

The flow's data keys (FSM storage, JSON):
    prompt          the user's description (typed, or a rewrite they took)
    style_id        the chosen style (None: no style); style_label: its name as shown;
    styles_offered  the model's kind has active styles (the options screen shows 🎨 Style)
    suggestion      the last rewrite shown (✨ Improve); suggestion_from: the text it was made from
    final_prompt    what the confirmation card showed: the description with the style applied
    improve_price   the rewrite's price the card showed (None: the description is not a rewrite)
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiogram.fsm.context import FSMContext

from botapp import bridge
from botapp.bridge import ModelInfo
from botapp.services import prompt_help
from botapp.services.exceptions import DomainError
from botapp.services.styles import PLACEHOLDER, StyledPromptTooLong, StyleInfo, StyleUnavailable, final_prompt

ZERO = Decimal(0)


def improve_offered(data: dict[str, Any]) -> bool:
    """Show ✨ Improve: the feature is on and there is a description to rewrite."""
    return bool((data.get("prompt") or "").strip()) and prompt_help.enabled()


def final_of(data: dict[str, Any]) -> str:
    """The prompt to generate with: the one the confirmation card showed."""
    return data.get("final_prompt") or data.get("prompt", "")


def improve_fee(data: dict[str, Any]) -> Decimal:
    """The rewrite's price on the card (charged with the generation); 0 when none."""
    return Decimal(data["improve_price"]) if data.get("improve_price") else ZERO


def improve_price_of(data: dict[str, Any]) -> Decimal | None:
    """For create_generation(improve_price=...): the price the card showed, None when not a rewrite."""
    return Decimal(data["improve_price"]) if data.get("improve_price") is not None else None


def is_rewrite(data: dict[str, Any]) -> bool:
    suggestion = (data.get("suggestion") or "").strip()
    return bool(suggestion) and (data.get("prompt") or "").strip() == suggestion


def room_for(style: StyleInfo | None, limit: int) -> int:
    """The characters a description may have so that the style still fits the model's limit."""
    if style is None:
        return limit
    return max(1, limit - (len(style.template.replace(PLACEHOLDER, "").strip()) + 2))


async def refresh_style(state: FSMContext, model: ModelInfo, lang: str) -> None:
    """Before the options screen: are there styles for this kind, and is the chosen one still active
    (a style the operator turned off is dropped here; at Generate the service checks again)."""
    data = await state.get_data()
    offered = await bridge.prompt_styles(model.kind)
    chosen = next((s for s in offered if s.id == data.get("style_id")), None)
    await state.update_data(
        styles_offered=bool(offered),
        style_id=chosen.id if chosen else None,
        style_label=chosen.label(lang) if chosen else "",
    )


async def chosen_style(data: dict[str, Any], model: ModelInfo) -> StyleInfo | None:
    return await bridge.prompt_style(data.get("style_id"), model.kind) if data.get("style_id") else None


async def prepare_confirm(state: FSMContext, model: ModelInfo, lang: str) -> DomainError | None:
    """Before the confirmation card: store the final prompt (the style applied) and the rewrite's
    price as what the card shows. Returns what to show instead: StyleUnavailable (the style was
    turned off: it is dropped) or StyledPromptTooLong (the description no longer fits with it)."""
    data = await state.get_data()
    style = await chosen_style(data, model)
    if data.get("style_id") and style is None:
        await state.update_data(style_id=None, style_label="", final_prompt=None)
        return StyleUnavailable()
    try:
        final = final_prompt(text=data.get("prompt", ""), style=style, limit=model.max_prompt_length, lang=lang)
    except StyledPromptTooLong as exc:
        return exc
    price = prompt_help.price() if is_rewrite(data) else None
    await state.update_data(
        final_prompt=final,
        improve_price=str(price) if price is not None else None,
        style_label=style.label(lang) if style else "",
    )
    return None
