"""Profile (level, XP bar, statistics) and the history of generations with re-sending of results."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, Message
from django.conf import settings

from botapp import bridge, keyboards
from botapp.bridge import UserContext
from botapp.callbacks import HistoryAction, HistoryCb, MenuAction, MenuCb
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


def _resendable(request: GenRequest) -> bool:
    return request.status == GenRequest.Status.SUCCEEDED and any(
        r.get("tg_file_id") or _in_storage(r) for r in request.results
    )


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
                model=esc(model),
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
    can_edit, can_animate = await bridge.get_result_actions(request)
    model = str(request.ai_model) if request.ai_model else request.model
    caption = t("history.caption", lang, id=request.pk, model=esc(model), prompt=esc(excerpt(request.prompt, 700)))
    for index, result in enumerate(request.results):
        markup = keyboards.result_keyboard(request, lang, index=index, can_edit=can_edit, can_animate=can_animate)
        if result.get("tg_file_id"):
            await send_result_file(bot, user.telegram_id, result, result["tg_file_id"], caption=caption, markup=markup)
        elif _in_storage(result):
            data = await bridge.stored_result(result["path"])
            upload = BufferedInputFile(data, filename=result["path"].rsplit("/", 1)[-1])
            sent = await send_result_file(bot, user.telegram_id, result, upload, caption=caption, markup=markup)
            media = sent.photo[-1] if sent.photo else (sent.video or sent.document)
            if media is not None:
                method = "photo" if sent.photo else ("video" if sent.video else "document")
                await bridge.record_resent(request.pk, index, media.file_id, media.file_unique_id, method)


async def send_result_file(
    bot: Bot,
    chat_id: int,
    result: dict[str, Any],
    file: str | BufferedInputFile,
    *,
    caption: str,
    markup: InlineKeyboardMarkup,
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
