"""Bot API method implementations on top of :class:`~sandbox.telegram.state.EmulatorState`.

The HTTP layer (server.py) parses requests into :class:`Params` and calls :meth:`BotMethods.call`;
errors are raised as :class:`ApiError` with Telegram's descriptions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ApiError
from ..params import Params
from ..state import EmulatorState
from .base import (
    BUTTON_ACTIONS,
    CHAT_ACTIONS,
    MAX_CALLBACK_ANSWER,
    MAX_CALLBACK_DATA,
    MAX_CAPTION,
    MAX_DOWNLOAD_BYTES,
    MAX_PHOTO_BYTES,
    MAX_TEXT,
    MEDIA_KINDS,
    Handler,
    UrlFetcher,
    validate_inline_keyboard,
)
from .editing import EditingMixin
from .files import FilesMixin
from .messages import MessagesMixin
from .payments import PaymentsMixin
from .settings import SettingsMixin
from .stars import StarsMixin
from .updates import UpdatesMixin

__all__ = [
    "BUTTON_ACTIONS",
    "CHAT_ACTIONS",
    "MAX_CALLBACK_ANSWER",
    "MAX_CALLBACK_DATA",
    "MAX_CAPTION",
    "MAX_DOWNLOAD_BYTES",
    "MAX_PHOTO_BYTES",
    "MAX_TEXT",
    "MEDIA_KINDS",
    "BotMethods",
    "UrlFetcher",
    "validate_inline_keyboard",
]


class BotMethods(UpdatesMixin, MessagesMixin, EditingMixin, FilesMixin, SettingsMixin, PaymentsMixin, StarsMixin):
    """Implements the supported Bot API methods."""

    def __init__(
        self,
        state: EmulatorState,
        *,
        fetch_url: UrlFetcher | None = None,
        on_webhook_changed: Callable[[], None] | None = None,
        allow_http_webhook: bool = True,
    ) -> None:
        super().__init__(
            state, fetch_url=fetch_url, on_webhook_changed=on_webhook_changed, allow_http_webhook=allow_http_webhook
        )
        self.handlers: dict[str, tuple[str, Handler]] = {}
        for name in (
            "getMe",
            "logOut",
            "close",
            "getUpdates",
            "setWebhook",
            "deleteWebhook",
            "getWebhookInfo",
            "sendMessage",
            "editMessageText",
            "editMessageReplyMarkup",
            "editMessageCaption",
            "editMessageMedia",
            "deleteMessage",
            "deleteMessages",
            "answerCallbackQuery",
            "sendChatAction",
            "sendPhoto",
            "sendVideo",
            "sendDocument",
            "sendAnimation",
            "sendAudio",
            "sendVoice",
            "sendSticker",
            "sendVideoNote",
            "sendMediaGroup",
            "copyMessage",
            "forwardMessage",
            "getFile",
            "setMyCommands",
            "getMyCommands",
            "deleteMyCommands",
            "setMyDescription",
            "getMyDescription",
            "setMyShortDescription",
            "getMyShortDescription",
            "setMyName",
            "getMyName",
            "setChatMenuButton",
            "getChatMenuButton",
            "getChat",
            "setMessageReaction",
            "sendInvoice",
            "createInvoiceLink",
            "answerPreCheckoutQuery",
            "refundStarPayment",
            "getStarTransactions",
            "getMyStarBalance",
            "editUserStarSubscription",
        ):
            self.handlers[name.lower()] = (name, getattr(self, "m_" + name))

    def canonical(self, method: str) -> str | None:
        """The canonical method name (Telegram method names are case-insensitive)."""
        entry = self.handlers.get(method.lower())
        return entry[0] if entry else None

    async def call(self, method: str, params: Params) -> Any:
        """Run a method; raises ApiError (404 for unknown methods)."""
        entry = self.handlers.get(method.lower())
        if entry is None:
            raise ApiError(404, "Not Found")
        return await entry[1](params)
