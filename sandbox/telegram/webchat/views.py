"""What the page sees: users, messages and events as JSON, the bot as a user of a language sees it."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from ..state import JSON, EmulatorState, Event, StoredMessage

#: Events the page follows (everything else in the emulator's log is for tests).
PAGE_EVENTS = frozenset(
    {
        "bot_message",
        "bot_edit",
        "bot_delete",
        "user_message",
        "user_edit",
        "callback_answer",
        "chat_action",
        "pre_checkout_answer",
        "blocked",
        "unblocked",
    }
)
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")
USERNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{4,31}$")


def user_view(info: JSON, *, preset: bool) -> JSON:
    """A user as the page lists it."""
    return {
        "id": info["id"],
        "first_name": info.get("first_name", ""),
        "last_name": info.get("last_name"),
        "username": info.get("username"),
        "language_code": info.get("language_code"),
        "preset": preset,
    }


def message_view(stored: StoredMessage, paid: bool = False) -> JSON:
    """A stored message with what the Message JSON leaves out: who sent it and the reply keyboard."""
    out: JSON = {"message": copy.deepcopy(stored.data), "from_bot": stored.from_bot}
    if stored.reply_keyboard is not None:
        out["keyboard"] = copy.deepcopy(stored.reply_keyboard)
    if paid:
        out["paid"] = True
    return out


def event_view(state: EmulatorState, event: Event, paid: set[tuple[int, int]]) -> JSON:
    """An event for the page (call with the state's lock held); bot messages carry their reply keyboard."""
    out: JSON = {
        "seq": event.seq,
        "kind": event.kind,
        "chat_id": event.chat_id,
        "message_id": event.message_id,
        "time": event.time,
        "data": event.data,
    }
    if event.kind == "bot_message" and event.chat_id is not None and event.message_id is not None:
        chat = state.chats.get(event.chat_id)
        stored = chat.messages.get(event.message_id) if chat else None
        if stored is not None and stored.reply_keyboard is not None:
            out["keyboard"] = stored.reply_keyboard
    if event.kind in ("bot_message", "bot_edit") and (event.chat_id, event.message_id) in paid:
        out["paid"] = True
    return out


def sse_frame(event: str | None, data: Any, event_id: int | None = None) -> bytes:
    """One server-sent event."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event:
        lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


def commands_for(state: EmulatorState, user: JSON) -> list[JSON]:
    """The command menu a user sees, by Telegram's order: chat scope, private chats, default; each in
    the user's language first, then without a language (call with the lock held)."""
    language = (user.get("language_code") or "").split("-")[0] or None
    scopes: list[JSON] = [
        {"type": "chat", "chat_id": user["id"]},
        {"type": "all_private_chats"},
        {"type": "default"},
    ]
    for scope in scopes:
        for lang in (language, None) if language else (None,):
            found = state.commands.get(state.scope_key(scope, lang))
            if found:
                return copy.deepcopy(found)
    return []


def bot_texts_for(state: EmulatorState, user: JSON) -> JSON:
    """The bot's name, description and short description in the user's language (lock held)."""
    language = (user.get("language_code") or "").split("-")[0]

    def text(kind: str) -> str:
        return state.bot_texts.get(f"{kind}|{language}") or state.bot_texts.get(f"{kind}|", "")

    bot = state.bot_user
    return {
        "id": bot["id"],
        "username": bot.get("username"),
        "name": text("name") or bot.get("first_name", "Bot"),
        "description": text("description"),
        "short_description": text("short_description"),
    }
