"""Help with the prompt: 🎨 styles on the options screen and ✨ Improve on the prompt and confirmation cards.

Styles: the options screen's "🎨 Style: …" opens the active styles of the model's kind (🖼: the style's
example image as a new message); a choice stores `style_id` and goes back to the options. The
confirmation card shows the final prompt (prompting.prepare_confirm).

Improve: the description goes to a Gemini text model (services/prompt_help.py) in a thread, with a
timeout, while the card says "improving…"; the card then shows the rewrite with Accept / Edit / Keep
mine. The flow stays in the prompt step, so a text the user sends is their own description, as
always. Nothing is charged here: a rewrite the user generates with is charged at Generate, with its
price on the confirmation card. A refusal of the safety filter or a failure keeps the user's text.
"""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, CallbackQuery
from django.conf import settings

from botapp import bridge, keyboards
from botapp.bridge import ModelInfo, UserContext
from botapp.callbacks import GenAction, GenCb
from botapp.handlers.common import answer, error_text, esc, excerpt, outdated, show
from botapp.handlers.generation.base import (
    card_and_model,
    chat_id_of,
    present,
    show_confirm,
    show_options,
    show_prompt,
)
from botapp.handlers.generation.prompting import chosen_style, improve_offered, room_for
from botapp.i18n import t
from botapp.keyboards import fmt_tokens
from botapp.providers import ProviderError, RateLimited, SafetyBlocked, Transient
from botapp.services import prompt_help
from botapp.services.styles import StyleUnavailable
from botapp.states import GenerationFlow as Flow

router = Router(name=__name__)
log = logging.getLogger(__name__)

ORIGINAL_PREVIEW = 300  # characters of the user's own text under a rewrite
MAX_REWRITE = 2500  # characters of a rewrite at most (it is shown whole: a message holds 4096)


# --- styles ------------------------------------------------------------------------------------------------
@router.callback_query(Flow.options, GenCb.filter(F.action == GenAction.STYLE))
async def on_style(query: CallbackQuery, callback_data: GenCb, state: FSMContext, lang: str) -> None:
    found = await card_and_model(query, state, lang)
    if found is None:
        return
    data, model = found
    value = callback_data.value
    if value == "-":  # back to the options, nothing changed
        await show_options(query, state, model, lang)
        await answer(query)
        return
    if value == "0":
        await state.update_data(style_id=None, style_label="")
        await show_options(query, state, model, lang)
        await answer(query, t("style.cleared", lang))
        return
    if value == "":
        await show_styles(query, state, model, lang, data.get("style_id"))
        await answer(query)
        return
    style = await bridge.prompt_style(int(value), model.kind) if value.isdigit() else None
    if style is None:  # turned off since the list was shown
        await answer(query, error_text(StyleUnavailable(), lang), alert=True)
        await show_styles(query, state, model, lang, data.get("style_id"))
        return
    await state.update_data(style_id=style.id, style_label=style.label(lang))
    await show_options(query, state, model, lang)
    await answer(query, t("style.chosen", lang, name=style.label(lang)))


async def show_styles(
    query: CallbackQuery, state: FSMContext, model: ModelInfo, lang: str, current: int | None
) -> None:
    offered = await bridge.prompt_styles(model.kind)
    if not offered:  # all turned off meanwhile: the options without the button
        await show_options(query, state, model, lang)
        return
    await show(query, t("style.choose", lang), keyboards.styles_keyboard(lang, offered, current))


@router.callback_query(Flow.options, GenCb.filter(F.action == GenAction.STYLE_EXAMPLE))
async def on_style_example(query: CallbackQuery, callback_data: GenCb, state: FSMContext, lang: str, bot: Bot) -> None:
    """A style's example image, as a new message under the list (the list stays the current card)."""
    found = await card_and_model(query, state, lang)
    if found is None:
        return
    value = callback_data.value
    example = await bridge.style_example(style_id=int(value), lang=lang) if value.isdigit() else None
    if example is None:
        await outdated(query, lang)
        return
    await answer(query)
    caption = t("style.example", lang, label=esc(example.label))
    photo = example.file_id or BufferedInputFile(example.data or b"", filename="style-example.jpg")
    try:
        sent = await bot.send_photo(chat_id_of(query), photo, caption=caption)
    except TelegramAPIError as exc:
        log.warning("the example image of style %s could not be sent: %s", callback_data.value, exc)
        return
    if not example.file_id and sent.photo:
        await bridge.remember_style_example(key=example.key, file_id=sent.photo[-1].file_id)


# --- ✨ improve ------------------------------------------------------------------------------------------------
@router.callback_query(StateFilter(Flow.prompt, Flow.confirm), GenCb.filter(F.action == GenAction.IMPROVE))
async def on_improve(query: CallbackQuery, state: FSMContext, user: UserContext, lang: str) -> None:
    found = await card_and_model(query, state, lang)
    if found is None:
        return
    data, model = found
    text = (data.get("prompt") or "").strip()
    if not improve_offered(data):
        await answer(query, t("improve.off", lang), alert=True)
        return
    if not await bridge.reserve_improvement(user_id=user.id):
        limit, minutes = settings.PROMPT_IMPROVE_PER_HOUR, prompt_help.minutes_to_next_window()
        await answer(query, t("improve.limit", lang, limit=limit, minutes=minutes), alert=True)
        return
    await answer(query, t("improve.working", lang))
    await state.set_state(Flow.prompt)  # from here a text the user sends is their description
    await show(query, t("improve.working", lang))
    style = await chosen_style(data, model)
    timeout = float(settings.PROMPT_IMPROVE_TIMEOUT_SECONDS)
    try:
        improved = await asyncio.wait_for(
            asyncio.to_thread(
                prompt_help.improve,
                text=text,
                kind=model.kind,
                lang=lang,
                photos=len(data.get("images") or []),
                limit=min(MAX_REWRITE, room_for(style, model.max_prompt_length)),
            ),
            timeout=timeout + 2,  # the HTTP call itself times out after `timeout`
        )
    except SafetyBlocked as exc:
        log.info("user %s: the rewrite was blocked (%s)", user.telegram_id, exc.reason)
        await improve_failed(query, state, text, t("improve.blocked", lang), lang)
        return
    except (TimeoutError, Transient, RateLimited) as exc:
        log.warning("user %s: the rewrite did not come back: %r", user.telegram_id, exc)
        await improve_failed(query, state, text, t("improve.busy", lang), lang)
        return
    except ProviderError as exc:
        log.warning("user %s: the rewrite failed: %r", user.telegram_id, exc)
        await improve_failed(query, state, text, t("improve.failed", lang), lang)
        return
    await state.update_data(suggestion=improved.text, suggestion_from=text)
    parts = [t("improve.card", lang, text=esc(improved.text), original=esc(excerpt(text, ORIGINAL_PREVIEW)))]
    price = prompt_help.price()
    if price > 0:
        parts.append(t("improve.price", lang, price=fmt_tokens(price)))
    if improved.is_demo:
        parts.append(t("improve.demo", lang))
    await present(query, state, "\n\n".join(parts), keyboards.improve_keyboard(lang))


async def improve_failed(query: CallbackQuery, state: FSMContext, text: str, note: str, lang: str) -> None:
    """The card after a failed rewrite: why, the user's own text, try again / keep mine."""
    body = note + "\n\n" + t("gen.current_prompt", lang, prompt=esc(excerpt(text, ORIGINAL_PREVIEW)))
    await present(query, state, body, keyboards.improve_keyboard(lang, suggestion=False))


@router.callback_query(Flow.prompt, GenCb.filter(F.action == GenAction.IMPROVE_ACCEPT))
async def on_accept(query: CallbackQuery, state: FSMContext, user: UserContext, lang: str) -> None:
    found = await card_and_model(query, state, lang)
    if found is None:
        return
    data, model = found
    if not data.get("suggestion"):
        await outdated(query, lang)
        return
    await state.update_data(prompt=data["suggestion"])
    await show_confirm(query, state, user, model, lang)
    await answer(query, t("improve.accepted", lang))


@router.callback_query(Flow.prompt, GenCb.filter(F.action == GenAction.IMPROVE_KEEP))
async def on_keep(query: CallbackQuery, state: FSMContext, user: UserContext, lang: str) -> None:
    found = await card_and_model(query, state, lang)
    if found is None:
        return
    data, model = found
    if data.get("prompt"):
        await show_confirm(query, state, user, model, lang)
    else:
        await show_prompt(query, state, model, lang)
    await answer(query, t("improve.kept", lang))


@router.callback_query(Flow.prompt, GenCb.filter(F.action == GenAction.IMPROVE_EDIT))
async def on_edit(query: CallbackQuery, state: FSMContext, lang: str) -> None:
    """Send your own version: the rewrite to copy, the prompt step waiting for the text."""
    found = await card_and_model(query, state, lang)
    if found is None:
        return
    data, model = found
    if not data.get("suggestion"):
        await show_prompt(query, state, model, lang)
        await answer(query)
        return
    photos = len(data.get("images", [])) if model.kind == "image" else 0
    text = t("improve.edit_ask", lang, text=esc(data["suggestion"]))
    await present(query, state, text, keyboards.prompt_keyboard(lang, photos))
    await answer(query)
