"""The web chat: a Telegram-like page, served by the emulator at ``/chat/``, to talk to the bot by hand.

The page (``static/``: plain HTML, CSS and JavaScript, no build step, nothing from a CDN) talks to the
JSON endpoints under ``/chat/api/`` and follows the emulator's events over server-sent events.
"""

from .app import PRESET_USERS, WebChat

__all__ = ["PRESET_USERS", "WebChat"]
