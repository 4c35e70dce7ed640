"""Test-side client: emulated Telegram users talking to the bot, plus waiting helpers.

Every user action is non-blocking and thread-safe (callable from sync tests, async tests and other
threads); only :meth:`EmulatedUser.pay` blocks (use :meth:`EmulatedUser.apay` in the emulator's loop).
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .api import EmulatorAPI, PaymentResult, Predicate
from .formatting import command_entities
from .media import sample_image, sample_mp4
from .state import JSON

if TYPE_CHECKING:
    from .state import PreCheckoutRecord

__all__ = ["EmulatedUser", "Expectation", "MessageCursor", "PaymentResult", "button_texts", "inline_buttons"]

FileData = bytes | str | Path


def _read(data: FileData) -> bytes:
    if isinstance(data, bytes):
        return data
    return Path(data).read_bytes()


def _address(message: Any, default_chat: int) -> tuple[int, int]:
    """(chat_id, message_id) of a Message dict, aiogram Message, or bare message id."""
    if isinstance(message, int):
        return default_chat, message
    if isinstance(message, dict):
        return int(message["chat"]["id"]), int(message["message_id"])
    chat = getattr(message, "chat", None)
    return int(getattr(chat, "id", default_chat)), int(message.message_id)


def inline_buttons(message: JSON) -> list[JSON]:
    """All inline keyboard buttons of a message, row by row."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return [button for row in rows for button in row]


def button_texts(message: JSON) -> list[str]:
    """Texts of a message's inline buttons."""
    return [b["text"] for b in inline_buttons(message)]


class EmulatedUser:
    """A Telegram user in a private chat with the bot (create with ``emu.user(...)``)."""

    def __init__(self, emulator: EmulatorAPI, info: JSON) -> None:
        self.emu = emulator
        self.info = info
        self.last_update_id: int | None = None

    @property
    def id(self) -> int:
        """The user id (also the private chat id)."""
        return int(self.info["id"])

    @property
    def chat_id(self) -> int:
        """The private chat id (== user id)."""
        return self.id

    def __repr__(self) -> str:
        return f"EmulatedUser(id={self.id}, first_name={self.info.get('first_name')!r})"

    # ------------------------------------------------------------ sending

    def send_message(self, content: JSON, *, reply_to: Any = None) -> JSON:
        """Send a message with arbitrary Message fields (``{"text": ...}``, ``{"contact": ...}``, ...)."""
        content = dict(content)
        if reply_to is not None:
            chat_id, mid = _address(reply_to, self.id)
            replied = self.emu.message(chat_id, mid)
            if replied is None:
                raise LookupError(f"message {mid} to reply to does not exist")
            replied.pop("reply_to_message", None)
            content["reply_to_message"] = replied
        message, self.last_update_id = self.emu.post_user_message(self.id, content)
        return message

    def send_text(self, text: str, *, reply_to: Any = None) -> JSON:
        """Send a text message (``/commands`` in it get bot_command entities like real clients add)."""
        content: JSON = {"text": text}
        entities = command_entities(text)
        if entities:
            content["entities"] = entities
        return self.send_message(content, reply_to=reply_to)

    def send_command(self, command: str) -> JSON:
        """Send ``/command args`` (the leading slash is added if missing)."""
        if not command.startswith("/"):
            command = "/" + command
        return self.send_text(command)

    def send_photo(
        self,
        data: FileData | None = None,
        caption: str | None = None,
        *,
        width: int | None = None,
        height: int | None = None,
        reply_to: Any = None,
    ) -> JSON:
        """Send a photo (bytes or path; a generated image if omitted) stored as Telegram-like PhotoSizes."""
        raw = sample_image() if data is None else _read(data)
        content: JSON = {"photo": self.emu.store_user_photo(raw, width, height)}
        if caption:
            content["caption"] = caption
        return self.send_message(content, reply_to=reply_to)

    def send_document(
        self,
        data: FileData,
        file_name: str = "file.bin",
        mime_type: str | None = None,
        caption: str | None = None,
    ) -> JSON:
        """Send a file as a document (keeps file_name and mime_type)."""
        content: JSON = {"document": self.emu.store_user_file("document", _read(data), file_name, mime_type)}
        if caption:
            content["caption"] = caption
        return self.send_message(content)

    def send_album(self, items: list[FileData], caption: str | None = None, *, kind: str = "photo") -> list[JSON]:
        """Send several photos/videos/documents as one album (shared media_group_id)."""
        if not 2 <= len(items) <= 10:
            raise ValueError("an album has 2-10 items")
        group_id = str(secrets.randbits(63))
        sent: list[JSON] = []
        for index, item in enumerate(items):
            raw = _read(item)
            if kind == "photo":
                content: JSON = {"photo": self.emu.store_user_photo(raw)}
            else:
                name = f"{kind}_{index + 1}.{'mp4' if kind == 'video' else 'bin'}"
                content = {kind: self.emu.store_user_file(kind, raw, name)}
            content["media_group_id"] = group_id
            if caption and index == 0:
                content["caption"] = caption
            sent.append(self.send_message(content))
        return sent

    def send_video(
        self,
        data: FileData | None = None,
        caption: str | None = None,
        *,
        width: int | None = None,
        height: int | None = None,
        duration: int | None = None,
    ) -> JSON:
        """Send a video (a tiny generated MP4 header if omitted)."""
        raw = sample_mp4() if data is None else _read(data)
        media = self.emu.store_user_file(
            "video", raw, "video.mp4", "video/mp4", width=width, height=height, duration=duration
        )
        content: JSON = {"video": media}
        if caption:
            content["caption"] = caption
        return self.send_message(content)

    def send_sticker(self, emoji: str = "👍", data: FileData | None = None) -> JSON:
        """Send a (static webp) sticker."""
        raw = sample_image(512, 512, "WEBP") if data is None else _read(data)
        sticker = self.emu.store_user_file("sticker", raw, None, "image/webp", extra={"emoji": emoji})
        return self.send_message({"sticker": sticker})

    def send_voice(self, data: FileData | None = None, duration: int = 1) -> JSON:
        """Send a voice message."""
        raw = b"OggS" + bytes(60) if data is None else _read(data)
        voice = self.emu.store_user_file("voice", raw, None, "audio/ogg", duration=duration)
        return self.send_message({"voice": voice})

    def send_contact(self, phone_number: str = "+79990000000") -> JSON:
        """Share the user's own contact."""
        contact = {"phone_number": phone_number, "first_name": self.info["first_name"], "user_id": self.id}
        return self.send_message({"contact": contact})

    def edit_text(self, message: Any, text: str) -> JSON:
        """Edit one of the user's own text messages (an ``edited_message`` update)."""
        _, mid = _address(message, self.id)
        content: JSON = {"text": text, "entities": command_entities(text)}
        edited, self.last_update_id = self.emu.post_user_message(self.id, content, edit_of=mid)
        return edited

    # ------------------------------------------------------------ buttons

    def press(self, message: Any, button_text: str | None = None, callback_data: str | None = None) -> JSON:
        """Press an inline button of a bot message (by text and/or callback_data); returns the CallbackQuery.

        ``button_text`` matches exactly, else as a substring of exactly one button; with neither argument
        the message must have exactly one callback button. With a reply keyboard shown instead, pressing
        sends the button text as a message (returned). Raises AssertionError when no single button matches.
        """
        chat_id, mid = _address(message, self.id)
        current = self.emu.message(chat_id, mid)
        if current is None:
            raise AssertionError(f"message {mid} does not exist (deleted?)")
        buttons = inline_buttons(current)
        if not buttons:
            keyboard = self.emu.reply_keyboard(chat_id)
            texts = [
                b if isinstance(b, str) else b.get("text") for row in (keyboard or {}).get("keyboard", []) for b in row
            ]
            if button_text is not None and button_text in texts:
                return self.send_text(button_text)
            raise AssertionError(f"message {mid} has no inline keyboard (text: {_short(current)})")
        button = _pick_button(buttons, button_text, callback_data)
        if button.get("callback_data") is not None:
            query, self.last_update_id = self.emu.post_callback_query(self.id, mid, button["callback_data"])
            return query
        if button.get("pay"):
            raise AssertionError("this is a Pay button: use user.pay(message)")
        raise AssertionError(f"button {button['text']!r} sends nothing to the bot: {button}")

    def press_raw(self, message_id: int, data: str | None) -> JSON:
        """Send a callback_query with arbitrary (even malformed or stale) data for a message id."""
        query, self.last_update_id = self.emu.post_callback_query(self.id, message_id, data)
        return query

    # ------------------------------------------------------------ payments

    def _begin_payment(self, invoice: Any, timeout: float | None) -> tuple[PreCheckoutRecord, float]:
        record = self.emu.start_pre_checkout(self.id, self.emu.resolve_invoice(invoice, self.id), timeout)
        return record, max(0.0, record.deadline - time.time())

    def pay(self, invoice: Any, *, timeout: float | None = None, charge_id: str | None = None) -> PaymentResult:
        """Pay an invoice (message, message id or invoice link): pre_checkout_query, wait for the answer,
        then a successful_payment message. Pass an existing ``charge_id`` to replay that payment.
        Blocks: from the emulator's own loop use :meth:`apay`.
        """
        self.emu.guard_blocking()
        record, remaining = self._begin_payment(invoice, timeout)
        self.emu.state.wait_sync(lambda: True if record.answered else None, remaining)
        return self._complete(record, charge_id)

    async def apay(self, invoice: Any, *, timeout: float | None = None, charge_id: str | None = None) -> PaymentResult:  # noqa: ASYNC109
        """Async :meth:`pay`."""
        record, remaining = self._begin_payment(invoice, timeout)
        await self.emu.state.wait_async(lambda: True if record.answered else None, remaining)
        return self._complete(record, charge_id)

    def _complete(self, record: PreCheckoutRecord, charge_id: str | None) -> PaymentResult:
        result = self.emu.finish_payment(record, charge_id)
        if result.update_id is not None:
            self.last_update_id = result.update_id
        return result

    def replay_payment(self, result: PaymentResult) -> JSON:
        """Deliver the same successful_payment again as a new message (the bot must credit once)."""
        if not result.ok or result.charge_id is None:
            raise ValueError("only a successful payment can be replayed")
        message, self.last_update_id = self.emu.replay_payment(result.charge_id)
        return message

    # ------------------------------------------------------------ Stars: refunds and subscriptions

    def refund_externally(self, payment: PaymentResult | str) -> JSON:
        """Telegram (support, a chargeback) refunds this user's Stars payment without the bot; returns the
        ``refunded_payment`` message delivered to the bot."""
        charge_id = payment if isinstance(payment, str) else payment.charge_id
        if not charge_id:
            raise ValueError("only a successful payment can be refunded")
        message, self.last_update_id = self.emu.refund_externally(charge_id)
        return message

    def renew_subscription(self, subscription: Any) -> PaymentResult:
        """Telegram charges the next period of a Star subscription (a new charge id, ``is_recurring``);
        ``ok`` is False when it was cancelled or lapsed. ``subscription``: a PaymentResult, charge id, ..."""
        result = self.emu.renew_subscription(subscription)
        if result.update_id is not None:
            self.last_update_id = result.update_id
        return result

    def cancel_subscription(self, subscription: Any) -> None:
        """Cancel a Star subscription in Telegram (the bot gets a ``subscription`` update, ``canceled``)."""
        self.last_update_id = self.emu.cancel_subscription(subscription)

    def restore_subscription(self, subscription: Any) -> None:
        """Re-enable a subscription this user cancelled (a ``subscription`` update, ``active``)."""
        self.last_update_id = self.emu.restore_subscription(subscription)

    def fail_renewal(self, subscription: Any) -> None:
        """The renewal payment fails (too few Stars): a ``subscription`` update, ``failed``; no more renewals."""
        self.last_update_id = self.emu.lapse_subscription(subscription)

    def subscription_will_renew(self, subscription: Any) -> bool:
        """Whether Telegram would charge the next period."""
        return self.emu.subscription_will_renew(subscription)

    # ------------------------------------------------------------ blocking / reading

    def block_bot(self) -> None:
        """Block the bot (sends to this user then fail with 403)."""
        self.emu.block_bot(self.id)

    def unblock_bot(self) -> None:
        """Unblock the bot."""
        self.emu.unblock_bot(self.id)

    def messages(self, **kwargs: Any) -> list[JSON]:
        """The bot's messages in this chat (see ``emu.messages``)."""
        return self.emu.messages(self.id, **kwargs)

    def last_message(self) -> JSON | None:
        """The bot's newest message in this chat."""
        return self.emu.last_message(self.id)

    def wait_reply(self, predicate: Predicate | None = None, timeout: float = 5.0, **kwargs: Any) -> JSON:
        """Wait for the bot's message/edit after this user's last action."""
        return self.emu.wait_for_message(self.id, predicate, timeout, **kwargs)

    async def reply(self, predicate: Predicate | None = None, timeout: float = 5.0, **kwargs: Any) -> JSON:  # noqa: ASYNC109
        """Async :meth:`wait_reply`."""
        return await self.emu.await_message(self.id, predicate, timeout, **kwargs)


class MessageCursor:
    """Reads the bot's messages/edits in a chat one after another (see ``emu.cursor``)."""

    def __init__(self, emulator: EmulatorAPI, chat_id: int, position: int) -> None:
        self.emu = emulator
        self.chat_id = chat_id
        self.position = position

    def next(self, predicate: Predicate | None = None, timeout: float = 5.0, *, include_edits: bool = True) -> JSON:
        """The next matching bot message/edit after the cursor (the cursor moves past it)."""
        kinds = ("bot_message", "bot_edit") if include_edits else ("bot_message",)
        event = self.emu.wait_for_event(kinds, self.chat_id, predicate, since=self.position, timeout=timeout)
        self.position = event.seq
        return event.data

    async def anext(
        self,
        predicate: Predicate | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        include_edits: bool = True,
    ) -> JSON:
        """Async :meth:`next`."""
        kinds = ("bot_message", "bot_edit") if include_edits else ("bot_message",)
        event = await self.emu.await_event(kinds, self.chat_id, predicate, since=self.position, timeout=timeout)
        self.position = event.seq
        return event.data

    def skip_to_now(self) -> None:
        """Ignore everything that happened so far."""
        self.position = self.emu.mark()


class Expectation:
    """Context manager: marks the event stream on enter, waits for the bot's message on exit."""

    def __init__(
        self,
        emulator: EmulatorAPI,
        chat_id: int,
        predicate: Predicate | None,
        timeout: float,
        include_edits: bool,
    ) -> None:
        self.emu = emulator
        self.chat_id = chat_id
        self.predicate = predicate
        self.timeout = timeout
        self.include_edits = include_edits
        self.since = 0
        self.message: JSON | None = None

    def __enter__(self) -> Expectation:
        self.since = self.emu.mark()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.message = self.emu.wait_for_message(
                self.chat_id, self.predicate, self.timeout, since=self.since, include_edits=self.include_edits
            )

    async def __aenter__(self) -> Expectation:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.message = await self.emu.await_message(
                self.chat_id, self.predicate, self.timeout, since=self.since, include_edits=self.include_edits
            )


def _pick_button(buttons: list[JSON], text: str | None, data: str | None) -> JSON:
    def describe() -> str:
        return ", ".join(f"{b['text']!r}->{b.get('callback_data', b.get('url', '?'))!r}" for b in buttons)

    candidates = [
        b for b in buttons if (text is None or b["text"] == text) and (data is None or b.get("callback_data") == data)
    ]
    if not candidates and text is not None:
        candidates = [b for b in buttons if text in b["text"] and (data is None or b.get("callback_data") == data)]
    if text is None and data is None:
        candidates = [b for b in buttons if b.get("callback_data") is not None]
    if len(candidates) != 1:
        problem = "no" if not candidates else "more than one"
        raise AssertionError(f"{problem} button matches text={text!r} callback_data={data!r}; buttons: {describe()}")
    return candidates[0]


def _short(message: JSON) -> str:
    return repr(str(message.get("text") or message.get("caption") or "")[:60])
