"""/balance and the balance screen: main and bonus tokens, the last operations of the ledger, and the
user's payments, 5 to a page with ◀ ▶ (BalancePageCb; the screen is edited in place)."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from botapp import bridge, keyboards
from botapp.bridge import LedgerLine, UserContext
from botapp.callbacks import BalancePageCb, MenuAction, MenuCb
from botapp.handlers.common import answer, esc, fmt_date, show
from botapp.i18n import t
from botapp.keyboards import fmt_tokens
from botapp.paylines import payment_lines

router = Router(name=__name__)

PAYMENTS_PER_PAGE = 5


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
    """The balance and the last operations (without the payment list: see `balance_screen`)."""
    view, lines = await bridge.balance_with_ledger(user.id)
    text = t(
        "balance.text", lang, total=fmt_tokens(view.total), main=fmt_tokens(view.balance), bonus=fmt_tokens(view.bonus)
    )
    if lines:
        text += "\n\n" + t("balance.recent", lang) + "\n" + "\n".join(_line(line, lang) for line in lines)
    else:
        text += "\n\n" + t("balance.no_operations", lang)
    return text


async def balance_screen(user: UserContext, lang: str, *, page: int = 1) -> tuple[str, InlineKeyboardMarkup]:
    """The balance screen's text (with page `page` of the payments) and keyboard (◀ ▶ when paged)."""
    text = await balance_text(user, lang)
    payments = await bridge.user_payments(user.id, page, PAYMENTS_PER_PAGE)
    if not payments.items:
        text += "\n\n" + t("paylist.empty", lang)
    else:
        header = (
            t("paylist.header_paged", lang, page=payments.page, pages=payments.pages)
            if payments.pages > 1
            else t("paylist.header", lang)
        )
        text += "\n\n" + header + "\n" + payment_lines(payments.items, lang)
    return text, keyboards.balance_keyboard(lang, page=payments.page, pages=payments.pages)


@router.message(Command("balance"))
async def cmd_balance(message: Message, user: UserContext, lang: str) -> None:
    """Works in the middle of a flow too: the flow's state is kept."""
    text, markup = await balance_screen(user, lang)
    await message.answer(text, reply_markup=markup)


async def show_balance(target: CallbackQuery | Message, user: UserContext, lang: str, *, page: int = 1) -> None:
    """The balance screen: in place of the pressed message (a callback), or as a new one (a message)."""
    text, markup = await balance_screen(user, lang, page=page)
    await show(target, text, markup)


@router.callback_query(MenuCb.filter(F.action == MenuAction.BALANCE))
async def on_balance(query: CallbackQuery, user: UserContext, lang: str) -> None:
    await show_balance(query, user, lang)
    await answer(query)


@router.callback_query(BalancePageCb.filter())
async def on_payments_page(query: CallbackQuery, callback_data: BalancePageCb, user: UserContext, lang: str) -> None:
    """◀ ▶ under the payment list: the same screen with another page, edited in place."""
    await show_balance(query, user, lang, page=callback_data.page)
    await answer(query)
