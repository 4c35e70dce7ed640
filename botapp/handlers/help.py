"""/help and the help screen: what the bot does, the models and their prices, the commands."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from django.conf import settings

from botapp import bridge, keyboards
from botapp.callbacks import MenuAction, MenuCb
from botapp.handlers.common import answer, esc, show
from botapp.i18n import t
from botapp.keyboards import fmt_tokens
from botapp.models import AIModel

router = Router(name=__name__)


async def help_text(lang: str) -> str:
    models = await bridge.active_models(AIModel.Kind.IMAGE) + await bridge.active_models(AIModel.Kind.VIDEO)
    lines = [
        t("help.model_line", lang, label=esc(m.label), price=fmt_tokens(m.price), description=esc(m.describe(lang)))
        for m in models
    ]
    text = t("help.text", lang, models="\n".join(lines) or t("help.no_models", lang))
    text += "\n\n" + t("terms.help_line", lang)
    support = (getattr(settings, "SUPPORT_USERNAME", "") or "").lstrip("@")
    if support:
        text += "\n\n" + t("help.support", lang, username=esc(support))
    return text


@router.message(Command("help"))
async def cmd_help(message: Message, lang: str) -> None:
    """Works in the middle of a flow too: the flow's state is kept."""
    await message.answer(await help_text(lang), reply_markup=keyboards.back_to(lang))


@router.callback_query(MenuCb.filter(F.action == MenuAction.HELP))
async def on_help(query: CallbackQuery, lang: str) -> None:
    await show(query, await help_text(lang), keyboards.back_to(lang))
    await answer(query)
