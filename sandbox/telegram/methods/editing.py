"""Editing and deleting the bot's messages."""

from __future__ import annotations

from ..errors import bad_request
from ..params import Params
from ..state import JSON
from .base import MEDIA_KINDS
from .files import FilesMixin


class EditingMixin(FilesMixin):
    """editMessage* and deleteMessage(s)."""

    async def m_editMessageText(self, p: Params) -> JSON:
        msg = self.editable(p)
        if "text" not in msg.data:
            raise bad_request("there is no text in the message to edit")
        text, entities = self.formatted(p, "text", "entities", caption=False)
        inline, _ = self.markup(p, inline_only=True)
        return self.commit_edit(msg, {"text": text, "entities": entities}, inline, ("text", "entities"))

    async def m_editMessageCaption(self, p: Params) -> JSON:
        msg = self.editable(p)
        if not any(k in msg.data for k in MEDIA_KINDS if k not in ("sticker", "video_note")):
            raise bad_request("there is no caption in the message to edit")
        caption, entities = self.formatted(p, "caption", "caption_entities", caption=True)
        inline, _ = self.markup(p, inline_only=True)
        changes = {"caption": caption or None, "caption_entities": entities}
        return self.commit_edit(msg, changes, inline, ("caption", "caption_entities"))

    async def m_editMessageReplyMarkup(self, p: Params) -> JSON:
        msg = self.editable(p)
        inline, _ = self.markup(p, inline_only=True)
        return self.commit_edit(msg, {}, inline, ())

    async def m_editMessageMedia(self, p: Params) -> JSON:
        msg = self.editable(p)
        if not any(k in msg.data for k in ("photo", "video", "animation", "document", "audio")):
            raise bad_request("there is no media in the message to edit")
        spec = p.get_json("media", required=True)
        if not isinstance(spec, dict) or spec.get("type") not in ("photo", "video", "animation", "document", "audio"):
            raise bad_request("can't parse InputMedia: media type is invalid")
        kind = str(spec["type"])
        media_ref = p.resolve_attach(str(spec.get("media") or ""))
        if media_ref == "":
            raise bad_request("there is no media in the request")
        stored = await self.resolve_file(media_ref, kind, p, spec)
        sub = Params(
            {
                "caption": spec.get("caption"),
                "parse_mode": spec.get("parse_mode"),
                "caption_entities": spec.get("caption_entities"),
            }
        )
        caption, entities = self.formatted(sub, "caption", "caption_entities", caption=True)
        inline, _ = self.markup(p, inline_only=True)
        changes: JSON = {k: None for k in ("photo", "video", "animation", "document", "audio")}
        changes.update(self.media_content(kind, stored))
        changes["caption"] = caption or None
        changes["caption_entities"] = entities
        compare = tuple(changes)
        with self.state.lock:
            same_file = _file_key(msg.data) == _file_key(changes)
        if same_file:
            compare = ("caption", "caption_entities")
        return self.commit_edit(msg, changes, inline, compare)

    async def m_deleteMessage(self, p: Params) -> bool:
        chat = self.chat_for(p)
        mid = p.get_int("message_id", required=True)
        with self.state.lock:
            msg = chat.messages.get(mid or 0)
            if msg is None or msg.deleted:
                raise bad_request("message to delete not found")
            msg.deleted = True
            self.state.add_event("bot_delete", chat.id, msg.message_id, msg.data)
        return True

    async def m_deleteMessages(self, p: Params) -> bool:
        chat = self.chat_for(p)
        ids = p.get_json("message_ids", required=True)
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("message_ids must be a non-empty list of at most 100 ids")
        with self.state.lock:
            for mid in ids:
                msg = chat.messages.get(int(mid))
                if msg is not None and not msg.deleted:
                    msg.deleted = True
                    self.state.add_event("bot_delete", chat.id, msg.message_id, msg.data)
        return True


def _file_key(data: JSON) -> str | None:
    for kind in ("photo", "video", "animation", "document", "audio"):
        value = data.get(kind)
        if value:
            item = value[-1] if isinstance(value, list) else value
            return f"{kind}:{item.get('file_unique_id')}"
    return None
