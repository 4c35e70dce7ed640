"""Telegram Stars: the bot's ledger (getStarTransactions, getMyStarBalance), refunds and subscriptions.

Error texts are Telegram's where known: ``CHARGE_NOT_FOUND`` / ``CHARGE_ALREADY_REFUNDED`` for refunds;
``CHARGE_ID_INVALID`` / ``USER_ID_INVALID`` for editUserStarSubscription (the errors of the MTProto method
behind it, ``payments.botCancelStarsSubscription``). ``getStarTransactions`` clamps ``offset`` to >= 0 and
``limit`` to 1..100 instead of failing, as the Bot API server does (``get_integer_arg(..., 100, 1, 100)``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ..errors import bad_request
from ..ledger import StarTransaction
from ..params import Params
from ..state import JSON, EmulatorState, Payment, now
from .base import MethodsBase


def ledger_payment(state: EmulatorState, payment: Payment) -> StarTransaction | None:
    """Record an incoming Stars payment in the ledger (call with the lock held); non-XTR payments are not Stars."""
    if payment.currency != "XTR":
        return None
    period = None
    if payment.subscription_id is not None:
        period = state.subscriptions[payment.subscription_id].period
    entry = StarTransaction(
        id=payment.telegram_payment_charge_id,
        amount=payment.total_amount,
        date=payment.date,
        incoming=True,
        user=copy.deepcopy(state.users.get(payment.user_id, {"id": payment.user_id, "is_bot": False})),
        invoice_payload=payment.invoice_payload,
        subscription_period=period,
    )
    state.star_transactions.append(entry)
    return entry


def refund(state: EmulatorState, payment: Payment, *, by: str) -> StarTransaction:
    """Mark a Stars payment refunded and record the outgoing transaction (call with the lock held)."""
    payment.refunded = True
    entry = StarTransaction(
        id=payment.telegram_payment_charge_id,
        amount=payment.total_amount,
        date=now(),
        incoming=False,
        user=copy.deepcopy(state.users.get(payment.user_id, {"id": payment.user_id, "is_bot": False})),
        invoice_payload=payment.invoice_payload,
    )
    state.star_transactions.append(entry)
    state.add_event(
        "refund",
        payment.chat_id,
        None,
        {"telegram_payment_charge_id": payment.telegram_payment_charge_id, "user_id": payment.user_id, "by": by},
    )
    return entry


def star_balance(state: EmulatorState) -> int:
    """Stars in minus Stars out (call with the lock held)."""
    return sum(t.amount if t.incoming else -t.amount for t in state.star_transactions)


class StarsMixin(MethodsBase):
    """getStarTransactions, getMyStarBalance, refundStarPayment, editUserStarSubscription."""

    #: Whether the bot's own refundStarPayment also delivers a ``refunded_payment`` message (see the server).
    bot_refund_message: bool = False
    #: Posts the ``refunded_payment`` service message for a payment (wired by the server).
    post_refunded_message: Callable[[Payment], Any] | None = None

    async def m_getStarTransactions(self, p: Params) -> JSON:
        offset = max(0, p.get_int("offset") or 0)
        limit = min(100, max(1, p.get_int("limit", default=100) or 1))
        with self.state.lock:
            page = self.state.star_transactions[offset : offset + limit]
            return {"transactions": [t.to_json() for t in page]}

    async def m_getMyStarBalance(self, p: Params) -> JSON:
        with self.state.lock:
            return {"amount": star_balance(self.state)}

    async def m_refundStarPayment(self, p: Params) -> bool:
        user_id = p.get_int("user_id", required=True)
        charge_id = p.get_str("telegram_payment_charge_id", required=True) or ""
        with self.state.lock:
            payment = self.state.payments.get(charge_id)
            if payment is None or payment.user_id != user_id or payment.currency != "XTR":
                raise bad_request("CHARGE_NOT_FOUND")
            if payment.refunded:
                raise bad_request("CHARGE_ALREADY_REFUNDED")
            refund(self.state, payment, by="bot")
            notify = self.bot_refund_message
        if notify and self.post_refunded_message is not None:
            self.post_refunded_message(payment)
        return True

    async def m_editUserStarSubscription(self, p: Params) -> bool:
        user_id = p.get_int("user_id", required=True)
        charge_id = p.get_str("telegram_payment_charge_id", required=True) or ""
        if not p.has("is_canceled"):
            raise bad_request('parameter "is_canceled" is required')
        canceled = p.get_bool("is_canceled")
        with self.state.lock:
            if user_id not in self.state.users:
                raise bad_request("USER_ID_INVALID")
            sub_id = self.state.subscription_by_charge.get(charge_id)
            subscription = self.state.subscriptions.get(sub_id or "")
            if subscription is None or subscription.user_id != user_id:
                raise bad_request("CHARGE_ID_INVALID")
            subscription.canceled_by_bot = canceled
            self.state.add_event(
                "subscription_edit",
                subscription.chat_id,
                None,
                {"subscription_id": subscription.id, "is_canceled": canceled, "by": "bot"},
            )
        return True
