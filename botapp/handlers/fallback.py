"""The last router: unknown commands, input nobody expected, outdated or malformed buttons, the
user blocking the bot, and the error handler (log with context, a short apology, never a traceback)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from contextlib import suppress

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError, TelegramRetryAfter
from aiogram.filters import KICKED, ChatMemberUpdatedFilter, StateFilter
from aiogram.types import CallbackQuery, ChatMemberUpdated, ErrorEvent, Message, User

from botapp import bridge, keyboards
from botapp.handlers.common import outdated
from botapp.i18n import DEFAULT_LANGUAGE, t

router = Router(name=__name__)
log = logging.getLogger(__name__)


@router.message(F.text.startswith("/"))
async def unknown_command(message: Message, lang: str) -> None:
    await message.answer(t("common.unknown_command", lang), reply_markup=keyboards.menu_only(lang))


_answered_albums: OrderedDict[tuple[int, str], None] = OrderedDict()  # the last albums hinted at, per chat


@router.message(StateFilter(None), F.photo | F.document)
async def unexpected_file(message: Message, lang: str) -> None:
    """A photo outside a flow: one hint, also for a whole album (its later parts are not answered)."""
    if message.media_group_id:
        album = (message.chat.id, message.media_group_id)
        if album in _answered_albums:
            return
        _answered_albums[album] = None
        if len(_answered_albums) > 1000:
            _answered_albums.popitem(last=False)
    await message.answer(t("common.photo_without_flow", lang), reply_markup=keyboards.main_menu(lang))


@router.message(StateFilter(None))
async def unexpected_message(message: Message, lang: str) -> None:
    await message.answer(t("common.use_menu", lang), reply_markup=keyboards.main_menu(lang))


@router.message()
async def unexpected_in_state(message: Message, lang: str) -> None:
    """A state no handler expects this in (e.g. a flow that changed shape after a deploy)."""
    await message.answer(t("common.use_menu_or_cancel", lang), reply_markup=keyboards.menu_only(lang))


@router.callback_query()
async def unknown_callback(query: CallbackQuery, lang: str) -> None:
    """Malformed data, a button of a removed screen, a forged press: nothing happens but a hint."""
    await outdated(query, lang)


@router.my_chat_member(ChatMemberUpdatedFilter(member_status_changed=KICKED))
async def on_blocked(event: ChatMemberUpdated) -> None:
    if event.chat.type == "private":
        await bridge.mark_bot_blocked(event.from_user.id)


@router.my_chat_member()
async def on_member_change(event: ChatMemberUpdated) -> None:
    """Unblocking (or being added to a group) needs nothing: the user middleware already noted them."""


@router.errors()
async def on_error(
    event: ErrorEvent, bot: Bot, lang: str = DEFAULT_LANGUAGE, event_from_user: User | None = None
) -> bool:
    exc = event.exception
    update = event.update
    user_id = event_from_user.id if event_from_user else None
    if isinstance(exc, TelegramForbiddenError):
        log.info("user %s blocked the bot (update %s)", user_id, update.update_id)
        if user_id is not None:
            await bridge.mark_bot_blocked(user_id)
        return True
    if isinstance(exc, TelegramRetryAfter):
        log.warning(
            "flood control for user %s: retry after %s s (update %s)", user_id, exc.retry_after, update.update_id
        )
        return True
    log.error(
        "error handling update %s (%s) from user %s: %s",
        update.update_id,
        update.event_type,
        user_id,
        exc,
        exc_info=exc,
    )
    apology = t("common.error", lang)
    with suppress(TelegramAPIError):
        if update.callback_query is not None:
            with suppress(TelegramAPIError):
                await update.callback_query.answer(apology, show_alert=True)
                return True
        if update.pre_checkout_query is not None:
            await update.pre_checkout_query.answer(ok=False, error_message=apology)
        elif update.message is not None:
            await update.message.answer(apology, reply_markup=keyboards.menu_only(lang))
        elif user_id is not None:
            await bot.send_message(user_id, apology, reply_markup=keyboards.menu_only(lang))
    return True
