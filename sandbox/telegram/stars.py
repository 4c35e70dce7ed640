"""What Telegram does to Stars payments outside the bot: support refunds and the life of Star subscriptions.

Test-side hooks of :class:`BotAPIEmulator` (thread-safe, non-blocking). A subscription is named by ``ref``:
the emulator's subscription id (``PaymentResult.subscription_id``), any of its charge ids, a
``PaymentResult``, or a ``successful_payment`` message (dict or aiogram ``Message``).

- ``refund_externally(charge_id)``: Telegram (support, a chargeback) refunds a Stars payment: the payment is
  refunded, the ledger gets the outgoing transaction, and the bot receives a message with ``refunded_payment``.
- ``renew_subscription(ref)``: the next period is charged: a NEW ``telegram_payment_charge_id``, a
  ``successful_payment`` with ``is_recurring`` (``is_first_recurring`` absent), the same payload, and
  ``subscription_expiration_date`` one period after the previous one. No pre-checkout query: Telegram charges
  renewals by itself. A cancelled or lapsed subscription is not charged (``PaymentResult.ok`` is False).
- ``cancel_subscription(ref)`` / ``restore_subscription(ref)``: the user cancels / re-enables it in Telegram;
  the bot gets a ``subscription`` update (``BotSubscriptionUpdated``, state ``canceled`` / ``active``).
- ``lapse_subscription(ref)``: the renewal payment fails (e.g. the user has too few Stars): a ``subscription``
  update with state ``failed``, and no more renewals.
- ``subscription_will_renew(ref)``: whether ``renew_subscription`` would charge.

The bot's own side is Bot API methods (``methods/stars.py``): ``editUserStarSubscription`` cancels or re-enables
(no update is sent for the bot's own change), ``refundStarPayment``, ``getStarTransactions``,
``getMyStarBalance``.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from .api import PaymentResult
from .ledger import Subscription
from .methods.stars import ledger_payment, refund
from .state import JSON, EmulatorState, Payment, now

if TYPE_CHECKING:
    from .state import Invoice


class StarsMixin:
    """Stars refunds and subscriptions as Telegram drives them (part of :class:`BotAPIEmulator`)."""

    state: EmulatorState

    if TYPE_CHECKING:

        def post_user_message(  # provided by UsersMixin
            self, user_id: int, content: JSON, *, edit_of: int | None = None
        ) -> tuple[JSON, int]: ...

    # ------------------------------------------------------------------ refunds

    def refund_externally(self, charge_id: str) -> tuple[JSON, int]:
        """Telegram refunds a Stars payment without the bot; returns the ``refunded_payment`` (message, update_id).

        Raises LookupError for an unknown charge, ValueError for a non-Stars or already refunded one.
        """
        with self.state.lock:
            payment = self.state.payments.get(charge_id)
            if payment is None:
                raise LookupError(f"no payment with charge id {charge_id!r}")
            if payment.currency != "XTR":
                raise ValueError("only payments in Telegram Stars are refunded by Telegram")
            if payment.refunded:
                raise ValueError(f"payment {charge_id!r} is already refunded")
            refund(self.state, payment, by="telegram")
        return self.post_refunded_message(payment)

    def post_refunded_message(self, payment: Payment) -> tuple[JSON, int]:
        """Deliver the ``refunded_payment`` service message of a payment to the bot (message, update_id)."""
        refunded = payment.refunded_payment()
        message, update_id = self.post_user_message(payment.user_id, {"refunded_payment": refunded})
        with self.state.lock:
            self.state.add_event("refunded_payment", payment.chat_id, message["message_id"], refunded)
        return message, update_id

    # ------------------------------------------------------------------ subscriptions

    def subscription(self, ref: Any) -> Subscription:
        """The subscription ``ref`` names (LookupError if none)."""
        with self.state.lock:
            for key in _ref_keys(ref):
                if key in self.state.subscriptions:
                    return self.state.subscriptions[key]
                sub_id = self.state.subscription_by_charge.get(key)
                if sub_id is not None:
                    return self.state.subscriptions[sub_id]
        raise LookupError(f"no Star subscription found for {ref!r}")

    def subscription_will_renew(self, ref: Any) -> bool:
        """Whether the next period would be charged (not cancelled by the user or the bot, not lapsed)."""
        return self.subscription(ref).will_renew

    def renew_subscription(self, ref: Any) -> PaymentResult:
        """Charge the next period (a new charge id and ``successful_payment``), unless cancelled or lapsed."""
        subscription = self.subscription(ref)
        with self.state.lock:
            invoice = self.state.invoices[subscription.invoice_id]
            base = {
                "pre_checkout_query_id": "",
                "currency": "XTR",
                "total_amount": subscription.amount,
                "invoice_payload": subscription.payload,
                "subscription_id": subscription.id,
            }
            if not subscription.will_renew:
                return PaymentResult(ok=False, error_message=f"subscription is {subscription.state()}", **base)
            payment = _renewal_charge(self.state, subscription, invoice)
            ledger_payment(self.state, payment)
        successful = payment.successful_payment()
        message, update_id = self.post_user_message(payment.user_id, {"successful_payment": successful})
        with self.state.lock:
            payment.message_ids.append(message["message_id"])
            self.state.add_event("payment", payment.chat_id, message["message_id"], successful)
        return PaymentResult(
            ok=True, charge_id=payment.telegram_payment_charge_id, message=message, update_id=update_id, **base
        )

    def cancel_subscription(self, ref: Any) -> int:
        """The user cancels the subscription in Telegram: a ``subscription`` update (state ``canceled``)."""
        subscription = self.subscription(ref)
        with self.state.lock:
            subscription.canceled_by_user = True
        return self._subscription_update(subscription, "canceled")

    def restore_subscription(self, ref: Any) -> int:
        """The user re-enables a subscription they cancelled: a ``subscription`` update (state ``active``).

        Raises ValueError when the bot cancelled it (the bot must allow it first with
        ``editUserStarSubscription(is_canceled=False)``) or when it lapsed.
        """
        subscription = self.subscription(ref)
        with self.state.lock:
            if subscription.canceled_by_bot:
                raise ValueError("the bot cancelled this subscription; the user cannot re-enable it")
            if subscription.lapsed:
                raise ValueError("this subscription lapsed; the user has to subscribe again")
            subscription.canceled_by_user = False
        return self._subscription_update(subscription, "active")

    def lapse_subscription(self, ref: Any) -> int:
        """The renewal payment fails: a ``subscription`` update (state ``failed``); no more renewals."""
        subscription = self.subscription(ref)
        with self.state.lock:
            subscription.lapsed = True
        return self._subscription_update(subscription, "failed")

    def _subscription_update(self, subscription: Subscription, state: str) -> int:
        with self.state.lock:
            user = self.state.users[subscription.user_id]
            payload = {"user": copy.deepcopy(user), "invoice_payload": subscription.payload, "state": state}
            event = self.state.add_event("subscription_update", subscription.chat_id, None, payload)
            chat = self.state.chats.get(subscription.chat_id)
            if chat is not None:
                chat.last_action_seq = event.seq
            return self.state.enqueue_update("subscription", payload).update_id


def _renewal_charge(state: EmulatorState, subscription: Subscription, invoice: Invoice) -> Payment:
    from .users import new_payment

    payment = new_payment(state, subscription.user_id, subscription.chat_id, invoice)
    subscription.expiration_date = max(subscription.expiration_date, now()) + subscription.period
    subscription.charge_ids.append(payment.telegram_payment_charge_id)
    state.subscription_by_charge[payment.telegram_payment_charge_id] = subscription.id
    payment.subscription_id = subscription.id
    payment.subscription_expiration_date = subscription.expiration_date
    return payment


def _ref_keys(ref: Any) -> list[str]:
    if isinstance(ref, str):
        return [ref]
    if isinstance(ref, PaymentResult):
        return [k for k in (ref.subscription_id, ref.charge_id) if k]
    if isinstance(ref, dict):
        paid = ref.get("successful_payment") or ref
        return [str(paid["telegram_payment_charge_id"])] if "telegram_payment_charge_id" in paid else []
    paid = getattr(ref, "successful_payment", None) or ref
    charge = getattr(paid, "telegram_payment_charge_id", None)
    return [str(charge)] if charge else []
