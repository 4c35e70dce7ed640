"""Payments: invoices (messages and links, Star subscription links) and pre-checkout answers.

Subscriptions (Bot API 8.0+): ``createInvoiceLink(subscription_period=2592000)``, Stars only, at most 10000
Stars a period. Telegram answers ``SUBSCRIPTION_PERIOD_INVALID`` for any other period and
``SUBSCRIPTION_AMOUNT_INVALID`` above the ceiling (both measured against Telegram by others; the emulator also
answers ``SUBSCRIPTION_PERIOD_INVALID`` for a non-XTR subscription, a case not checked against Telegram).
``sendInvoice`` shares the Bot API server's invoice parsing, so a ``subscription_period`` reaches Telegram, which
refuses to send a subscription invoice as a message: ``SUBSCRIPTION_EXPORT_MISSING`` (the MTProto error for
that case; links are the only way to sell a subscription).
"""

from __future__ import annotations

import re
import secrets
import time

from ..errors import bad_request
from ..ledger import SUBSCRIPTION_MAX_STARS, SUBSCRIPTION_PERIOD
from ..params import Params
from ..state import JSON, Invoice
from .base import QUERY_INVALID, MethodsBase


class PaymentsMixin(MethodsBase):
    """sendInvoice, createInvoiceLink, answerPreCheckoutQuery (Stars refunds and the ledger: stars.py)."""

    def build_invoice(self, p: Params) -> Invoice:
        """Validate invoice parameters (Telegram Stars rules for XTR)."""
        title = p.get_str("title", required=True) or ""
        description = p.get_str("description", required=True) or ""
        payload = p.get_str("payload", required=True) or ""
        currency = (p.get_str("currency", required=True) or "").upper()
        provider_token = p.get_str("provider_token") or ""
        prices = p.get_json("prices", required=True)
        if not 1 <= len(title) <= 32:
            raise bad_request("INVOICE_TITLE_INVALID")
        if not 1 <= len(description) <= 255:
            raise bad_request("INVOICE_DESCRIPTION_INVALID")
        if not 1 <= len(payload.encode("utf-8")) <= 128:
            raise bad_request("INVOICE_PAYLOAD_INVALID")
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise bad_request("CURRENCY_INVALID")
        if not isinstance(prices, list) or not prices:
            raise bad_request("CURRENCY_TOTAL_AMOUNT_INVALID")
        cleaned: list[JSON] = []
        for price in prices:
            if not isinstance(price, dict) or not price.get("label"):
                raise bad_request("can't parse LabeledPrice")
            amount = price.get("amount")
            try:
                amount_int = int(amount)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise bad_request('field "amount" must be of type Integer') from None
            if isinstance(amount, float) and amount != amount_int:
                raise bad_request('field "amount" must be of type Integer')
            cleaned.append({"label": str(price["label"]), "amount": amount_int})
        if currency == "XTR":
            if provider_token:
                raise bad_request(
                    "PAYMENT_PROVIDER_INVALID: provider_token must be empty for payments in Telegram Stars"
                )
            if len(cleaned) != 1:
                raise bad_request("STARS_INVOICE_INVALID: exactly one price must be specified for Telegram Stars")
        elif not provider_token:
            raise bad_request("PAYMENT_PROVIDER_INVALID")
        if sum(c["amount"] for c in cleaned) <= 0:
            raise bad_request("CURRENCY_TOTAL_AMOUNT_INVALID")
        period = p.get_int("subscription_period")
        if period:
            if period != SUBSCRIPTION_PERIOD or currency != "XTR":
                raise bad_request("SUBSCRIPTION_PERIOD_INVALID")
            if cleaned[0]["amount"] > SUBSCRIPTION_MAX_STARS:
                raise bad_request("SUBSCRIPTION_AMOUNT_INVALID")
        extra = {k: p.raw(k) for k in ("photo_url", "max_tip_amount", "need_name", "need_email") if p.has(k)}
        return Invoice(
            id=secrets.token_hex(8),
            title=title,
            description=description,
            payload=payload,
            currency=currency,
            prices=cleaned,
            provider_token=provider_token,
            start_parameter=p.get_str("start_parameter") or "",
            extra=extra,
            subscription_period=period or None,
        )

    async def m_sendInvoice(self, p: Params) -> JSON:
        chat = self.target_for(p)
        invoice = self.build_invoice(p)
        if invoice.subscription_period:
            raise bad_request("SUBSCRIPTION_EXPORT_MISSING")
        inline, _ = self.markup(p, inline_only=True)
        if inline and not inline["inline_keyboard"][0][0].get("pay"):
            raise bad_request("REPLY_MARKUP_BUY_EMPTY")
        content: JSON = {
            "invoice": {
                "title": invoice.title,
                "description": invoice.description,
                "start_parameter": invoice.start_parameter,
                "currency": invoice.currency,
                "total_amount": invoice.total_amount,
            }
        }
        with self.state.lock:
            sent = self.bot_send(chat, content, inline=inline, reply=self.reply_to(chat, p), p=p)
            invoice.chat_id, invoice.message_id = chat.id, sent["message_id"]
            self.state.invoices[invoice.id] = invoice
            self.state.invoice_by_message[(chat.id, sent["message_id"])] = invoice.id
        return sent

    async def m_createInvoiceLink(self, p: Params) -> str:
        invoice = self.build_invoice(p)
        invoice.link = "https://t.me/$" + secrets.token_urlsafe(18)
        with self.state.lock:
            self.state.invoices[invoice.id] = invoice
            self.state.invoice_by_link[invoice.link] = invoice.id
        return invoice.link

    async def m_answerPreCheckoutQuery(self, p: Params) -> bool:
        qid = p.get_str("pre_checkout_query_id", required=True) or ""
        ok = p.get_bool("ok")
        error_message = p.get_str("error_message")
        if not ok and not error_message:
            raise bad_request("ERROR_MESSAGE_EMPTY")
        with self.state.lock:
            record = self.state.pre_checkouts.get(qid)
            if record is None or record.answered or record.expired or time.time() > record.deadline:
                raise bad_request(QUERY_INVALID)
            record.answered, record.ok, record.error_message = True, ok, None if ok else error_message
            self.state.add_event(
                "pre_checkout_answer", record.chat_id, None, {"id": qid, "ok": ok, "error_message": error_message}
            )
        return True
