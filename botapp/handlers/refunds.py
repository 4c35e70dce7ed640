"""A Telegram Stars payment refunded outside our admin (Telegram's support, a chargeback; or Telegram
announcing our own refund): a message with `refunded_payment`.

The bridge hands it to botapp.services.refunds.record_external_refund: what the payment credited is
taken back once per charge id (what is left; a shortfall is recorded as a loss), the user is told in
their language, and the operators are alerted; an unknown charge is logged and alerted, nothing else.
The message itself gets no reply. If recording fails, it is logged: the daily Stars reconciliation
(botapp.services.reconcile) finds the refund on Telegram's side and records it then.
"""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.types import Message

from botapp import bridge

router = Router(name=__name__)
log = logging.getLogger(__name__)


@router.message(F.refunded_payment)
async def on_refunded_payment(message: Message) -> None:
    refunded = message.refunded_payment
    assert refunded is not None  # the filter guarantees it
    telegram_id = message.from_user.id if message.from_user else message.chat.id
    try:
        outcome = await bridge.record_external_refund(
            charge_id=refunded.telegram_payment_charge_id,
            telegram_id=telegram_id,
            total_amount=refunded.total_amount,
            currency=refunded.currency,
            invoice_payload=refunded.invoice_payload,
        )
    except Exception:
        log.exception(
            "refunded_payment not recorded (the reconciliation will): charge=%s user=%s",
            refunded.telegram_payment_charge_id,
            telegram_id,
        )
        return
    log.info(
        "refunded_payment charge=%s user=%s: %s (payment #%s)",
        refunded.telegram_payment_charge_id,
        telegram_id,
        outcome.status,
        outcome.payment_id,
    )
