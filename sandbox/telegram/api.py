"""What the user side (``client.py``, ``webchat/``) needs from the emulator, as a Protocol.

The dependency is one-way: ``server.py`` implements :class:`EmulatorAPI` and imports the clients; the
clients only know this Protocol (and the shared result/timeout types below), never the server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .state import JSON, EmulatorState, Event, Invoice, PreCheckoutRecord

Predicate = Callable[[JSON], bool]
MESSAGE_EVENTS = ("bot_message", "bot_edit")


class WaitTimeout(AssertionError):
    """A wait helper timed out (an AssertionError so pytest reports it as a failed expectation)."""


@dataclass
class PaymentResult:
    """Outcome of a payment (:meth:`EmulatedUser.pay`, the web chat's Pay button)."""

    ok: bool
    pre_checkout_query_id: str
    currency: str
    total_amount: int
    invoice_payload: str
    error_message: str | None = None
    charge_id: str | None = None
    message: JSON | None = None
    update_id: int | None = None
    #: For a Star subscription charge: the emulator's handle of the subscription (see ``emu.subscription``).
    subscription_id: str | None = None


class EmulatorAPI(Protocol):
    """The emulator as its users see it: user-side actions, inspection and waiting."""

    state: EmulatorState
    max_upload_bytes: int
    pre_checkout_timeout: float

    # user-side actions
    def post_user_message(self, user_id: int, content: JSON, *, edit_of: int | None = None) -> tuple[JSON, int]: ...
    def post_callback_query(self, user_id: int, message_id: int | None, data: str | None) -> tuple[JSON, int]: ...
    def store_user_photo(self, data: bytes, width: int | None = None, height: int | None = None) -> list[JSON]: ...
    def store_user_file(
        self, kind: str, data: bytes, file_name: str | None = None, mime_type: str | None = None, **meta: Any
    ) -> JSON: ...
    def resolve_invoice(self, ref: Any, user_id: int) -> Invoice: ...
    def start_pre_checkout(self, user_id: int, invoice: Invoice, timeout: float | None = None) -> PreCheckoutRecord: ...
    def finish_payment(self, record: PreCheckoutRecord, charge_id: str | None = None) -> PaymentResult: ...
    def replay_payment(self, charge_id: str) -> tuple[JSON, int]: ...
    def refund_externally(self, charge_id: str) -> tuple[JSON, int]: ...
    def renew_subscription(self, ref: Any) -> PaymentResult: ...
    def cancel_subscription(self, ref: Any) -> int: ...
    def restore_subscription(self, ref: Any) -> int: ...
    def lapse_subscription(self, ref: Any) -> int: ...
    def subscription_will_renew(self, ref: Any) -> bool: ...
    def block_bot(self, chat_id: int, *, notify: bool = True) -> None: ...
    def unblock_bot(self, chat_id: int, *, notify: bool = True) -> None: ...

    # inspection
    def message(self, chat_id: int, message_id: int) -> JSON | None: ...
    def messages(self, chat_id: int, *, include_user: bool = False, include_deleted: bool = False) -> list[JSON]: ...
    def last_message(self, chat_id: int, *, include_user: bool = False) -> JSON | None: ...
    def reply_keyboard(self, chat_id: int) -> JSON | None: ...

    # waiting
    def mark(self) -> int: ...
    def guard_blocking(self) -> None: ...
    def wait_for_event(
        self,
        kinds: str | tuple[str, ...],
        chat_id: int | None = None,
        predicate: Predicate | None = None,
        *,
        since: int | None = None,
        timeout: float = 5.0,
    ) -> Event: ...
    async def await_event(
        self,
        kinds: str | tuple[str, ...],
        chat_id: int | None = None,
        predicate: Predicate | None = None,
        *,
        since: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> Event: ...
    def wait_for_message(
        self,
        chat_id: int,
        predicate: Predicate | None = None,
        timeout: float = 5.0,
        *,
        since: int | None = None,
        include_edits: bool = True,
    ) -> JSON: ...
    async def await_message(
        self,
        chat_id: int,
        predicate: Predicate | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        since: int | None = None,
        include_edits: bool = True,
    ) -> JSON: ...
