"""The text of a payment line (date, method, amount, tokens, status and, for support, the payment's
code), shared by the bot's screens (balance, /paysupport) and the operators' copy of a support request.
Texts: `paylist.*` in botapp/locales/*/support_bot.toml."""

from __future__ import annotations

import html
from decimal import Decimal

from django.utils import timezone

from botapp.i18n import catalogue, normalize_language, t
from botapp.keyboards import fmt_tokens
from botapp.selectors.payments import PaymentLine

CURRENCY_SIGNS = {"XTR": "⭐", "RUB": "₽"}


def fmt_amount(amount: Decimal, currency: str) -> str:
    """400 XTR -> "400 ⭐", 199.00 RUB -> "199 ₽", anything else with its code."""
    return f"{fmt_tokens(amount)} {CURRENCY_SIGNS.get(currency, html.escape(currency, quote=False))}"


def _label(prefix: str, value: str, lang: str) -> str:
    key = f"{prefix}.{value}"
    return t(key, lang) if key in catalogue(normalize_language(lang)) else html.escape(value, quote=False)


def payment_line(line: PaymentLine, lang: str, *, with_code: bool = False) -> str:
    """One line (two with the code) in `lang`, Telegram HTML."""
    tokens = fmt_tokens(line.tokens)
    if line.bonus_tokens:
        tokens = t("paylist.tokens_bonus", lang, tokens=tokens, bonus=fmt_tokens(line.bonus_tokens))
    else:
        tokens = t("paylist.tokens", lang, tokens=tokens)
    text = t(
        "paylist.line",
        lang,
        date=timezone.localtime(line.at).strftime("%d.%m.%Y %H:%M"),
        method=_label("paylist.method", line.provider, lang),
        amount=fmt_amount(line.amount, line.currency),
        tokens=tokens,
        status=_label("paylist.status", line.status, lang),
    )
    if with_code:
        text += "\n" + t("paylist.code", lang, code=html.escape(line.code, quote=False))
    return text


def payment_lines(lines: tuple[PaymentLine, ...] | list[PaymentLine], lang: str, *, with_code: bool = False) -> str:
    return "\n".join(payment_line(line, lang, with_code=with_code) for line in lines)
