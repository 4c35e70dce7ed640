"""Profile (level, XP bar, statistics) and the history of generations with re-sending of results."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    Message,
)
from django.conf import settings

from botapp import bridge, keyboards
from botapp.bridge import UserContext
from botapp.callbacks import HistoryAction, HistoryCb, MenuAction, MenuCb
from botapp.engine.sending import kept_variants
from botapp.handlers.common import answer, esc, excerpt, fmt_date, show
from botapp.handlers.subscriptions import profile_section
from botapp.i18n import t
from botapp.keyboards import fmt_tokens
from botapp.models import GenRequest, Language

router = Router(name=__name__)
log = logging.getLogger(__name__)

STATUS_EMOJI = {
    GenRequest.Status.CREATED: "⏳",
    GenRequest.Status.QUEUED: "⏳",
    GenRequest.Status.RUNNING: "⚙️",
    GenRequest.Status.SUCCEEDED: "✅",
    GenRequest.Status.FAILED: "❌",
    GenRequest.Status.CANCELLED: "✖️",
}


@router.callback_query(MenuCb.filter(F.action == MenuAction.PROFILE))
async def on_profile(query: CallbackQuery, user: UserContext, lang: str) -> None:
    text, markup = await profile_screen(user, lang)
    await show(query, text, markup)
    await answer(query)


async def profile_screen(user: UserContext, lang: str) -> tuple[str, InlineKeyboardMarkup]:
    """The profile's text and keyboard (with the Star subscription's line and button, if any)."""
    view = await bridge.profile(user)
    progress, stats = view.progress, view.stats
    level_name = progress.name_en if lang == Language.EN else progress.name
    if progress.next_level_xp is None:
        xp_line = t("profile.xp_max", lang, xp=progress.xp)
    else:
        xp_line = t("profile.xp", lang, xp=progress.xp, next=progress.next_level_xp)
    text = t(
        "profile.text",
        lang,
        name=esc(user.display_name),
        id=user.telegram_id,
        level=progress.level,
        level_name=esc(level_name),
        bar=progress.bar(),
        xp_line=xp_line,
        total=stats.total,
        images=stats.images,
        videos=stats.videos,
        spent=fmt_tokens(stats.tokens_spent),
        referrals=stats.referrals,
        since=fmt_date(view.created_at, with_time=False),
    )
    if progress.topup_bonus_percent:
        text += "\n" + t("profile.perk", lang, percent=fmt_tokens(progress.topup_bonus_percent))
    markup = keyboards.profile_keyboard(lang)
    line, buttons = profile_section(await bridge.current_subscription(user.id), lang)
    if line:
        text += "\n" + line
    if buttons:  # a new markup: profile_keyboard's is cached
        markup = InlineKeyboardMarkup(inline_keyboard=[buttons, *markup.inline_keyboard])
    return text, markup


def _in_storage(result: dict[str, Any]) -> bool:
    """A stored result that can be uploaded again (not one that only went out as a download link)."""
    return bool(
        result.get("path")
        and result.get("sent_as") != "link"
        and int(result.get("size") or 0) <= settings.TELEGRAM_UPLOAD_LIMIT_BYTES
    )


def _available(result: dict[str, Any]) -> bool:
    """A result the user may get again: not a failed variant's record, nor one Telegram refused (its
    share was refunded)."""
    if not isinstance(result, dict) or result.get("failed") or result.get("refused"):
        return False
    return bool(result.get("tg_file_id") or _in_storage(result))


def _resendable(request: GenRequest) -> bool:
    return request.status == GenRequest.Status.SUCCEEDED and any(_available(r) for r in request.results)


def _variants_label(request: GenRequest, lang: str) -> str:
    """ " · 3 of 4 variants" for a request of several variants (what the user got of them)."""
    if request.variants <= 1:
        return ""
    if request.status == GenRequest.Status.SUCCEEDED:
        kept = kept_variants(request.results) or sum(1 for r in request.results if _available(r))
        return " · " + t("history.album.variants", lang, kept=kept, total=request.variants)
    return " · " + t("history.album.asked", lang, total=request.variants)


@router.callback_query(MenuCb.filter(F.action == MenuAction.HISTORY))
async def on_history(query: CallbackQuery, user: UserContext, lang: str) -> None:
    requests = await bridge.history(user.id)
    if not requests:
        await show(query, t("history.empty", lang), keyboards.history_keyboard(lang, []))
        await answer(query)
        return
    lines = []
    for request in requests:
        model = str(request.ai_model) if request.ai_model else request.model
        lines.append(
            t(
                "history.line",
                lang,
                id=request.pk,
                status=STATUS_EMOJI.get(request.status, "•"),
                status_text=t(f"history.status.{request.status}", lang),
                model=esc(model) + _variants_label(request, lang),
                date=fmt_date(request.created_at),
                prompt=esc(excerpt(request.prompt, 60)),
            )
        )
    text = t("history.title", lang) + "\n\n" + "\n\n".join(lines)
    resendable = [r.pk for r in requests if _resendable(r)]
    if resendable:
        text += "\n\n" + t("history.resend_hint", lang)
    await show(query, text, keyboards.history_keyboard(lang, resendable))
    await answer(query)


@router.callback_query(HistoryCb.filter(F.action == HistoryAction.RESEND))
async def on_resend(query: CallbackQuery, callback_data: HistoryCb, user: UserContext, lang: str, bot: Bot) -> None:
    """Send a finished result again: by its file_id, or uploaded from storage when it has none (an
    upload whose answer was lost: the "your result #N is ready" notice leads here)."""
    request = await bridge.get_request(user.id, callback_data.request_id)
    if request is None or not _resendable(request):
        await answer(query, t("history.not_available", lang), alert=True)
        return
    await answer(query)
    options = await bridge.get_result_options(request)
    model = str(request.ai_model) if request.ai_model else request.model
    caption = t("history.caption", lang, id=request.pk, model=esc(model), prompt=esc(excerpt(request.prompt, 700)))
    if request.variants > 1:
        await resend_album(bot, user.telegram_id, request, lang, caption, options)
        return
    for index, result in enumerate(request.results):
        markup = keyboards.result_keyboard(
            request,
            lang,
            index=index,
            can_edit=options.can_edit,
            can_animate=options.can_animate,
            can_extend=options.can_extend,
            options=options,
        )
        if _available(result):
            await resend_one(bot, user.telegram_id, request, index, result, caption=caption, markup=markup)


async def resend_one(
    bot: Bot,
    chat_id: int,
    request: GenRequest,
    index: int,
    result: dict[str, Any],
    *,
    caption: str | None,
    markup: InlineKeyboardMarkup | None,
) -> str | None:
    """Send one result again: by its file_id, or uploaded from storage (its new file_id recorded).
    Returns the file_id it went with."""
    if result.get("tg_file_id"):
        await send_result_file(bot, chat_id, result, result["tg_file_id"], caption=caption, markup=markup)
        return str(result["tg_file_id"])
    data = await bridge.stored_result(result["path"])
    upload = BufferedInputFile(data, filename=result["path"].rsplit("/", 1)[-1])
    sent = await send_result_file(bot, chat_id, result, upload, caption=caption, markup=markup)
    media = sent.photo[-1] if sent.photo else (sent.video or sent.document)
    if media is None:
        return None
    method = "photo" if sent.photo else ("video" if sent.video else "document")
    await bridge.record_resent(request.pk, index, media.file_id, media.file_unique_id, method)
    result.update(tg_file_id=media.file_id, sent_as=method)
    return media.file_id


async def resend_album(
    bot: Bot, chat_id: int, request: GenRequest, lang: str, caption: str, options: bridge.ResultOptions
) -> None:
    """A request of several variants again: its variants as one album (or one photo), then the one
    message with the buttons per variant. A refused album goes item by item."""
    results = [dict(r) if isinstance(r, dict) else r for r in request.results]
    positions = [index for index, result in enumerate(results) if _available(result)]
    if len(positions) >= 2:
        try:
            await _send_album_again(bot, chat_id, request, results, positions, caption)
            caption = None
        except TelegramBadRequest as exc:
            log.info("re-sending the album of #%s failed (%s); one by one", request.pk, exc.message)
    if caption is not None:
        for n, index in enumerate(positions):
            try:
                await resend_one(
                    bot, chat_id, request, index, results[index], caption=caption if n == 0 else None, markup=None
                )
            except TelegramBadRequest as exc:
                log.info("re-sending variant %s of #%s failed: %s", index, request.pk, exc.message)
    with_file = [index for index in positions if results[index].get("tg_file_id")]
    model = str(request.ai_model) if request.ai_model else request.model
    text = t(
        "history.album.resent",
        lang,
        id=request.pk,
        model=esc(model),
        kept=len(positions),
        total=request.variants,
        prompt=esc(excerpt(request.prompt, 300)),
    )
    if with_file:
        text += "\n\n" + t("generation.variants.pick", lang)
    markup = keyboards.variants_keyboard(request, lang, positions=with_file, options=options)
    await bot.send_message(chat_id, text, reply_markup=markup)


async def _send_album_again(
    bot: Bot, chat_id: int, request: GenRequest, results: list[dict[str, Any]], positions: list[int], caption: str
) -> None:
    """sendMediaGroup of the variants: by file_id where Telegram has it as the album's kind, else
    uploaded from storage (and the new file_id recorded). Telegram does not mix documents and photos."""
    documents = any(results[i].get("sent_as") == "document" for i in positions)
    kind = "document" if documents else "photo"
    media: list[Any] = []
    uploaded: list[int] = []
    for n, index in enumerate(positions):
        result = results[index]
        file: str | BufferedInputFile
        if result.get("tg_file_id") and (result.get("sent_as") or "photo") == kind:
            file = result["tg_file_id"]
        else:
            data = await bridge.stored_result(result["path"])
            file = BufferedInputFile(data, filename=result["path"].rsplit("/", 1)[-1])
            uploaded.append(index)
        cls = InputMediaDocument if documents else InputMediaPhoto
        media.append(cls(media=file, caption=caption if n == 0 else None))
    sent = await bot.send_media_group(chat_id, media=media)
    for index, message in zip(positions, sent, strict=True):
        item = message.photo[-1] if message.photo else message.document
        if item is None or index not in uploaded:
            continue
        await bridge.record_resent(request.pk, index, item.file_id, item.file_unique_id, kind)  # if it had none
        results[index].setdefault("tg_file_id", item.file_id)


async def send_result_file(
    bot: Bot,
    chat_id: int,
    result: dict[str, Any],
    file: str | BufferedInputFile,
    *,
    caption: str | None,
    markup: InlineKeyboardMarkup | None,
) -> Message:
    """Send a result by its Telegram file_id or as an upload, with the method it was sent with
    (`sent_as`, else guessed from the kind); a refused photo or video falls back to a document."""
    sent_as = result.get("sent_as") or ("video" if result.get("kind") == "video" else "photo")
    try:
        if sent_as == "video":
            return await bot.send_video(chat_id, file, caption=caption, reply_markup=markup)
        if sent_as == "photo":
            return await bot.send_photo(chat_id, file, caption=caption, reply_markup=markup)
        return await bot.send_document(chat_id, file, caption=caption, reply_markup=markup)
    except TelegramBadRequest as exc:
        if sent_as == "document":
            raise
        log.info("re-send as %s failed (%s); sending as a document", sent_as, exc.message)
        return await bot.send_document(chat_id, file, caption=caption, reply_markup=markup)
