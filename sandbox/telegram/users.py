"""The user side: emulated users, their messages, button presses, uploads and payments."""

from __future__ import annotations

import copy
import secrets
import time
from typing import TYPE_CHECKING, Any

from .api import PaymentResult
from .client import EmulatedUser
from .ledger import Subscription
from .media import probe_image
from .methods.stars import ledger_payment
from .state import JSON, CallbackQueryRecord, EmulatorState, Invoice, Payment, PreCheckoutRecord, now

if TYPE_CHECKING:
    from .methods import BotMethods


class UsersMixin:
    """What Telegram users do to the bot (part of :class:`BotAPIEmulator`); thread-safe, non-blocking."""

    state: EmulatorState
    methods: BotMethods
    pre_checkout_timeout: float
    _users: dict[int, EmulatedUser]

    def user(
        self,
        user_id: int | None = None,
        first_name: str = "Test",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "ru",
        is_premium: bool | None = None,
    ) -> EmulatedUser:
        """Create (or fetch) an emulated Telegram user with a private chat with the bot."""
        with self.state.lock:
            if user_id is not None and user_id in self._users:
                return self._users[user_id]
            uid = user_id if user_id is not None else self.state.new_user_id()
            info: JSON = {"id": uid, "is_bot": False, "first_name": first_name}
            if last_name:
                info["last_name"] = last_name
            if username:
                info["username"] = username
            if language_code:
                info["language_code"] = language_code
            if is_premium:
                info["is_premium"] = True
            self.state.users[uid] = info
            self.state.ensure_private_chat(info)
            client = EmulatedUser(self, info)
            self._users[uid] = client
            return client

    def post_user_message(self, user_id: int, content: JSON, *, edit_of: int | None = None) -> tuple[JSON, int]:
        """Append a user's message (or edit one) and queue the update; returns (Message, update_id)."""
        with self.state.lock:
            user = self.state.users[user_id]
            chat = self.state.chats[user_id]
            if edit_of is not None:
                stored = chat.messages.get(edit_of)
                if stored is None or stored.from_bot or stored.deleted:
                    raise ValueError(f"message {edit_of} is not an existing message of this user")
                stored.data.update(content)
                stored.data["edit_date"] = now()
                event = self.state.add_event("user_edit", chat.id, edit_of, stored.data)
                chat.last_action_seq = event.seq
                update = self.state.enqueue_update("edited_message", stored.data)
                return copy.deepcopy(stored.data), update.update_id
            msg = self.state.add_message(chat, user, content, from_bot=False)
            event = self.state.add_event("user_message", chat.id, msg.message_id, msg.data)
            chat.last_action_seq = event.seq
            update = self.state.enqueue_update("message", msg.data)
            return copy.deepcopy(msg.data), update.update_id

    def post_callback_query(self, user_id: int, message_id: int | None, data: str | None) -> tuple[JSON, int]:
        """Queue a callback_query from a user for a message; returns (CallbackQuery, update_id)."""
        with self.state.lock:
            user = self.state.users[user_id]
            chat = self.state.chats[user_id]
            qid = self.state.new_query_id()
            query: JSON = {"id": qid, "from": dict(user), "chat_instance": chat.chat_instance}
            if message_id is not None:
                stored = chat.messages.get(message_id)
                if stored is not None and not stored.deleted:
                    query["message"] = copy.deepcopy(stored.data)
                else:
                    query["message"] = {"chat": chat.to_dict(), "message_id": message_id, "date": 0}
            if data is not None:
                query["data"] = data
            self.state.callback_queries[qid] = CallbackQueryRecord(qid, user_id, chat.id, message_id, data)
            event = self.state.add_event("user_callback", chat.id, message_id, query)
            chat.last_action_seq = event.seq
            update = self.state.enqueue_update("callback_query", query)
            return query, update.update_id

    def store_user_photo(self, data: bytes, width: int | None = None, height: int | None = None) -> list[JSON]:
        """Store a photo a user sends; returns its PhotoSize list (smallest first)."""
        info = probe_image(data)
        w = width or (info.width if info else 1280)
        h = height or (info.height if info else 960)
        largest = self.methods.register_photo(data, w, h)
        return self.methods.media_content("photo", largest)["photo"]

    def store_user_file(
        self, kind: str, data: bytes, file_name: str | None = None, mime_type: str | None = None, **meta: Any
    ) -> JSON:
        """Store a non-photo file a user sends; returns the message field content (e.g. a Document)."""
        extra = meta.pop("extra", None)
        stored = self.methods.store_media(kind, data, file_name, mime_type, extra=extra, **meta)
        return self.methods.media_content(kind, stored)[kind]

    def resolve_invoice(self, ref: Any, user_id: int) -> Invoice:
        """Find an invoice from a message (dict/aiogram object), a message id or an invoice link."""
        with self.state.lock:
            if isinstance(ref, str):
                invoice_id = self.state.invoice_by_link.get(ref)
            else:
                chat_id, message_id = _message_address(ref, user_id)
                invoice_id = self.state.invoice_by_message.get((chat_id, message_id))
            if invoice_id is None:
                raise LookupError(f"no invoice found for {ref!r}")
            return self.state.invoices[invoice_id]

    def start_pre_checkout(self, user_id: int, invoice: Invoice, timeout: float | None = None) -> PreCheckoutRecord:
        """Queue a pre_checkout_query for an invoice; the bot must answer before the deadline."""
        timeout = self.pre_checkout_timeout if timeout is None else timeout
        with self.state.lock:
            user = self.state.users[user_id]
            chat = self.state.chats[user_id]
            qid = self.state.new_query_id()
            record = PreCheckoutRecord(qid, user_id, chat.id, invoice, deadline=time.time() + timeout)
            self.state.pre_checkouts[qid] = record
            query = {
                "id": qid,
                "from": dict(user),
                "currency": invoice.currency,
                "total_amount": invoice.total_amount,
                "invoice_payload": invoice.payload,
            }
            event = self.state.add_event("user_pre_checkout", chat.id, invoice.message_id, query)
            chat.last_action_seq = event.seq
            self.state.enqueue_update("pre_checkout_query", query)
            return record

    def finish_payment(self, record: PreCheckoutRecord, charge_id: str | None = None) -> PaymentResult:
        """Complete a payment after the pre-checkout answer (or report the refusal/timeout)."""
        with self.state.lock:
            invoice = record.invoice
            base = {
                "pre_checkout_query_id": record.id,
                "currency": invoice.currency,
                "total_amount": invoice.total_amount,
                "invoice_payload": invoice.payload,
            }
            if not record.answered:
                record.expired = True  # a late answer gets "query is too old"
                return PaymentResult(ok=False, error_message="timeout: pre_checkout_query was not answered", **base)
            if not record.ok:
                return PaymentResult(ok=False, error_message=record.error_message, **base)
            payment = self.state.payments.get(charge_id or "")
            if payment is None:
                payment = new_payment(self.state, record.user_id, record.chat_id, invoice, charge_id)
                if invoice.subscription_period:
                    start_subscription(self.state, payment, invoice)
                ledger_payment(self.state, payment)
            message, update_id = self._post_payment_message(payment)
            return PaymentResult(
                ok=True,
                charge_id=payment.telegram_payment_charge_id,
                message=message,
                update_id=update_id,
                subscription_id=payment.subscription_id,
                **base,
            )

    def _post_payment_message(self, payment: Payment) -> tuple[JSON, int]:
        successful = payment.successful_payment()
        message, update_id = self.post_user_message(payment.user_id, {"successful_payment": successful})
        with self.state.lock:
            payment.message_ids.append(message["message_id"])
            self.state.add_event("payment", payment.chat_id, message["message_id"], successful)
        return message, update_id

    def replay_payment(self, charge_id: str) -> tuple[JSON, int]:
        """Send the same successful_payment again in a new message/update (to test idempotent crediting)."""
        with self.state.lock:
            payment = self.state.payments[charge_id]
        return self._post_payment_message(payment)


def new_payment(
    state: EmulatorState, user_id: int, chat_id: int, invoice: Invoice, charge_id: str | None = None
) -> Payment:
    """A new charge for an invoice (call with the lock held); Stars charge ids look like Telegram's ``stx...``."""
    is_stars = invoice.currency == "XTR"
    charge = charge_id or (("stx" if is_stars else "") + secrets.token_urlsafe(24))
    payment = Payment(
        telegram_payment_charge_id=charge,
        provider_payment_charge_id=("" if is_stars else "prov_") + secrets.token_hex(10),
        user_id=user_id,
        chat_id=chat_id,
        currency=invoice.currency,
        total_amount=invoice.total_amount,
        invoice_payload=invoice.payload,
        date=now(),
    )
    state.payments[charge] = payment
    return payment


def start_subscription(state: EmulatorState, payment: Payment, invoice: Invoice) -> Subscription:
    """Turn the first charge of a subscription link into a Subscription (call with the lock held)."""
    period = int(invoice.subscription_period or 0)
    subscription = Subscription(
        id="sub_" + secrets.token_hex(8),
        user_id=payment.user_id,
        chat_id=payment.chat_id,
        invoice_id=invoice.id,
        title=invoice.title,
        payload=invoice.payload,
        amount=invoice.total_amount,
        period=period,
        expiration_date=payment.date + period,
        charge_ids=[payment.telegram_payment_charge_id],
    )
    state.subscriptions[subscription.id] = subscription
    state.subscription_by_charge[payment.telegram_payment_charge_id] = subscription.id
    payment.subscription_id = subscription.id
    payment.is_first_recurring = True
    payment.subscription_expiration_date = subscription.expiration_date
    return subscription


def _message_address(ref: Any, default_chat: int) -> tuple[int, int]:
    if isinstance(ref, int):
        return default_chat, ref
    if isinstance(ref, dict):
        return int(ref["chat"]["id"]), int(ref["message_id"])
    chat = getattr(ref, "chat", None)
    return int(getattr(chat, "id", default_chat)), int(ref.message_id)
