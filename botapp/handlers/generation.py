"""The generation flows (FSM): model -> options -> (photos) -> prompt -> confirmation -> generate,
and the buttons under a result (regenerate, edit this image, animate this image).

The flow keeps its data in the FSM storage (JSON: Redis-safe):
    kind, model_id, params {aspect_ratio, duration_seconds, resolution}, images [{file_id, ...}],
    prompt, card_id (the message whose buttons are live), nonce (of the confirmation card),
    notes (hints collected while an album arrives).
Only the current card's buttons act; a button of an older card gets "outdated". Generating
passes `idempotency_key=confirm:<user>:<nonce>`, so a second press never charges twice.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import secrets
from contextlib import suppress
from typing import Any

from aiogram import Bot, Dispatcher, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from django.conf import settings

from botapp import bridge, keyboards
from botapp.bridge import ModelInfo, UserContext
from botapp.callbacks import GenAction, GenCb, MenuAction, MenuCb, ResultAction, ResultCb, unpack_ratio
from botapp.handlers.common import answer, error_text, esc, excerpt, outdated, retire_keyboard, show
from botapp.i18n import t
from botapp.keyboards import fmt_tokens
from botapp.models import AIModel
from botapp.services.exceptions import DomainError, InsufficientFunds
from botapp.states import GenerationFlow as Flow

router = Router(name=__name__)
log = logging.getLogger(__name__)

ACCEPTED_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"})
ALBUM_WAIT = 0.7  # seconds to wait for the rest of an album before answering once
PROMPT_PREVIEW = 900  # characters of the prompt shown on the confirmation card
INPUT_STATES = (Flow.options, Flow.photos, Flow.prompt, Flow.confirm)
NOT_COMMAND = ~F.text.startswith("/")


def max_image_bytes() -> int:
    return int(getattr(settings, "MAX_INPUT_IMAGE_BYTES", 10 * 1024 * 1024))


# --- texts ----------------------------------------------------------------------------------------------
def _params_lines(model: ModelInfo, params: dict[str, Any], lang: str) -> list[str]:
    lines = []
    if params.get("aspect_ratio"):
        lines.append(t("gen.param.ratio", lang, value=params["aspect_ratio"]))
    if model.kind == AIModel.Kind.VIDEO:
        if params.get("duration_seconds"):
            lines.append(t("gen.param.duration", lang, value=params["duration_seconds"]))
        if params.get("resolution"):
            lines.append(t("gen.param.resolution", lang, value=params["resolution"]))
    return lines


def _photos_line(model: ModelInfo, images: list[dict], lang: str) -> str:
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
    parts += _params_lines(model, data["params"], lang)
    photos = _photos_line(model, data.get("images", []), lang)
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
    parts += _params_lines(model, data["params"], lang)
    if data.get("images"):
        key = "gen.param.start_frame_set" if model.kind == AIModel.Kind.VIDEO else "gen.param.photos_attached"
        parts.append(t(key, lang, n=len(data["images"])))
    parts.append(t("gen.confirm_prompt", lang, prompt=esc(excerpt(data["prompt"], PROMPT_PREVIEW))))
    parts.append("")
    parts.append(t("gen.confirm_price", lang, price=fmt_tokens(model.price)))
    if balance.total >= model.price:
        parts.append(
            t(
                "gen.confirm_balance",
                lang,
                balance=fmt_tokens(balance.total),
                after=fmt_tokens(balance.total - model.price),
            )
        )
    else:
        parts.append(
            t(
                "gen.confirm_short",
                lang,
                balance=fmt_tokens(balance.total),
                shortfall=fmt_tokens(model.price - balance.total),
            )
        )
    return "\n".join(parts)


# --- flow data ---------------------------------------------------------------------------------------
def initial_params(model: ModelInfo, user: UserContext) -> dict[str, Any]:
    """The model's defaults, then the user's preferred values where the model supports them."""
    params: dict[str, Any] = {
        k: v for k, v in model.default_params.items() if k in ("aspect_ratio", "duration_seconds", "resolution")
    }
    if user.aspect_ratio in model.aspect_ratios:
        params["aspect_ratio"] = user.aspect_ratio
    elif params.get("aspect_ratio") not in model.aspect_ratios and model.aspect_ratios:
        params["aspect_ratio"] = model.aspect_ratios[0]
    if model.kind == AIModel.Kind.VIDEO:
        if user.video_duration in model.durations:
            params["duration_seconds"] = user.video_duration
        elif params.get("duration_seconds") not in model.durations and model.durations:
            params["duration_seconds"] = model.durations[-1]
        if user.video_resolution in model.resolutions:
            params["resolution"] = user.video_resolution
        elif params.get("resolution") not in model.resolutions and model.resolutions:
            params["resolution"] = model.resolutions[0]
    return params


async def _flow(state: FSMContext) -> tuple[dict[str, Any], ModelInfo | None]:
    data = await state.get_data()
    model = await bridge.active_model(data.get("model_id")) if data.get("model_id") else None
    return data, model


async def _card_query(query: CallbackQuery, state: FSMContext, lang: str) -> dict[str, Any] | None:
    """The flow data when the pressed button is on the current card; otherwise "outdated"."""
    data = await state.get_data()
    current = await state.get_state()
    message_id = query.message.message_id if query.message else None
    if current is None or current not in Flow or data.get("card_id") != message_id:
        await outdated(query, lang)
        return None
    return data


async def _card_and_model(
    query: CallbackQuery, state: FSMContext, lang: str
) -> tuple[dict[str, Any], ModelInfo] | None:
    """The flow data and its model for a button on the current card; None when the card is outdated
    or the model was deactivated meanwhile (both already answered)."""
    data = await _card_query(query, state, lang)
    if data is None:
        return None
    _, model = await _flow(state)
    if model is None:
        await _model_gone(query, state, lang)
        return None
    return data, model


def _chat_id(query: CallbackQuery) -> int:
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
    data = await _card_query(query, state, lang)
    if data is None:
        return
    model = await bridge.active_model(int(callback_data.value) if callback_data.value.isdigit() else None)
    if model is None or model.kind != data.get("kind"):
        await answer(query, t("errors.model_unavailable", lang), alert=True)
        await start_flow(query, state, user, lang, data.get("kind", AIModel.Kind.IMAGE))
        return
    images = data.get("images", [])[: model.max_input_images]
    await state.update_data(model_id=model.id, params=initial_params(model, user), images=images)
    await _show_options(query, state, model, lang)
    await answer(query)


async def _show_options(query: CallbackQuery, state: FSMContext, model: ModelInfo, lang: str) -> None:
    data = await state.get_data()
    await state.set_state(Flow.options)
    markup = keyboards.options_keyboard(lang, model, data["params"], len(data.get("images", [])))
    await show(query, options_text(model, data, lang), markup)


@router.callback_query(
    Flow.options, GenCb.filter(F.action.in_({GenAction.RATIO, GenAction.DURATION, GenAction.RESOLUTION}))
)
async def on_option(query: CallbackQuery, callback_data: GenCb, state: FSMContext, lang: str) -> None:
    found = await _card_and_model(query, state, lang)
    if found is None:
        return
    data, model = found
    params = dict(data["params"])
    value = callback_data.value
    if callback_data.action == GenAction.RATIO and unpack_ratio(value) in model.aspect_ratios:
        params["aspect_ratio"] = unpack_ratio(value)
    elif callback_data.action == GenAction.DURATION and value.isdigit() and int(value) in model.durations:
        params["duration_seconds"] = int(value)
    elif callback_data.action == GenAction.RESOLUTION and value in model.resolutions:
        params["resolution"] = value
    else:
        await outdated(query, lang)
        return
    await state.update_data(params=params)
    await _show_options(query, state, model, lang)
    await answer(query)


@router.callback_query(Flow.options, GenCb.filter(F.action == GenAction.PHOTOS))
async def on_photos_step(query: CallbackQuery, state: FSMContext, lang: str) -> None:
    found = await _card_and_model(query, state, lang)
    if found is None:
        return
    data, model = found
    if not model.max_input_images:
        await outdated(query, lang)
        return
    await state.set_state(Flow.photos)
    await show(query, photos_text(model, data, lang), keyboards.photos_keyboard(lang, len(data.get("images", []))))
    await answer(query)


@router.callback_query(StateFilter(Flow.options, Flow.photos), GenCb.filter(F.action == GenAction.NEXT))
async def on_next(query: CallbackQuery, state: FSMContext, user: UserContext, lang: str) -> None:
    found = await _card_and_model(query, state, lang)
    if found is None:
        return
    data, model = found
    if data.get("prompt"):
        await _show_confirm(query, state, user, model, lang)
    else:
        await _show_prompt(query, state, model, lang)
    await answer(query)


async def _show_prompt(target: CallbackQuery | Message, state: FSMContext, model: ModelInfo, lang: str) -> None:
    data = await state.get_data()
    await state.set_state(Flow.prompt)
    markup = keyboards.prompt_keyboard(lang, len(data.get("images", [])) if model.kind == "image" else 0)
    await _present(target, state, prompt_text(model, data, lang), markup)


async def _show_confirm(
    target: CallbackQuery | Message, state: FSMContext, user: UserContext, model: ModelInfo, lang: str
) -> None:
    """The confirmation card with a fresh nonce (edited in place, or a new message after a message)."""
    data = await state.get_data()
    balance = await bridge.get_balance(user.id)
    nonce = secrets.token_urlsafe(8)
    await state.update_data(nonce=nonce)
    await state.set_state(Flow.confirm)
    text = confirm_text(model, data, balance, lang)
    if balance.total >= model.price:
        markup = keyboards.confirm_keyboard(lang, nonce=nonce, price=model.price)
    else:
        suggested = await bridge.suggest_package(model.price - balance.total)
        markup = keyboards.topup_keyboard(lang, suggested=suggested, resume=True)
    await _present(target, state, text, markup)


async def _present(target: CallbackQuery | Message, state: FSMContext, text: str, markup: InlineKeyboardMarkup) -> None:
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


async def _model_gone(query: CallbackQuery, state: FSMContext, lang: str) -> None:
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


# --- back, cancel, edit -----------------------------------------------------------------------------------
@router.callback_query(StateFilter(Flow), GenCb.filter(F.action == GenAction.BACK))
async def on_back(query: CallbackQuery, state: FSMContext, user: UserContext, lang: str) -> None:
    data = await _card_query(query, state, lang)
    if data is None:
        return
    current = await state.get_state()
    if current == Flow.model.state:
        from botapp.handlers.menu import show_main_menu

        await state.clear()
        await show_main_menu(query, user, lang)
        await answer(query)
        return
    _, model = await _flow(state)
    if model is None:
        await _model_gone(query, state, lang)
        return
    if current == Flow.options.state:
        await start_flow(query, state, user, lang, model.kind)
        await state.update_data(images=data.get("images", []))
    elif current in (Flow.photos.state, Flow.prompt.state):
        await _show_options(query, state, model, lang)
    else:  # confirm -> the prompt step
        await _show_prompt(query, state, model, lang)
    await answer(query)


@router.callback_query(GenCb.filter(F.action == GenAction.CANCEL))
async def on_cancel(query: CallbackQuery, state: FSMContext, user: UserContext, lang: str) -> None:
    data = await _card_query(query, state, lang)
    if data is None:
        return
    from botapp.handlers.menu import show_main_menu

    await state.clear()
    await show_main_menu(query, user, lang, header=t("common.cancelled", lang))
    await answer(query)


@router.callback_query(Flow.confirm, GenCb.filter(F.action.in_({GenAction.EDIT_PROMPT, GenAction.OPTIONS})))
async def on_confirm_edit(query: CallbackQuery, callback_data: GenCb, state: FSMContext, lang: str) -> None:
    found = await _card_and_model(query, state, lang)
    if found is None:
        return
    _, model = found
    if callback_data.action == GenAction.OPTIONS:
        await _show_options(query, state, model, lang)
    else:
        await _show_prompt(query, state, model, lang)
    await answer(query)


@router.callback_query(StateFilter(Flow.photos, Flow.prompt), GenCb.filter(F.action == GenAction.CLEAR_PHOTOS))
async def on_clear_photos(query: CallbackQuery, state: FSMContext, lang: str) -> None:
    found = await _card_and_model(query, state, lang)
    if found is None:
        return
    data, model = found
    await state.update_data(images=[])
    data = await state.get_data()
    if await state.get_state() == Flow.photos.state:
        await show(query, photos_text(model, data, lang), keyboards.photos_keyboard(lang, 0))
    else:
        await _show_prompt(query, state, model, lang)
    await answer(query, t("gen.photos_cleared", lang))


@router.callback_query(GenCb.filter(F.action == GenAction.RESUME))
async def on_resume(query: CallbackQuery, state: FSMContext, user: UserContext, lang: str) -> None:
    """After a top-up: the confirmation card again, as a new message."""
    data, model = await _flow(state)
    if await state.get_state() != Flow.confirm.state or model is None or not data.get("prompt"):
        await outdated(query, lang)
        return
    await answer(query)
    if query.message is not None:
        await _show_confirm(query.message, state, user, model, lang)


# --- generate -----------------------------------------------------------------------------------------
@router.callback_query(Flow.confirm, GenCb.filter(F.action == GenAction.GENERATE))
async def on_generate(
    query: CallbackQuery, callback_data: GenCb, state: FSMContext, user: UserContext, lang: str, bot: Bot
) -> None:
    data = await _card_query(query, state, lang)
    if data is None:
        return
    if not callback_data.value or callback_data.value != data.get("nonce"):
        await outdated(query, lang)
        return
    _, model = await _flow(state)
    if model is None:
        await _model_gone(query, state, lang)
        return
    await answer(query, t("gen.sending", lang))
    chat_id = _chat_id(query)
    status = await bot.send_message(chat_id, t("gen.queued", lang, label=esc(model.label)))
    try:
        request = await bridge.create_generation(
            user_id=user.id,
            ai_model_id=model.id,
            prompt=data["prompt"],
            params=data["params"],
            input_images=data.get("images", []),
            chat_id=chat_id,
            status_message_id=status.message_id,
            idempotency_key=f"confirm:{user.id}:{callback_data.value}",
        )
    except InsufficientFunds as exc:
        suggested = await bridge.suggest_package(exc.shortfall)
        await status.edit_text(
            "⚠️ " + error_text(exc, lang), reply_markup=keyboards.topup_keyboard(lang, suggested=suggested)
        )
        return
    except DomainError as exc:
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


# --- input: text, photos, image documents, anything else ---------------------------------------------------
def _validate_prompt(text: str, model: ModelInfo, lang: str) -> tuple[str | None, str | None]:
    prompt = text.strip()
    if not prompt:
        return None, t("errors.invalid_prompt", lang)
    if len(prompt) > model.max_prompt_length:
        return None, t("errors.prompt_too_long", lang, length=len(prompt), limit=model.max_prompt_length)
    return prompt, None


@router.message(StateFilter(*INPUT_STATES), F.text, NOT_COMMAND)
async def on_text(message: Message, state: FSMContext, user: UserContext, lang: str) -> None:
    data, model = await _flow(state)
    if model is None:
        await state.clear()
        await message.answer(t("errors.model_unavailable", lang), reply_markup=keyboards.main_menu(lang))
        return
    current = await state.get_state()
    if current == Flow.photos.state and not data.get("images"):
        await message.answer(t("gen.hint.photo_expected", lang), reply_markup=keyboards.photos_keyboard(lang, 0))
        return
    prompt, error = _validate_prompt(message.text or "", model, lang)
    if prompt is None:
        await message.answer("⚠️ " + (error or ""))
        return
    await state.update_data(prompt=prompt)
    await _show_confirm(message, state, user, model, lang)


def _image_from_message(message: Message, lang: str) -> tuple[dict[str, Any] | None, str | None]:
    """The input image of a photo or an image document, or the hint why it cannot be used."""
    limit = max_image_bytes()
    if message.photo:
        photo = message.photo[-1]  # the largest size
        if (photo.file_size or 0) > limit:
            return None, t("gen.hint.too_big", lang, size=limit // (1024 * 1024))
        return {
            "file_id": photo.file_id,
            "file_unique_id": photo.file_unique_id,
            "mime_type": "image/jpeg",
            "size": photo.file_size,
            "width": photo.width,
            "height": photo.height,
        }, None
    document = message.document
    if document is None:
        return None, t("gen.hint.not_an_image", lang)
    mime = document.mime_type or mimetypes.guess_type(document.file_name or "")[0] or ""
    if mime not in ACCEPTED_IMAGE_TYPES:
        return None, t("gen.hint.not_an_image", lang)
    if (document.file_size or 0) > limit:
        return None, t("gen.hint.too_big", lang, size=limit // (1024 * 1024))
    return {
        "file_id": document.file_id,
        "file_unique_id": document.file_unique_id,
        "mime_type": mime,
        "size": document.file_size,
        "width": None,
        "height": None,
    }, None


def _note(notes: list[list[str]], text: str) -> None:
    if [text] not in notes:
        notes.append([text])


@router.message(StateFilter(*INPUT_STATES), F.photo | F.document)
async def on_image(message: Message, state: FSMContext, user: UserContext, lang: str, dispatcher: Dispatcher) -> None:
    data, model = await _flow(state)
    if model is None:
        await state.clear()
        await message.answer(t("errors.model_unavailable", lang), reply_markup=keyboards.main_menu(lang))
        return
    notes: list[list[str]] = data.get("notes", [])
    images: list[dict[str, Any]] = list(data.get("images", []))
    if not model.max_input_images:
        _note(notes, t("gen.hint.photos_not_accepted", lang, label=esc(model.label)))
    else:
        image, error = _image_from_message(message, lang)
        if error:
            _note(notes, error)
        elif image is not None and all(i["file_unique_id"] != image["file_unique_id"] for i in images):
            if model.max_input_images == 1:
                images = [image]  # the starting frame: a new photo replaces the old one
            elif len(images) < model.max_input_images:
                images.append(image)
            else:
                _note(notes, t("errors.too_many_images", lang, limit=model.max_input_images))
    if message.caption and model.max_input_images:
        prompt, error = _validate_prompt(message.caption, model, lang)
        if prompt is not None:
            await state.update_data(prompt=prompt)
        else:
            _note(notes, error or "")
    await state.update_data(images=images, notes=notes)
    if message.media_group_id:
        _schedule_album_reply(message, state, user, lang, dispatcher)
    else:
        await _reply_after_images(message, state, user, lang)


async def _reply_after_images(message: Message, state: FSMContext, user: UserContext, lang: str) -> None:
    """One answer after a photo or a whole album: the hints collected, then the next step's card."""
    data, model = await _flow(state)
    if model is None or (await state.get_state()) not in Flow:
        return
    notes = data.get("notes", [])
    await state.update_data(notes=[])
    for (note,) in notes:
        await message.answer("⚠️ " + note)
    images = data.get("images", [])
    current = await state.get_state()
    if data.get("prompt") and (images or current == Flow.confirm.state):
        await _show_confirm(message, state, user, model, lang)
    elif current == Flow.photos.state and model.kind == AIModel.Kind.IMAGE and len(images) < model.max_input_images:
        text = t("gen.photos_added", lang, n=len(images), limit=model.max_input_images)
        await _present(message, state, text, keyboards.photos_keyboard(lang, len(images)))
    elif images or not notes:
        await _show_prompt(message, state, model, lang)


_album_tasks: dict[tuple[int, str], asyncio.Task[None]] = {}


def _schedule_album_reply(
    message: Message, state: FSMContext, user: UserContext, lang: str, dispatcher: Dispatcher
) -> None:
    """Albums arrive as one update per photo: answer once, shortly after the last one."""
    key = (message.chat.id, message.media_group_id or "")
    previous = _album_tasks.pop(key, None)
    if previous is not None:
        previous.cancel()

    async def reply_later() -> None:
        await asyncio.sleep(ALBUM_WAIT)
        async with dispatcher.fsm.events_isolation.lock(state.key):
            if _album_tasks.get(key) is not asyncio.current_task():
                return
            _album_tasks.pop(key, None)
            try:
                await _reply_after_images(message, state, user, lang)
            except TelegramAPIError as exc:
                log.info("album reply to %s failed: %s", message.chat.id, exc)
            except Exception:
                log.exception("album reply to %s failed", message.chat.id)

    _album_tasks[key] = asyncio.create_task(reply_later())


async def drain_album_replies(grace: float) -> None:
    """At shutdown: let the pending album answers go out."""
    pending = [task for task in _album_tasks.values() if not task.done()]
    if pending:
        await asyncio.wait(pending, timeout=grace)


@router.message(Flow.model, NOT_COMMAND)
async def on_input_while_choosing(message: Message, lang: str) -> None:
    await message.answer(t("gen.hint.choose_model", lang))


@router.message(StateFilter(*INPUT_STATES), NOT_COMMAND)
async def on_unsupported(message: Message, state: FSMContext, lang: str) -> None:
    """Stickers, voice, video, locations...: say what this step expects."""
    _, model = await _flow(state)
    current = await state.get_state()
    if current == Flow.photos.state:
        hint = t("gen.hint.photo_expected", lang)
    elif model is not None and model.max_input_images:
        hint = t("gen.hint.text_or_photo", lang)
    else:
        hint = t("gen.hint.text_expected", lang)
    await message.answer(t("gen.hint.unsupported", lang) + " " + hint)


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
        await _show_confirm(query.message, state, user, model, lang)
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
        await _present(query.message, state, text, keyboards.prompt_keyboard(lang, 1))
    else:
        await state.set_state(Flow.options)
        text = t("gen.animate_intro", lang) + "\n\n" + options_text(model, data, lang)
        await _present(query.message, state, text, keyboards.options_keyboard(lang, model, data["params"], 1))
