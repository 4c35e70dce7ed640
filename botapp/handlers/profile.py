"""Profile (level, XP bar, statistics) and the history of generations with re-sending of results."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup

from botapp import bridge, keyboards
from botapp.bridge import UserContext
from botapp.callbacks import HistoryAction, HistoryCb, MenuAction, MenuCb
from botapp.handlers.common import answer, esc, excerpt, fmt_date, show
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
    await show(query, text, keyboards.profile_keyboard(lang))
    await answer(query)


def _resendable(request: GenRequest) -> bool:
    return request.status == GenRequest.Status.SUCCEEDED and any(r.get("tg_file_id") for r in request.results)


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
    request = await bridge.get_request(user.id, callback_data.request_id)
    if request is None or not _resendable(request):
        await answer(query, t("history.not_available", lang), alert=True)
        return
    await answer(query)
    can_edit, can_animate = await bridge.get_result_actions(request)
    model = str(request.ai_model) if request.ai_model else request.model
    caption = t("history.caption", lang, id=request.pk, model=esc(model), prompt=esc(excerpt(request.prompt, 700)))
    for index, result in enumerate(request.results):
        if not result.get("tg_file_id"):
            continue
        markup = keyboards.result_keyboard(request, lang, index=index, can_edit=can_edit, can_animate=can_animate)
        await send_result_file(bot, user.telegram_id, result, caption=caption, markup=markup)


async def send_result_file(
    bot: Bot, chat_id: int, result: dict[str, Any], *, caption: str, markup: InlineKeyboardMarkup
) -> None:
    """Re-send a delivered result by its Telegram file_id, with the method it was sent with
    (`sent_as`, else guessed from the kind); a file_id of another type falls back to a document."""
    file_id = result["tg_file_id"]
    sent_as = result.get("sent_as") or ("video" if result.get("kind") == "video" else "photo")
    try:
        if sent_as == "video":
            await bot.send_video(chat_id, file_id, caption=caption, reply_markup=markup)
        elif sent_as == "photo":
            await bot.send_photo(chat_id, file_id, caption=caption, reply_markup=markup)
        else:
            await bot.send_document(chat_id, file_id, caption=caption, reply_markup=markup)
    except TelegramBadRequest as exc:
        if sent_as == "document":
            raise
        log.info("re-send as %s failed (%s); sending as a document", sent_as, exc.message)
        await bot.send_document(chat_id, file_id, caption=caption, reply_markup=markup)
