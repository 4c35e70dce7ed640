"""The bot's settings: commands, descriptions, name, menu button; getChat."""

from __future__ import annotations

import copy

from ..errors import bad_request
from ..params import Params
from ..state import JSON
from .base import COMMAND_RE, MethodsBase


class SettingsMixin(MethodsBase):
    """setMyCommands and friends."""

    async def m_setMyCommands(self, p: Params) -> bool:
        commands = p.get_json("commands", required=True)
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        cleaned: list[JSON] = []
        for item in commands:
            if not isinstance(item, dict):
                raise bad_request("can't parse BotCommand")
            command = str(item.get("command", "")).lstrip("/")
            description = str(item.get("description", ""))
            if not COMMAND_RE.match(command):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": command, "description": description})
        key = self.state.scope_key(p.get_json("scope"), p.get_str("language_code"))
        with self.state.lock:
            if cleaned:
                self.state.commands[key] = cleaned
            else:
                self.state.commands.pop(key, None)
        return True

    async def m_getMyCommands(self, p: Params) -> list[JSON]:
        key = self.state.scope_key(p.get_json("scope"), p.get_str("language_code"))
        with self.state.lock:
            return copy.deepcopy(self.state.commands.get(key, []))

    async def m_deleteMyCommands(self, p: Params) -> bool:
        key = self.state.scope_key(p.get_json("scope"), p.get_str("language_code"))
        with self.state.lock:
            self.state.commands.pop(key, None)
        return True

    def _set_text(self, kind: str, field: str, limit: int, p: Params) -> bool:
        value = p.get_str(field) or ""
        if len(value) > limit:
            raise bad_request(f"{field.upper()}_INVALID")
        key = kind + "|" + (p.get_str("language_code") or "")
        with self.state.lock:
            if value:
                self.state.bot_texts[key] = value
            else:
                self.state.bot_texts.pop(key, None)
        return True

    def _get_text(self, kind: str, p: Params) -> str:
        with self.state.lock:
            return self.state.bot_texts.get(kind + "|" + (p.get_str("language_code") or ""), "")

    async def m_setMyDescription(self, p: Params) -> bool:
        return self._set_text("description", "description", 512, p)

    async def m_getMyDescription(self, p: Params) -> JSON:
        return {"description": self._get_text("description", p)}

    async def m_setMyShortDescription(self, p: Params) -> bool:
        return self._set_text("short_description", "short_description", 120, p)

    async def m_getMyShortDescription(self, p: Params) -> JSON:
        return {"short_description": self._get_text("short_description", p)}

    async def m_setMyName(self, p: Params) -> bool:
        return self._set_text("name", "name", 64, p)

    async def m_getMyName(self, p: Params) -> JSON:
        return {"name": self._get_text("name", p) or self.state.bot_user["first_name"]}

    async def m_setChatMenuButton(self, p: Params) -> bool:
        button = p.get_json("menu_button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in ("default", "commands", "web_app"):
            raise bad_request("can't parse menu button")
        with self.state.lock:
            if p.has("chat_id"):
                self.chat_for(p).menu_button = button
            else:
                self.state.default_menu_button = button
        return True

    async def m_getChatMenuButton(self, p: Params) -> JSON:
        with self.state.lock:
            if p.has("chat_id"):
                return copy.deepcopy(self.chat_for(p).menu_button or self.state.default_menu_button)
            return copy.deepcopy(self.state.default_menu_button)

    async def m_getChat(self, p: Params) -> JSON:
        chat = self.chat_for(p)
        with self.state.lock:
            info = chat.to_dict()
        info.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": True,
                    "limited_gifts": True,
                    "unique_gifts": True,
                    "premium_subscription": True,
                    "gifts_from_channels": True,
                },
            }
        )
        return info
