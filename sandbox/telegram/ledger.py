"""The bot's Telegram Stars ledger and Star subscriptions (plain data; no imports from the rest of the emulator).

What Telegram does, and so what the emulator does (Bot API 10.x):

- every successful payment in ``XTR`` is an incoming :class:`StarTransaction` whose ``id`` is the payment's
  ``telegram_payment_charge_id``; its ``source`` is a ``TransactionPartnerUser`` with
  ``transaction_type="invoice_payment"``, the user, the ``invoice_payload`` and, for a subscription charge,
  ``subscription_period``;
- a refund (``refundStarPayment``, or Telegram support) is a separate, outgoing transaction with the *same* id,
  a ``receiver`` (the user gets the Stars back) and no ``source``; ``amount`` is positive in both;
- ``getStarTransactions`` lists them oldest first: the Bot API documents "chronological order", and the Bot API
  server asks TDLib for them with the ``ascending`` flag set for bots (``payments.getStarsTransactions``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

#: The only period Telegram accepts for Star subscriptions (30 days), and their price ceiling.
SUBSCRIPTION_PERIOD = 2_592_000
SUBSCRIPTION_MAX_STARS = 10_000


@dataclass
class StarTransaction:
    """One line of the bot's Stars ledger."""

    id: str
    amount: int
    date: int
    incoming: bool
    user: JSON
    invoice_payload: str | None = None
    subscription_period: int | None = None
    transaction_type: str = "invoice_payment"
    nanostar_amount: int = 0

    @property
    def is_refund(self) -> bool:
        """An outgoing invoice transaction is the refund of the incoming one with the same id."""
        return not self.incoming and self.transaction_type == "invoice_payment"

    def partner(self) -> JSON:
        """The TransactionPartnerUser."""
        out: JSON = {"type": "user", "transaction_type": self.transaction_type, "user": copy.deepcopy(self.user)}
        if self.invoice_payload is not None:
            out["invoice_payload"] = self.invoice_payload
        if self.subscription_period:
            out["subscription_period"] = self.subscription_period
        return out

    def to_json(self) -> JSON:
        """The StarTransaction object as getStarTransactions returns it (zero/absent optionals left out)."""
        out: JSON = {"id": self.id, "amount": self.amount, "date": self.date}
        if self.nanostar_amount:
            out["nanostar_amount"] = self.nanostar_amount
        out["source" if self.incoming else "receiver"] = self.partner()
        return out


@dataclass
class Subscription:
    """A user's Star subscription, started by paying a ``createInvoiceLink(subscription_period=...)`` link.

    ``id`` is the emulator's own handle (Telegram exposes none: the Bot API names a subscription by a charge id).
    A subscription renews (test hook ``renew_subscription``) unless the user or the bot cancelled it or a renewal
    failed (``lapse_subscription``).
    """

    id: str
    user_id: int
    chat_id: int
    invoice_id: str
    title: str
    payload: str
    amount: int
    period: int
    expiration_date: int
    charge_ids: list[str] = field(default_factory=list)
    canceled_by_user: bool = False
    canceled_by_bot: bool = False
    lapsed: bool = False

    @property
    def first_charge_id(self) -> str:
        """The telegram_payment_charge_id of the first payment (what Telegram's docs tell bots to keep)."""
        return self.charge_ids[0]

    @property
    def last_charge_id(self) -> str:
        """The newest charge."""
        return self.charge_ids[-1]

    @property
    def will_renew(self) -> bool:
        """Whether the next period would be charged."""
        return not (self.canceled_by_user or self.canceled_by_bot or self.lapsed)

    def state(self) -> str:
        """active / canceled / lapsed, for people reading test output."""
        if self.lapsed:
            return "lapsed"
        return "active" if self.will_renew else "canceled"
