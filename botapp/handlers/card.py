"""The "Bank card" payment method: a YooKassa payment and a message with its URL button.

Registered before the Stars router (botapp/handlers/__init__.py), so a press of the card method lands
here. The tokens are credited by the YooKassa webhook (botapp/webhooks_yookassa.py), not by the bot.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup

from botapp import bridge
from botapp.bridge import UserContext
from botapp.callbacks import MenuAction, MenuCb, PayAction, PayCb, PayMethod
from botapp.handlers.common import answer, error_text
from botapp.i18n import t
from botapp.keyboards import fmt_tokens
from botapp.services import yookassa_api
from botapp.services.card import CardCheckout, CardUnavailable
from botapp.services.exceptions import DomainError

router = Router(name=__name__)
log = logging.getLogger(__name__)


def fmt_rub(amount: Decimal) -> str:
    """99.00 -> "99", 49.5 -> "49.50"."""
    value = Decimal(amount).quantize(Decimal("0.01"))
    return f"{value:.0f}" if value == value.to_integral_value() else f"{value:.2f}"


def checkout_text(checkout: CardCheckout, lang: str) -> str:
    amount = fmt_rub(checkout.amount)
    lines = [t("pay.card_checkout", lang, tokens=fmt_tokens(checkout.tokens), amount=amount)]
    if checkout.bonus_tokens:
        lines.append(t("pay.card_checkout_bonus", lang, bonus=fmt_tokens(checkout.bonus_tokens)))
    lines.append("\n" + t("pay.card_checkout_hint", lang))
    return "\n".join(lines)


def checkout_keyboard(checkout: CardCheckout, lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=t("pay.card_button", lang, amount=fmt_rub(checkout.amount)), url=checkout.confirmation_url
                )
            ],
            [InlineKeyboardButton(text=t("btn.back", lang), callback_data=MenuCb(action=MenuAction.TOPUP).pack())],
        ]
    )


@router.callback_query(PayCb.filter((F.action == PayAction.METHOD) & (F.method == PayMethod.CARD)))
async def on_card(query: CallbackQuery, callback_data: PayCb, user: UserContext, lang: str, bot: Bot) -> None:
    if not yookassa_api.configured():
        await answer(query, t("pay.card_unavailable", lang), alert=True)
        return
    chat_id = query.message.chat.id if query.message else user.telegram_id
    me = await bot.me()
    try:
        checkout = await bridge.start_card_payment(
            user.id, callback_data.package_id, lang=lang, bot_username=me.username or ""
        )
    except CardUnavailable as exc:  # YooKassa failed: said in a message (the query may have expired meanwhile)
        await bot.send_message(chat_id, error_text(exc, lang))
        await answer(query)
        return
    except DomainError as exc:
        await answer(query, error_text(exc, lang), alert=True)
        return
    await bot.send_message(chat_id, checkout_text(checkout, lang), reply_markup=checkout_keyboard(checkout, lang))
    await answer(query)
