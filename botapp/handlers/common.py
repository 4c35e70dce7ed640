"""Small helpers shared by the handlers: showing a screen (edit in place or send), answering
callbacks safely, escaping user input, formatting dates."""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import datetime
from decimal import Decimal

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, PreCheckoutQuery
from django.utils import timezone

from botapp.i18n import t
from botapp.keyboards import fmt_tokens
from botapp.services.exceptions import DomainError, InsufficientFunds

log = logging.getLogger(__name__)

NOT_MODIFIED = "message is not modified"


def esc(text: object) -> str:
    """User input inside our HTML messages."""
    return html.escape(str(text), quote=False)


def excerpt(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def fmt_date(value: datetime, *, with_time: bool = True) -> str:
    local = timezone.localtime(value)
    return local.strftime("%d.%m.%Y %H:%M" if with_time else "%d.%m.%Y")


async def answer(query: CallbackQuery, text: str | None = None, *, alert: bool = False) -> None:
    """Answer a callback query; an expired query (over 15 minutes old) is not an error for us."""
    with suppress(TelegramBadRequest):
        await query.answer(text, show_alert=alert)


async def outdated(query: CallbackQuery, lang: str) -> None:
    await answer(query, t("common.outdated", lang), alert=True)


async def show(
    target: CallbackQuery | Message,
    text: str,
    markup: InlineKeyboardMarkup | None = None,
) -> Message | None:
    """Show a screen: edit the callback's message in place, or send a new message.

    A message that cannot be edited (a photo, too old, deleted) gets a new message instead;
    pressing a button that leads to the same screen ("message is not modified") changes nothing.
    """
    if isinstance(target, CallbackQuery):
        message = target.message
        if isinstance(message, Message) and message.text is not None:
            try:
                edited = await message.edit_text(text, reply_markup=markup)
                return edited if isinstance(edited, Message) else message
            except TelegramBadRequest as exc:
                if NOT_MODIFIED in exc.message:
                    return message
                log.debug("cannot edit message %s: %s", message.message_id, exc.message)
        bot = target.bot
        if bot is None:
            return None
        chat_id = message.chat.id if message is not None else target.from_user.id
        return await bot.send_message(chat_id, text, reply_markup=markup)
    return await target.answer(text, reply_markup=markup)


async def retire_keyboard(bot: Bot, chat_id: int, message_id: int | None) -> None:
    """Remove the buttons of a card the flow has left behind (so an old card cannot be pressed)."""
    if not message_id:
        return
    with suppress(TelegramBadRequest):
        await bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id, reply_markup=None)


def error_text(exc: DomainError, lang: str) -> str:
    """The catalogue text of a domain error (errors.toml), with amounts formatted like everywhere."""
    params: dict[str, object] = {
        name: fmt_tokens(value) if isinstance(value, Decimal) else esc(value) for name, value in exc.params.items()
    }
    if isinstance(exc, InsufficientFunds):
        params.setdefault("shortfall", fmt_tokens(exc.shortfall))
    try:
        return t(f"errors.{exc.code}", lang, **params)
    except (KeyError, IndexError, ValueError):
        log.warning("catalogue text errors.%s does not fit the parameters %s", exc.code, sorted(params))
        return t("errors.error", lang)


async def answer_pre_checkout(
    query: PreCheckoutQuery, lang: str, validate: Callable[..., Awaitable[object]], *, what: str
) -> None:
    """Answer a pre-checkout query: ok when `validate` (a bridge check of the invoice) passes, else
    refused with the reason in the user's language (Telegram then charges nothing)."""
    try:
        await validate(
            invoice_payload=query.invoice_payload,
            telegram_id=query.from_user.id,
            total_amount=query.total_amount,
            currency=query.currency,
        )
    except DomainError as exc:
        log.info("%s refused for %s: %s", what, query.from_user.id, exc.message)
        await query.answer(ok=False, error_message=error_text(exc, lang))
        return
    await query.answer(ok=True)
