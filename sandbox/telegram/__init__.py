"""Telegram Bot API emulator for tests and local runs (no Django imports here).

``BotAPIEmulator`` serves the Bot API over HTTP for real aiogram clients; ``EmulatedUser`` (from
``emu.user(...)``) plays Telegram users. See ``server.py`` for the lifecycle and waiting helpers.
"""

from .client import EmulatedUser, Expectation, MessageCursor, PaymentResult, button_texts, inline_buttons
from .errors import ApiError
from .media import sample_image, sample_mp4
from .server import BotAPIEmulator, WaitTimeout

__all__ = [
    "ApiError",
    "BotAPIEmulator",
    "EmulatedUser",
    "Expectation",
    "MessageCursor",
    "PaymentResult",
    "WaitTimeout",
    "button_texts",
    "inline_buttons",
    "sample_image",
    "sample_mp4",
]
