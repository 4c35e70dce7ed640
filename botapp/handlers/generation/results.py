"""The buttons under a result: regenerate, edit this image, animate this image."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from botapp import bridge, keyboards
from botapp.bridge import UserContext
from botapp.callbacks import ResultAction, ResultCb
from botapp.handlers.common import answer, outdated
from botapp.handlers.generation.base import (
    initial_params,
    present,
    show_confirm,
    start_flow,
)
from botapp.handlers.generation.texts import (
    options_text,
    prompt_text,
)
from botapp.i18n import t
from botapp.models import AIModel
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
                "card_id": previous_card,
            }
        )
        await answer(query)
        await show_confirm(query.message, state, user, model, lang)
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
