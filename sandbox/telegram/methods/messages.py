"""Sending: text and media messages, albums, copies and forwards, chat actions, callback answers."""

from __future__ import annotations

import copy
import secrets

from ..errors import ApiError, bad_request
from ..params import Params
from ..state import JSON
from .base import CHAT_ACTIONS, MAX_CALLBACK_ANSWER, QUERY_INVALID
from .files import FilesMixin


class MessagesMixin(FilesMixin):
    """Methods that put something new into a chat."""

    async def m_sendMessage(self, p: Params) -> JSON:
        chat = self.target_for(p)
        text, entities = self.formatted(p, "text", "entities", caption=False)
        inline, keyboard = self.markup(p)
        reply = self.reply_to(chat, p)
        content: JSON = {"text": text}
        if entities:
            content["entities"] = entities
        preview = p.get_json("link_preview_options")
        if isinstance(preview, dict) and preview.get("is_disabled"):
            content["link_preview_options"] = {"is_disabled": True}
        return self.bot_send(chat, content, inline=inline, keyboard=keyboard, reply=reply, p=p)

    async def m_answerCallbackQuery(self, p: Params) -> bool:
        qid = p.get_str("callback_query_id", required=True) or ""
        text = p.get_str("text")
        if text and len(text) > MAX_CALLBACK_ANSWER:
            raise bad_request("MESSAGE_TOO_LONG")
        with self.state.lock:
            record = self.state.callback_queries.get(qid)
            if record is None or record.answered:
                raise bad_request(QUERY_INVALID)
            record.answered = True
            record.answer = {
                "callback_query_id": qid,
                "text": text,
                "show_alert": p.get_bool("show_alert"),
                "url": p.get_str("url"),
                "cache_time": p.get_int("cache_time", default=0),
                "user_id": record.user_id,
                "chat_id": record.chat_id,
                "message_id": record.message_id,
                "data": record.data,
            }
            self.state.add_event("callback_answer", record.chat_id, record.message_id, record.answer)
        return True

    async def m_sendChatAction(self, p: Params) -> bool:
        chat = self.target_for(p)
        action = p.get_str("action", required=True)
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self.state.add_event("chat_action", chat.id, None, {"action": action})
        return True

    async def m_setMessageReaction(self, p: Params) -> bool:
        chat = self.chat_for(p)
        self.state.add_event("reaction", chat.id, p.get_int("message_id"), {"reaction": p.get_json("reaction")})
        return True

    async def m_sendPhoto(self, p: Params) -> JSON:
        return await self.send_media(p, "photo")

    async def m_sendVideo(self, p: Params) -> JSON:
        return await self.send_media(p, "video")

    async def m_sendDocument(self, p: Params) -> JSON:
        return await self.send_media(p, "document")

    async def m_sendAnimation(self, p: Params) -> JSON:
        return await self.send_media(p, "animation")

    async def m_sendAudio(self, p: Params) -> JSON:
        return await self.send_media(p, "audio")

    async def m_sendVoice(self, p: Params) -> JSON:
        return await self.send_media(p, "voice")

    async def m_sendSticker(self, p: Params) -> JSON:
        return await self.send_media(p, "sticker")

    async def m_sendVideoNote(self, p: Params) -> JSON:
        return await self.send_media(p, "video_note")

    async def m_sendMediaGroup(self, p: Params) -> list[JSON]:
        chat = self.target_for(p)
        items = p.get_json("media", required=True)
        if not isinstance(items, list):
            raise bad_request("can't parse media JSON object")
        if not 2 <= len(items) <= 10:
            raise bad_request("wrong number of media in the group: must include 2-10 items")
        kinds = [str(item.get("type")) if isinstance(item, dict) else "" for item in items]
        if any(k not in ("photo", "video", "document", "audio") for k in kinds):
            raise bad_request("can't parse InputMedia: media type is invalid")
        for special in ("document", "audio"):
            if special in kinds and any(k != special for k in kinds):
                raise bad_request(f"{special.upper()}_GROUP_MIXED: {special}s can't be mixed with other media types")
        # No reply_markup: an album cannot carry buttons (Telegram ignores the parameter, as any
        # unknown one); send them in a message of their own.
        reply = self.reply_to(chat, p)
        prepared: list[JSON] = []
        for number, (item, kind) in enumerate(zip(items, kinds, strict=True), start=1):
            ref = p.resolve_attach(str(item.get("media") or ""))
            if ref == "":
                raise bad_request("there is no media in the request")
            try:
                stored = await self.resolve_file(ref, kind, None, item)
            except ApiError as exc:  # one bad item refuses the whole album: nothing is sent
                if exc.error_code != 400:
                    raise
                reason = exc.description.removeprefix("Bad Request: ")
                raise bad_request(f'failed to send message #{number} with the error message "{reason}"') from None
            sub = Params(
                {
                    "caption": item.get("caption"),
                    "parse_mode": item.get("parse_mode"),
                    "caption_entities": item.get("caption_entities"),
                }
            )
            caption, entities = self.formatted(sub, "caption", "caption_entities", caption=True)
            content = self.media_content(kind, stored)
            if caption:
                content["caption"] = caption
                if entities:
                    content["caption_entities"] = entities
            if item.get("has_spoiler"):
                content["has_media_spoiler"] = True
            prepared.append(content)
        group_id = str(secrets.randbits(63))
        sent: list[JSON] = []
        for index, content in enumerate(prepared):
            content["media_group_id"] = group_id
            sent.append(self.bot_send(chat, content, reply=reply if index == 0 else None, p=p))
        return sent

    def _source_content(self, p: Params, verb: str, *, drop: tuple[str, ...]) -> tuple[JSON, JSON]:
        """A deep copy of the message named by from_chat_id/message_id, and its content without the
        fields a copied or forwarded message gets anew (plus `drop`)."""
        source_chat = self.chat_for(p, "from_chat_id")
        mid = p.get_int("message_id", required=True)
        with self.state.lock:
            source = source_chat.messages.get(mid or 0)
            if source is None or source.deleted:
                raise bad_request(f"message to {verb} not found")
            data = copy.deepcopy(source.data)
        renewed = ("message_id", "from", "chat", "date", "edit_date", "reply_markup", "reply_to_message", *drop)
        return data, {k: v for k, v in data.items() if k not in renewed}

    async def m_copyMessage(self, p: Params) -> JSON:
        chat = self.target_for(p)
        _, content = self._source_content(p, "copy", drop=("media_group_id",))
        if p.has("caption"):
            caption, entities = self.formatted(p, "caption", "caption_entities", caption=True)
            content["caption"] = caption
            content.pop("caption_entities", None)
            if entities:
                content["caption_entities"] = entities
        inline, keyboard = self.markup(p)
        sent = self.bot_send(chat, content, inline=inline, keyboard=keyboard, reply=self.reply_to(chat, p), p=p)
        return {"message_id": sent["message_id"]}

    async def m_forwardMessage(self, p: Params) -> JSON:
        chat = self.target_for(p)
        source, content = self._source_content(p, "forward", drop=("forward_origin",))
        content["forward_origin"] = {"type": "user", "sender_user": source["from"], "date": source["date"]}
        return self.bot_send(chat, content, p=p)
