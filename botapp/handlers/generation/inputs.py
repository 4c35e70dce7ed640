"""What the user sends during the flow: the description, photos and image documents (albums answered
once), anything else."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from typing import Any

from aiogram import Dispatcher, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import Message

from botapp import keyboards
from botapp.bridge import ModelInfo, UserContext
from botapp.capabilities import default_role, image_role
from botapp.handlers.common import esc
from botapp.handlers.generation.base import (
    ACCEPTED_IMAGE_TYPES,
    ALBUM_WAIT,
    INPUT_STATES,
    NOT_COMMAND,
    flow_data,
    photo_roles,
    present,
    show_confirm,
    show_prompt,
)
from botapp.handlers.generation.texts import images_of, max_image_bytes, options_text
from botapp.i18n import t
from botapp.states import GenerationFlow as Flow

router = Router(name=__name__)
log = logging.getLogger(__name__)


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
    data, model = await flow_data(state)
    if model is None:
        await state.clear()
        await message.answer(t("errors.model_unavailable", lang), reply_markup=keyboards.main_menu(lang))
        return
    current = await state.get_state()
    if current == Flow.photos.state and not data.get("images"):
        await message.answer(t("gen.hint.photo_expected", lang), reply_markup=keyboards.photos_keyboard(lang, 0))
        return
    if current == Flow.negative.state:  # what the result should avoid
        negative, error = _validate_prompt(message.text or "", model, lang)
        if negative is None:
            await message.answer("⚠️ " + (error or ""))
            return
        await state.update_data(negative_prompt=negative)
        await state.set_state(Flow.options)
        data = await state.get_data()
        markup = keyboards.options_keyboard(lang, model, data["params"], len(data.get("images", [])), data=data)
        await present(message, state, options_text(model, data, lang), markup)
        return
    prompt, error = _validate_prompt(message.text or "", model, lang)
    if prompt is None:
        await message.answer("⚠️ " + (error or ""))
        return
    await state.update_data(prompt=prompt)
    await show_confirm(message, state, user, model, lang)


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
    data, model = await flow_data(state)
    if model is None:
        await state.clear()
        await message.answer(t("errors.model_unavailable", lang), reply_markup=keyboards.main_menu(lang))
        return
    notes: list[list[str]] = data.get("notes", [])
    images: list[dict[str, Any]] = list(data.get("images", []))
    current = await state.get_state()
    roles = photo_roles(model)
    in_step = current == Flow.photos.state and data.get("photo_role") in roles
    # a photo sent outside the photos step: the kind's default role, or the model's only kind of photo
    fallback = default_role(model.kind) if default_role(model.kind) in roles else next(iter(roles), "")
    role = data.get("photo_role") if in_step else fallback
    if not roles or (data.get("params") or {}).get("extend_from"):
        _note(notes, t("gen.hint.photos_not_accepted", lang, label=esc(model.label)))
    else:
        image, error = _image_from_message(message, lang)
        if error:
            _note(notes, error)
        elif image is not None and all(i["file_unique_id"] != image["file_unique_id"] for i in images):
            image["role"] = role
            same = [i for i in images if image_role(model.kind, i) == role]
            if role in ("first", "last"):
                images = [i for i in images if i not in same] + [image]  # a new frame replaces the old one
            elif role == "reference" and len(same) >= model.caps.max_reference_images:
                _note(notes, t("errors.too_many_references", lang, limit=model.caps.max_reference_images))
            elif role == "image" and len(same) >= model.caps.max_input_images:
                _note(notes, t("errors.too_many_images", lang, limit=model.caps.max_input_images))
            else:
                images.append(image)
    if message.caption and roles:
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
    data, model = await flow_data(state)
    if model is None or (await state.get_state()) not in Flow:
        return
    notes = data.get("notes", [])
    await state.update_data(notes=[])
    for (note,) in notes:
        await message.answer("⚠️ " + note)
    images = data.get("images", [])
    current = await state.get_state()
    roles = photo_roles(model)
    role = data.get("photo_role") if current == Flow.photos.state else None
    limits = {"image": model.caps.max_input_images, "reference": model.caps.max_reference_images}
    if data.get("prompt") and (images or current == Flow.confirm.state) and current != Flow.photos.state:
        await show_confirm(message, state, user, model, lang)
    elif role in limits and len(images_of(data, role)) < limits[role]:
        n = len(images_of(data, role))
        text = t("gen.photos_added", lang, n=n, limit=limits[role])
        await present(message, state, text, keyboards.photos_keyboard(lang, n))
    elif current == Flow.photos.state and len(roles) > 1:  # a frame set: the options show what else fits
        await state.set_state(Flow.options)
        markup = keyboards.options_keyboard(lang, model, data["params"], len(images), data=data)
        await present(message, state, options_text(model, data, lang), markup)
    elif current == Flow.photos.state and data.get("prompt"):
        await show_confirm(message, state, user, model, lang)
    elif images or not notes:
        await show_prompt(message, state, model, lang)


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
    _, model = await flow_data(state)
    current = await state.get_state()
    if current == Flow.photos.state:
        hint = t("gen.hint.photo_expected", lang)
    elif model is not None and model.max_input_images:
        hint = t("gen.hint.text_or_photo", lang)
    else:
        hint = t("gen.hint.text_expected", lang)
    await message.answer(t("gen.hint.unsupported", lang) + " " + hint)
