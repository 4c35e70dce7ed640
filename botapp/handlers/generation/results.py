"""The buttons under a result: regenerate, edit / animate / upscale this image, extend this video."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from botapp import bridge, keyboards
from botapp.bridge import UserContext
from botapp.callbacks import ResultAction, ResultCb
from botapp.capabilities import normalize_params
from botapp.handlers.common import answer, outdated
from botapp.handlers.generation.base import (
    initial_params,
    present,
    show_confirm,
    show_prompt,
    start_flow,
)
from botapp.handlers.generation.studio import edit_video, render_full
from botapp.handlers.generation.texts import (
    options_text,
    prompt_text,
)
from botapp.i18n import t
from botapp.models import AIModel, GenRequest
from botapp.states import GenerationFlow as Flow

router = Router(name=__name__)
log = logging.getLogger(__name__)


# --- the buttons under a result ----------------------------------------------------------------------------
@router.callback_query(ResultCb.filter())
async def on_result_action(
    query: CallbackQuery, callback_data: ResultCb, state: FSMContext, user: UserContext, lang: str
) -> None:
    request = await bridge.get_request(user.id, callback_data.request_id)
    if request is None or not isinstance(query.message, Message):
        await outdated(query, lang)
        return
    action = callback_data.action
    if action == ResultAction.REGENERATE:
        model = await bridge.active_model(request.ai_model_id)
        if model is None:
            await answer(query, t("errors.model_unavailable", lang), alert=True)
            await state.clear()
            await start_flow(query, state, user, lang, request.kind)
            return
        previous_card = (await state.get_data()).get("card_id")
        await state.set_data(
            {
                "kind": model.kind,
                "model_id": model.id,
                "params": dict(request.params),
                "images": list(request.input_images or []),
                "prompt": request.prompt,
                "variants": min(request.variants, model.caps.max_variants) if request.variants > 1 else 1,
                "card_id": previous_card,
            }
        )
        await answer(query)
        await show_confirm(query.message, state, user, model, lang)
        return
    if action == ResultAction.EXTEND:
        await extend_video(query, state, user, lang, request)
        return
    if action == ResultAction.RENDER_FULL:
        await render_full(query, state, user, lang, request)
        return
    if action == ResultAction.EDIT_VIDEO:
        await edit_video(query, state, lang, request)
        return
    results = request.results or []
    result = results[callback_data.index] if 0 <= callback_data.index < len(results) else None
    if request.kind != AIModel.Kind.IMAGE or result is None or not result.get("tg_file_id"):
        await answer(query, t("history.not_available", lang), alert=True)
        return
    image = {
        "file_id": result["tg_file_id"],
        "file_unique_id": result.get("tg_file_unique_id") or result["tg_file_id"],
        "mime_type": result.get("mime_type") or "image/png",
        "size": result.get("size"),
        "width": result.get("width"),
        "height": result.get("height"),
    }
    if action == ResultAction.UPSCALE:
        await upscale_image(query, state, user, lang, request, callback_data.index, image)
        return
    if action == ResultAction.EDIT:
        model = await bridge.get_editing_model(user.default_image_model_id)
    else:
        model = await bridge.get_animation_model(user.default_video_model_id)
    if model is None:
        await answer(query, t("gen.no_models", lang), alert=True)
        return
    await answer(query)
    previous_card = (await state.get_data()).get("card_id")
    data = {
        "kind": model.kind,
        "model_id": model.id,
        "params": initial_params(model, user),
        "images": [image],
        "card_id": previous_card,
    }
    await state.set_data(data)
    if action == ResultAction.EDIT:
        await state.set_state(Flow.prompt)
        text = t("gen.edit_intro", lang) + "\n\n" + prompt_text(model, data, lang)
        await present(query.message, state, text, keyboards.prompt_keyboard(lang, 1))
    else:
        await state.set_state(Flow.options)
        text = t("gen.animate_intro", lang) + "\n\n" + options_text(model, data, lang)
        await present(query.message, state, text, keyboards.options_keyboard(lang, model, data["params"], 1))


async def upscale_image(
    query: CallbackQuery,
    state: FSMContext,
    user: UserContext,
    lang: str,
    request: GenRequest,
    index: int,
    image: dict[str, Any],
) -> None:
    """🔍 Upscale N: the variant as the input photo of an image model with a larger top resolution,
    a ready prompt, at that resolution: straight to the normal confirm card."""
    target = await bridge.get_upscale_target(request, index)
    if target is None or not isinstance(query.message, Message):
        await answer(query, t("gen.upscale.unavailable", lang), alert=True)
        return
    model, resolution = target
    params = initial_params(model, user)
    ratio = (request.params or {}).get("aspect_ratio")
    if ratio in model.aspect_ratios:
        params["aspect_ratio"] = ratio
    params["resolution"] = resolution
    prompt = t("gen.upscale.prompt", lang)
    await answer(query)
    previous_card = (await state.get_data()).get("card_id")
    await state.set_data(
        {
            "kind": model.kind,
            "model_id": model.id,
            "params": params,
            "images": [{**image, "role": "image"}],
            "prompt": prompt,
            "user_prompt": prompt,
            "variants": 1,
            "card_id": previous_card,
        }
    )
    await show_confirm(query.message, state, user, model, lang)


async def extend_video(
    query: CallbackQuery, state: FSMContext, user: UserContext, lang: str, request: GenRequest
) -> None:
    """➕ Extend: the same model continues this video (`params["extend_from"]`, no photos); the user
    describes what happens next. Whose video it is, and that it was delivered, the service checks
    (`check_extendable`) before anything is charged."""
    model = await bridge.active_model(request.ai_model_id)
    usable = request.kind == AIModel.Kind.VIDEO and request.status == GenRequest.Status.SUCCEEDED
    if model is None or not model.caps.extension or not usable or not isinstance(query.message, Message):
        await answer(query, t("gen.extend.unavailable", lang), alert=True)
        return
    params = initial_params(model, user)
    ratio = (request.params or {}).get("aspect_ratio")
    if ratio in model.aspect_ratios:
        params["aspect_ratio"] = ratio
    params = normalize_params(model.caps, {**params, "extend_from": request.pk}, kind=model.kind)
    await answer(query)
    previous_card = (await state.get_data()).get("card_id")
    await state.set_data(
        {"kind": model.kind, "model_id": model.id, "params": params, "images": [], "card_id": previous_card}
    )
    await show_prompt(query.message, state, model, lang)
