"""/balance and the balance screen: main and bonus tokens, the last operations of the ledger."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from botapp import bridge, keyboards
from botapp.bridge import LedgerLine, UserContext
from botapp.callbacks import MenuAction, MenuCb
from botapp.handlers.common import answer, esc, fmt_date, show
from botapp.i18n import t
from botapp.keyboards import fmt_tokens

router = Router(name=__name__)


def _line(line: LedgerLine, lang: str) -> str:
    sign = "+" if line.amount > 0 else "−"
    what = t(f"tx.{line.kind}", lang)
    if line.request_id:
        what = f"{what}: {esc(line.model_label)} #{line.request_id}"
    elif line.promocode:
        what = f"{what} {esc(line.promocode)}"
    return t(
        "balance.line", lang, sign=sign, amount=fmt_tokens(abs(line.amount)), what=what, date=fmt_date(line.created_at)
    )


async def balance_text(user: UserContext, lang: str) -> str:
    view, lines = await bridge.balance_with_ledger(user.id)
    text = t(
        "balance.text", lang, total=fmt_tokens(view.total), main=fmt_tokens(view.balance), bonus=fmt_tokens(view.bonus)
    )
    if lines:
        text += "\n\n" + t("balance.recent", lang) + "\n" + "\n".join(_line(line, lang) for line in lines)
    else:
        text += "\n\n" + t("balance.no_operations", lang)
    return text


@router.message(Command("balance"))
async def cmd_balance(message: Message, user: UserContext, lang: str) -> None:
    """Works in the middle of a flow too: the flow's state is kept."""
    await message.answer(await balance_text(user, lang), reply_markup=keyboards.balance_keyboard(lang))


async def show_balance(target: CallbackQuery | Message, user: UserContext, lang: str) -> None:
    """The balance screen: in place of the pressed message (a callback), or as a new one (a message)."""
    await show(target, await balance_text(user, lang), keyboards.balance_keyboard(lang))


@router.callback_query(MenuCb.filter(F.action == MenuAction.BALANCE))
async def on_balance(query: CallbackQuery, user: UserContext, lang: str) -> None:
    await show_balance(query, user, lang)
    await answer(query)
