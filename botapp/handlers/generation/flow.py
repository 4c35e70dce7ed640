"""The steps of the flow: a model, its options, the photos step, the prompt, the confirmation, generate;
back, cancel and edit."""

from __future__ import annotations

import logging
from contextlib import suppress
from decimal import Decimal

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from botapp import bridge, keyboards
from botapp.bridge import UserContext
from botapp.callbacks import GenAction, GenCb, MenuAction, MenuCb, unpack_ratio
from botapp.capabilities import default_role, image_role, normalize_params
from botapp.handlers.common import answer, error_text, outdated, show
from botapp.handlers.generation.base import (
    card_and_model,
    card_query,
    chat_id_of,
    flow_data,
    initial_params,
    model_gone,
    photo_roles,
    references_of,
    show_confirm,
    show_options,
    show_prompt,
    start_flow,
)
from botapp.handlers.generation.control import confirm_key, queued_text
from botapp.handlers.generation.drafts import planned
from botapp.handlers.generation.prompting import final_of, improve_price_of
from botapp.handlers.generation.texts import images_of, photos_text
from botapp.i18n import t
from botapp.models import AIModel
from botapp.services.exceptions import DomainError, InsufficientFunds, ModelUnavailable, PriceChanged
from botapp.services.styles import StyleUnavailable
from botapp.states import GenerationFlow as Flow

router = Router(name=__name__)
log = logging.getLogger(__name__)


@router.callback_query(MenuCb.filter(F.action.in_({MenuAction.IMAGE, MenuAction.VIDEO})))
async def on_create(
    query: CallbackQuery, callback_data: MenuCb, state: FSMContext, user: UserContext, lang: str
) -> None:
    kind = AIModel.Kind.IMAGE if callback_data.action == MenuAction.IMAGE else AIModel.Kind.VIDEO
    await state.clear()
    await start_flow(query, state, user, lang, kind)
    await answer(query)


# --- the model, the options -----------------------------------------------------------------------------
@router.callback_query(Flow.model, GenCb.filter(F.action == GenAction.MODEL))
async def on_model(query: CallbackQuery, callback_data: GenCb, state: FSMContext, user: UserContext, lang: str) -> None:
    data = await card_query(query, state, lang)
    if data is None:
        return
    model = await bridge.active_model(int(callback_data.value) if callback_data.value.isdigit() else None)
    if model is None or model.kind != data.get("kind"):
        await answer(query, t("errors.model_unavailable", lang), alert=True)
        await start_flow(query, state, user, lang, data.get("kind", AIModel.Kind.IMAGE))
        return
    # What the previous model took and this one does not is dropped (photos of other roles, extra
    # variants, what to avoid): the options card then shows only what will be sent and charged.
    roles = photo_roles(model)
    images = [i for i in data.get("images", []) if image_role(model.kind, i) in roles]
    images = images[: max(model.caps.max_input_images, model.caps.max_reference_images)]
    await state.update_data(
        model_id=model.id,
        params=initial_params(model, user),
        images=images,
        variants=min(int(data.get("variants") or 1), model.caps.max_variants),
        negative_prompt=data.get("negative_prompt", "") if model.caps.negative_prompt else "",
    )
    await show_options(query, state, model, lang)
    await answer(query)


OPTION_ACTIONS = {GenAction.RATIO, GenAction.DURATION, GenAction.RESOLUTION, GenAction.VARIANTS, GenAction.AUDIO}


@router.callback_query(Flow.options, GenCb.filter(F.action.in_(OPTION_ACTIONS)))
async def on_option(query: CallbackQuery, callback_data: GenCb, state: FSMContext, lang: str) -> None:
    found = await card_and_model(query, state, lang)
    if found is None:
        return
    data, model = found
    caps = model.caps
    params = dict(data["params"])
    variants = int(data.get("variants") or 1)
    value = callback_data.value
    action = callback_data.action
    changed = None
    if action == GenAction.RATIO and unpack_ratio(value) in caps.aspect_ratios:
        params["aspect_ratio"] = unpack_ratio(value)
    elif action == GenAction.DURATION and value.isdigit() and int(value) in caps.durations:
        params["duration_seconds"], changed = int(value), "duration_seconds"
    elif action == GenAction.RESOLUTION and value in caps.resolutions:
        params["resolution"], changed = value, "resolution"
    elif action == GenAction.VARIANTS and value.isdigit() and 1 <= int(value) <= caps.max_variants:
        variants = int(value)
    elif action == GenAction.AUDIO and caps.audio:
        params["generate_audio"] = not params.get("generate_audio", True)
    else:
        await outdated(query, lang)
        return
    params = normalize_params(caps, params, kind=model.kind, changed=changed, references=references_of(model, data))
    await state.update_data(params=params, variants=variants)
    await show_options(query, state, model, lang)
    await answer(query)


@router.callback_query(Flow.options, GenCb.filter(F.action == GenAction.NEGATIVE))
async def on_negative(query: CallbackQuery, state: FSMContext, lang: str) -> None:
    """What the result should avoid: asks for the text (or clears it, when one is set)."""
    found = await card_and_model(query, state, lang)
    if found is None:
        return
    data, model = found
    if not model.caps.negative_prompt:
        await outdated(query, lang)
        return
    if data.get("negative_prompt"):
        await state.update_data(negative_prompt="")
        await show_options(query, state, model, lang)
        await answer(query, t("gen.negative_cleared", lang))
        return
    await state.set_state(Flow.negative)
    await show(query, t("gen.negative_ask", lang, limit=model.max_prompt_length), keyboards.flow_back_keyboard(lang))
    await answer(query)


@router.callback_query(Flow.options, GenCb.filter(F.action == GenAction.PHOTOS))
async def on_photos_step(query: CallbackQuery, callback_data: GenCb, state: FSMContext, lang: str) -> None:
    found = await card_and_model(query, state, lang)
    if found is None:
        return
    data, model = found
    role = callback_data.value or default_role(model.kind)
    if role not in photo_roles(model):
        await outdated(query, lang)
        return
    await state.update_data(photo_role=role)
    await state.set_state(Flow.photos)
    data = await state.get_data()
    count = len(images_of(data, role))
    await show(query, photos_text(model, data, lang), keyboards.photos_keyboard(lang, count))
    await answer(query)


@router.callback_query(StateFilter(Flow.options, Flow.photos), GenCb.filter(F.action == GenAction.NEXT))
async def on_next(query: CallbackQuery, state: FSMContext, user: UserContext, lang: str) -> None:
    found = await card_and_model(query, state, lang)
    if found is None:
        return
    data, model = found
    if data.get("prompt"):
        await show_confirm(query, state, user, model, lang)
    else:
        await show_prompt(query, state, model, lang)
    await answer(query)


# --- back, cancel, edit -----------------------------------------------------------------------------------
@router.callback_query(StateFilter(Flow), GenCb.filter(F.action == GenAction.BACK))
async def on_back(query: CallbackQuery, state: FSMContext, user: UserContext, lang: str) -> None:
    data = await card_query(query, state, lang)
    if data is None:
        return
    current = await state.get_state()
    if current == Flow.model.state:
        from botapp.handlers.menu import show_main_menu

        await state.clear()
        await show_main_menu(query, user, lang)
        await answer(query)
        return
    _, model = await flow_data(state)
    if model is None:
        await model_gone(query, state, lang)
        return
    if current == Flow.options.state:
        await start_flow(query, state, user, lang, model.kind)
        await state.update_data(images=data.get("images", []))
    elif current in (Flow.photos.state, Flow.prompt.state, Flow.negative.state):
        await show_options(query, state, model, lang)
    else:  # confirm -> the prompt step
        await show_prompt(query, state, model, lang)
    await answer(query)


@router.callback_query(GenCb.filter(F.action == GenAction.CANCEL))
async def on_cancel(query: CallbackQuery, state: FSMContext, user: UserContext, lang: str) -> None:
    data = await card_query(query, state, lang)
    if data is None:
        return
    from botapp.handlers.menu import show_main_menu

    await state.clear()
    await show_main_menu(query, user, lang, header=t("common.cancelled", lang))
    await answer(query)


@router.callback_query(Flow.confirm, GenCb.filter(F.action.in_({GenAction.EDIT_PROMPT, GenAction.OPTIONS})))
async def on_confirm_edit(query: CallbackQuery, callback_data: GenCb, state: FSMContext, lang: str) -> None:
    found = await card_and_model(query, state, lang)
    if found is None:
        return
    _, model = found
    if callback_data.action == GenAction.OPTIONS:
        await show_options(query, state, model, lang)
    else:
        await show_prompt(query, state, model, lang)
    await answer(query)


@router.callback_query(StateFilter(Flow.photos, Flow.prompt), GenCb.filter(F.action == GenAction.CLEAR_PHOTOS))
async def on_clear_photos(query: CallbackQuery, state: FSMContext, lang: str) -> None:
    found = await card_and_model(query, state, lang)
    if found is None:
        return
    data, model = found
    if await state.get_state() == Flow.photos.state:  # the photos of the step's role only
        role = data.get("photo_role") or default_role(model.kind)
        kept = [i for i in data.get("images", []) if i not in images_of(data, role)]
        await state.update_data(images=kept)
        data = await state.get_data()
        await show(query, photos_text(model, data, lang), keyboards.photos_keyboard(lang, 0))
    else:
        await state.update_data(images=[])
        await show_prompt(query, state, model, lang)
    await answer(query, t("gen.photos_cleared", lang))


@router.callback_query(GenCb.filter(F.action == GenAction.RESUME))
async def on_resume(query: CallbackQuery, state: FSMContext, user: UserContext, lang: str) -> None:
    """After a top-up: the confirmation card again, as a new message."""
    data, model = await flow_data(state)
    if await state.get_state() != Flow.confirm.state or model is None or not data.get("prompt"):
        await outdated(query, lang)
        return
    await answer(query)
    if query.message is not None:
        await show_confirm(query.message, state, user, model, lang)


# --- generate -----------------------------------------------------------------------------------------
@router.callback_query(Flow.confirm, GenCb.filter(F.action == GenAction.GENERATE))
async def on_generate(
    query: CallbackQuery, callback_data: GenCb, state: FSMContext, user: UserContext, lang: str, bot: Bot
) -> None:
    data = await card_query(query, state, lang)
    if data is None:
        return
    if not callback_data.value or callback_data.value != data.get("nonce"):
        await outdated(query, lang)
        return
    _, model = await flow_data(state)
    if model is None:
        await model_gone(query, state, lang)
        return
    await answer(query, t("gen.sending", lang))
    chat_id = chat_id_of(query)
    model, data = await planned(model, data)  # with ⚡ Draft on: the draft's model and options
    # The status message: the place in the queue, the wait, Refresh / Cancel (handlers/generation/control.py).
    estimate = await bridge.queue_estimate(model.id, model.kind)
    markup = keyboards.queue_keyboard(lang, callback_data.value)
    status = await bot.send_message(chat_id, queued_text(model.label, estimate, lang), reply_markup=markup)
    try:
        request = await bridge.create_generation(
            user_id=user.id,
            ai_model_id=model.id,
            prompt=final_of(data),  # with the style applied, as the card showed it
            params=data["params"],
            input_images=data.get("images", []),
            negative_prompt=data.get("negative_prompt", ""),
            variants=int(data.get("variants") or 1),
            user_prompt=data.get("prompt", ""),
            style_id=data.get("style_id"),
            chat_id=chat_id,
            status_message_id=status.message_id,
            idempotency_key=confirm_key(user.id, callback_data.value),
            expected_price=Decimal(data["price"]) if data.get("price") else None,
            improve_price=improve_price_of(data),
        )
    except InsufficientFunds as exc:
        suggested = await bridge.suggest_package(exc.shortfall)
        await status.edit_text(
            "⚠️ " + error_text(exc, lang), reply_markup=keyboards.topup_keyboard(lang, suggested=suggested)
        )
        return
    except PriceChanged as exc:  # the operator changed the price since the card was shown
        # Not a dead end: the warning in place of the status, and the card refreshed in place with the
        # current price and a fresh nonce, so that the next tap generates at the price it shows.
        await status.edit_text("⚠️ " + error_text(exc, lang))
        bridge.clear_caches()  # this process's catalogue still holds the old price
        _, current = await flow_data(state)
        if current is None:
            await model_gone(query, state, lang)
            return
        await show_confirm(query, state, user, current, lang)
        return
    except StyleUnavailable as exc:  # turned off while the user was choosing: back to the options
        await status.edit_text("⚠️ " + error_text(exc, lang))
        await state.update_data(style_id=None, style_label="")
        await show_options(query, state, model, lang)
        return
    except DomainError as exc:
        if isinstance(exc, ModelUnavailable):  # paused or deactivated: stop offering it now
            bridge.clear_caches()
        await status.edit_text("⚠️ " + error_text(exc, lang), reply_markup=keyboards.menu_only(lang))
        return
    except Exception:
        with suppress(TelegramAPIError):
            await status.edit_text(t("common.error", lang), reply_markup=keyboards.menu_only(lang))
        raise
    await state.clear()
    log.info("user %s requested generation #%s (%s)", user.telegram_id, request.pk, model.slug)
    if isinstance(query.message, Message):
        with suppress(TelegramBadRequest):
            await query.message.edit_reply_markup(reply_markup=keyboards.after_generate_keyboard(lang))
