"""The generation flow's shared pieces: its data in the FSM storage, the current card, and the
screens the steps show (the model list, the options, the prompt, the confirmation)."""

from __future__ import annotations

import secrets
from typing import Any

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from botapp import bridge, keyboards
from botapp.bridge import ModelInfo, UserContext
from botapp.capabilities import OPTION_KEYS, REFERENCE, normalize_params
from botapp.handlers.common import answer, error_text, outdated, retire_keyboard, show
from botapp.handlers.generation.drafts import draft_lines, draft_model_for, planned
from botapp.handlers.generation.prompting import final_of, improve_fee, improve_offered, prepare_confirm, refresh_style
from botapp.handlers.generation.texts import (
    confirm_text,
    flow_price,
    images_of,
    models_text,
    options_text,
    prompt_text,
)
from botapp.i18n import t
from botapp.models import AIModel
from botapp.services.styles import StyledPromptTooLong
from botapp.states import GenerationFlow as Flow

ACCEPTED_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"})
ALBUM_WAIT = 0.7  # seconds to wait for the rest of an album before answering once
INPUT_STATES = (Flow.options, Flow.photos, Flow.prompt, Flow.negative, Flow.confirm)
NOT_COMMAND = ~F.text.startswith("/")


# --- flow data ---------------------------------------------------------------------------------------
def initial_params(model: ModelInfo, user: UserContext) -> dict[str, Any]:
    """The model's defaults, then the user's preferred values where the model supports them, made
    to fit together (see botapp.capabilities.normalize_params)."""
    params: dict[str, Any] = {k: v for k, v in model.default_params.items() if k in OPTION_KEYS}
    if user.aspect_ratio in model.aspect_ratios:
        params["aspect_ratio"] = user.aspect_ratio
    if model.kind == AIModel.Kind.VIDEO:
        if user.video_duration in model.durations:
            params["duration_seconds"] = user.video_duration
        elif params.get("duration_seconds") not in model.durations and model.durations:
            params["duration_seconds"] = model.durations[-1]
        if user.video_resolution in model.resolutions:
            params["resolution"] = user.video_resolution
    return normalize_params(model.caps, params, kind=model.kind)


def photo_roles(model: ModelInfo) -> tuple[str, ...]:
    """The kinds of photo the model takes (botapp.capabilities.ROLES), in the screen's order."""
    return tuple(model.caps.photo_limits(model.kind))


def references_of(model: ModelInfo, data: dict[str, Any]) -> int:
    return len(images_of(data, REFERENCE)) if model.kind == AIModel.Kind.VIDEO else 0


async def flow_data(state: FSMContext) -> tuple[dict[str, Any], ModelInfo | None]:
    data = await state.get_data()
    model = await bridge.active_model(data.get("model_id")) if data.get("model_id") else None
    return data, model


async def card_query(query: CallbackQuery, state: FSMContext, lang: str) -> dict[str, Any] | None:
    """The flow data when the pressed button is on the current card; otherwise "outdated"."""
    data = await state.get_data()
    current = await state.get_state()
    message_id = query.message.message_id if query.message else None
    if current is None or current not in Flow or data.get("card_id") != message_id:
        await outdated(query, lang)
        return None
    return data


async def card_and_model(query: CallbackQuery, state: FSMContext, lang: str) -> tuple[dict[str, Any], ModelInfo] | None:
    """The flow data and its model for a button on the current card; None when the card is outdated
    or the model was deactivated meanwhile (both already answered)."""
    data = await card_query(query, state, lang)
    if data is None:
        return None
    _, model = await flow_data(state)
    if model is None:
        await model_gone(query, state, lang)
        return None
    return data, model


def chat_id_of(query: CallbackQuery) -> int:
    return query.message.chat.id if query.message else query.from_user.id


# --- entering the flow ----------------------------------------------------------------------------------
async def start_flow(
    target: CallbackQuery | Message, state: FSMContext, user: UserContext, lang: str, kind: str
) -> None:
    """The model list of `kind` (edits the menu message in place)."""
    models = await bridge.active_models(kind)
    if not models:
        await state.clear()
        await show(target, t("gen.no_models", lang), keyboards.menu_only(lang))
        return
    default_id = user.default_image_model_id if kind == AIModel.Kind.IMAGE else user.default_video_model_id
    models = sorted(models, key=lambda m: m.id != default_id)  # the user's default model first
    message = await show(target, models_text(kind, models, lang), keyboards.models_keyboard(lang, models, default_id))
    await state.set_state(Flow.model)
    await state.set_data({"kind": kind, "card_id": message.message_id if message else None, "images": []})


async def show_options(query: CallbackQuery, state: FSMContext, model: ModelInfo, lang: str) -> None:
    await refresh_style(state, model, lang)  # 🎨 Style: offered for this kind? the chosen one still active?
    data = await state.get_data()
    draft = await draft_model_for(model) if model.caps.draft else None  # ⚡ Draft offered while its model is on
    if (draft.id if draft else None) != data.get("draft_model_id"):
        await state.update_data(draft_model_id=draft.id if draft else None, draft=bool(draft and data.get("draft")))
        data = await state.get_data()
    await state.set_state(Flow.options)
    markup = keyboards.options_keyboard(lang, model, data["params"], len(data.get("images", [])), data=data)
    await show(query, options_text(model, data, lang), markup)


async def show_prompt(
    target: CallbackQuery | Message, state: FSMContext, model: ModelInfo, lang: str, *, note: str = ""
) -> None:
    data = await state.get_data()
    await state.set_state(Flow.prompt)
    photos = len(data.get("images", [])) if model.kind == "image" else 0
    markup = keyboards.prompt_keyboard(lang, photos, improve=improve_offered(data))
    await present(target, state, note + prompt_text(model, data, lang), markup)


async def show_confirm(
    target: CallbackQuery | Message, state: FSMContext, user: UserContext, model: ModelInfo, lang: str
) -> None:
    """The confirmation card with a fresh nonce (edited in place, or a new message after a message)."""
    problem = await prepare_confirm(state, model, lang)  # the style applied, a rewrite's price (prompting.py)
    if isinstance(problem, StyledPromptTooLong):  # shorten the description, or go back for another style
        await show_prompt(target, state, model, lang, note="⚠️ " + error_text(problem, lang) + "\n\n")
        return
    data = await state.get_data()
    run_model, run = await planned(model, data)  # with ⚡ Draft on: the draft's model and options
    problem = problem or await bridge.check_generation(
        ai_model_id=run_model.id,
        prompt=final_of(run),
        params=run.get("params") or {},
        input_images=run.get("images", []),
        variants=int(run.get("variants") or 1),
        user_id=user.id,
    )
    if problem is not None:  # e.g. a last frame without a first one: say so before anything is charged
        await state.set_state(Flow.options)
        text = "⚠️ " + error_text(problem, lang) + "\n\n" + options_text(model, data, lang)
        markup = keyboards.options_keyboard(lang, model, data["params"], len(data.get("images", [])), data=data)
        await present(target, state, text, markup)
        return
    balance = await bridge.get_balance(user.id)
    nonce = secrets.token_urlsafe(8)
    await state.set_state(Flow.confirm)
    notes = draft_lines(model, data, lang) if run.get("draft") else ()  # both prices: the draft, the full render
    text = confirm_text(run_model, run, balance, lang, notes=notes)
    price = flow_price(run_model, run)
    await state.update_data(nonce=nonce, price=str(price))
    total = price + improve_fee(data)  # a rewrite's price is a charge of its own, on its own line
    if balance.total >= total:
        markup = keyboards.confirm_keyboard(lang, nonce=nonce, price=total, improve=improve_offered(data))
    else:
        suggested = await bridge.suggest_package(total - balance.total)
        markup = keyboards.topup_keyboard(lang, suggested=suggested, resume=True)
    await present(target, state, text, markup)


async def present(target: CallbackQuery | Message, state: FSMContext, text: str, markup: InlineKeyboardMarkup) -> None:
    """Show the flow's card: edit it in place when one of its buttons was pressed, else (after a
    message) send a new card under it; the previous card loses its buttons first."""
    if isinstance(target, CallbackQuery):
        message = await show(target, text, markup)
        if message is not None:
            await state.update_data(card_id=message.message_id)
        return
    old = (await state.get_data()).get("card_id")
    if old and target.bot is not None:
        await retire_keyboard(target.bot, target.chat.id, old)
    sent = await target.answer(text, reply_markup=markup)
    await state.update_data(card_id=sent.message_id)


async def model_gone(query: CallbackQuery, state: FSMContext, lang: str) -> None:
    """The admin deactivated the model mid-flow: back to the model list of the same kind."""
    data = await state.get_data()
    await answer(query, t("errors.model_unavailable", lang), alert=True)
    models = await bridge.active_models(data.get("kind", AIModel.Kind.IMAGE))
    if not models:
        await state.clear()
        await show(query, t("gen.no_models", lang), keyboards.menu_only(lang))
        return
    await state.set_state(Flow.model)
    await show(
        query, models_text(data.get("kind", "image"), models, lang), keyboards.models_keyboard(lang, models, None)
    )
