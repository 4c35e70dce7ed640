"""Telegram Bot API emulator for tests and local runs (no Django imports here).

``BotAPIEmulator`` serves the Bot API over HTTP for real aiogram clients; ``EmulatedUser`` (from
``emu.user(...)``) plays Telegram users; the web chat page at ``/chat/`` lets a person play them.

Where things are: ``server.py`` (lifecycle, HTTP), ``methods/`` (the Bot API methods), ``state.py``
(the data), ``users.py`` (what users do), ``stars.py`` (what Telegram does to Stars payments: refunds,
subscription renewals; the ledger's data in ``ledger.py``), ``inspection.py`` (reading and waiting),
``faults.py``, ``webhook.py``, ``client.py`` (the test-side user, over the Protocol in ``api.py``), ``webchat/``.
"""

from .client import EmulatedUser, Expectation, MessageCursor, PaymentResult, button_texts, inline_buttons
from .errors import ApiError
from .ledger import StarTransaction, Subscription
from .media import sample_image, sample_mp4
from .server import BotAPIEmulator, WaitTimeout

__all__ = [
    "ApiError",
    "BotAPIEmulator",
    "EmulatedUser",
    "Expectation",
    "MessageCursor",
    "PaymentResult",
    "StarTransaction",
    "Subscription",
    "WaitTimeout",
    "button_texts",
    "inline_buttons",
    "sample_image",
    "sample_mp4",
]
