"""The studio's options: the thinking level, "⚡ Draft" first and "🎬 Render in full" under a draft, and
"✏️ Edit this video" under a clip whose model edits by conversation.

A draft (`caps.draft`) is the same request made cheaply first: by the model the draft names (Nano Banana 2
Lite for Nano Banana 2.1) or the model itself, at the draft's resolution (Omni at 360p), one variant, with a
seed. The request carries `params["draft"] = {"full_model_id", "full_params"}`: under the delivered draft,
"Render in full" opens the confirm card of the full model with the same prompt, inputs and seed at the
quality the user picked (changeable there). The draft is charged as its own request; the full render is
charged in full when it is confirmed (Google charges both).
"""

from __future__ import annotations

import secrets
from typing import Any

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from botapp import bridge
from botapp.bridge import UserContext
from botapp.callbacks import GenAction, GenCb
from botapp.capabilities import normalize_params
from botapp.handlers.common import answer, outdated
from botapp.handlers.generation.base import card_and_model, show_confirm, show_options, show_prompt
from botapp.handlers.generation.drafts import SOURCE_KEYS, draft_model_for
from botapp.i18n import t
from botapp.models import AIModel, GenRequest
from botapp.services.generation_checks import MAX_SEED
from botapp.states import GenerationFlow as Flow

router = Router(name=__name__)


@router.callback_query(Flow.options, GenCb.filter(F.action == GenAction.DRAFT))
async def on_draft(query: CallbackQuery, state: FSMContext, lang: str) -> None:
    found = await card_and_model(query, state, lang)
    if found is None:
        return
    data, model = found
    target = await draft_model_for(model)
    if target is None:
        await state.update_data(draft=False, draft_model_id=None)
        await answer(query, t("studio.draft.unavailable", lang), alert=True)
        await show_options(query, state, model, lang)
        return
    on = not data.get("draft")
    changes: dict[str, Any] = {"draft": on, "draft_model_id": target.id}
    if on:
        changes["variants"] = 1
        changes["seed"] = data.get("seed") or secrets.randbelow(MAX_SEED) + 1
    await state.update_data(**changes)
    await show_options(query, state, model, lang)
    await answer(query, t("studio.draft.on" if on else "studio.draft.off", lang))


@router.callback_query(Flow.options, GenCb.filter(F.action == GenAction.THINKING))
async def on_thinking(query: CallbackQuery, callback_data: GenCb, state: FSMContext, lang: str) -> None:
    found = await card_and_model(query, state, lang)
    if found is None:
        return
    data, model = found
    if callback_data.value not in model.caps.thinking_levels:
        await outdated(query, lang)
        return
    await state.update_data(params={**data["params"], "thinking_level": callback_data.value})
    await show_options(query, state, model, lang)
    await answer(query)


# --- under a result (botapp/handlers/generation/results.py routes the buttons): render in full, edit a video ---
async def render_full(
    query: CallbackQuery, state: FSMContext, user: UserContext, lang: str, request: GenRequest
) -> None:
    """🎬 Render in full: the full model's confirm card with the draft's prompt, inputs and seed."""
    draft = (request.params or {}).get("draft")
    model = None
    if isinstance(draft, dict) and request.status == GenRequest.Status.SUCCEEDED:
        model = await bridge.active_model(draft.get("full_model_id"))
    if model is None or not isinstance(query.message, Message):
        await answer(query, t("errors.draft_unavailable", lang), alert=True)
        return
    full_params = {k: v for k, v in (draft.get("full_params") or {}).items() if k not in SOURCE_KEYS}
    params = normalize_params(model.caps, full_params, kind=model.kind)
    if "seed" in full_params:
        params["seed"] = full_params["seed"]
    await answer(query)
    previous_card = (await state.get_data()).get("card_id")
    await state.set_data(
        {
            "kind": model.kind,
            "model_id": model.id,
            "params": params,
            "images": list(request.input_images or []) if model.caps.photo_limits(model.kind) else [],
            "prompt": request.prompt,
            "user_prompt": request.user_prompt or request.prompt,
            "negative_prompt": request.negative_prompt if model.caps.negative_prompt else "",
            "variants": 1,
            "card_id": previous_card,
        }
    )
    await show_confirm(query.message, state, user, model, lang)


async def edit_video(query: CallbackQuery, state: FSMContext, lang: str, request: GenRequest) -> None:
    """✏️ Edit this video: the user says what to change; the same model continues the clip's interaction
    (`params["edit_of"]`) with the clip's own options. Whose clip it is the service checks before a charge."""
    model = await bridge.active_model(request.ai_model_id)
    usable = request.kind == AIModel.Kind.VIDEO and request.status == GenRequest.Status.SUCCEEDED
    if model is None or not model.caps.edit or not usable or not isinstance(query.message, Message):
        await answer(query, t("errors.cannot_edit_video", lang), alert=True)
        return
    own = {k: v for k, v in (request.params or {}).items() if k not in SOURCE_KEYS}
    params = normalize_params(model.caps, {**own, "edit_of": request.pk}, kind=model.kind)
    await answer(query)
    previous_card = (await state.get_data()).get("card_id")
    await state.set_data(
        {"kind": model.kind, "model_id": model.id, "params": params, "images": [], "card_id": previous_card}
    )
    await show_prompt(query.message, state, model, lang)
