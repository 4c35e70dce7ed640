"""The invite screen: the personal deep link, what a friend brings, and the referral statistics."""

from __future__ import annotations

from urllib.parse import quote

from aiogram import Bot, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from django.conf import settings

from botapp import bridge, keyboards
from botapp.bridge import UserContext
from botapp.callbacks import MenuAction, MenuCb
from botapp.handlers.common import answer, esc, show
from botapp.i18n import t
from botapp.keyboards import fmt_tokens

router = Router(name=__name__)


async def bot_username(bot: Bot) -> str:
    """BOT_USERNAME, else asked from Telegram once (aiogram caches getMe)."""
    configured = (getattr(settings, "BOT_USERNAME", "") or "").lstrip("@")
    return configured or ((await bot.me()).username or "")


async def invite_link(bot: Bot, user: UserContext) -> str:
    return f"https://t.me/{await bot_username(bot)}?start=ref_{user.referral_code}"


@router.callback_query(MenuCb.filter(F.action == MenuAction.INVITE))
async def on_invite(query: CallbackQuery, state: FSMContext, user: UserContext, lang: str, bot: Bot) -> None:
    await show_invite(query, state, user, lang, bot)
    await answer(query)


async def show_invite(
    target: CallbackQuery | Message, state: FSMContext, user: UserContext, lang: str, bot: Bot
) -> None:
    """The invite screen: in place of the pressed message (a callback), or as a new one (a message)."""
    await state.clear()
    link = await invite_link(bot, user)
    stats = await bridge.referral_stats(user.id)
    text = t(
        "referral.text",
        lang,
        link=esc(link),
        first_bonus=fmt_tokens(getattr(settings, "REFERRAL_FIRST_TOPUP_BONUS", 0)),
        percent=fmt_tokens(getattr(settings, "REFERRAL_PERCENT", 0)),
        min_tokens=fmt_tokens(settings.REFERRAL_FIRST_TOPUP_MIN_TOKENS),
        cap_note=t("referral.cap_note", lang, cap=fmt_tokens(settings.REFERRAL_DAILY_CAP))
        if settings.REFERRAL_DAILY_CAP > 0
        else "",
        invited=stats["invited"],
        paid=stats["paid"],
        earned=fmt_tokens(stats["earned"]),
    )
    share = f"https://t.me/share/url?url={quote(link, safe='')}&text={quote(t('referral.share_text', lang), safe='')}"
    await show(target, text, keyboards.invite_keyboard(lang, share))
