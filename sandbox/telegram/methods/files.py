"""Files: storing uploads and photos (with Telegram-like sizes), resolving file_ids and URLs, getFile."""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import urlparse

from ..errors import ApiError, bad_request
from ..media import extension_for, guess_mime, photo_size_plan, probe_image, probe_mp4, resize_image
from ..params import Params, Upload
from ..state import JSON, StoredFile
from .base import MAX_DOWNLOAD_BYTES, MAX_PHOTO_BYTES, MethodsBase


class FilesMixin(MethodsBase):
    """Media storage shared by the sending and editing methods, and getFile."""

    def register_photo(self, data: bytes, width: int, height: int) -> StoredFile:
        """Store a photo with Telegram-like PhotoSizes; returns the largest size."""
        plan = photo_size_plan(width, height)
        original = StoredFile("", "", "photo", "", data, width=width, height=height)
        sizes: list[StoredFile] = []
        for index, (w, h) in enumerate(plan):
            is_largest = index == len(plan) - 1
            if (w, h) == (width, height):
                content: bytes | None = data
            elif is_largest:
                content = resize_image(data, w, h)
            else:
                content = None
            sizes.append(
                self.state.new_file("photo", content, "jpg", width=w, height=h, source=original, mime_type="image/jpeg")
            )
        group = [s.file_id for s in sizes]
        for s in sizes:
            s.photo_group = group
        return sizes[-1]

    def store_photo_upload(self, data: bytes) -> StoredFile:
        """Validate a photo the bot uploads (size, decodability, dimensions) and store it."""
        if len(data) > MAX_PHOTO_BYTES:
            raise bad_request("PHOTO_SAVE_FILE_INVALID")
        info = probe_image(data)
        if info is None:
            raise bad_request("IMAGE_PROCESS_FAILED")
        w, h = info.width, info.height
        if w + h > 10000 or max(w, h) > 20 * min(w, h):
            raise bad_request("PHOTO_INVALID_DIMENSIONS")
        return self.register_photo(data, w, h)

    def store_media(
        self,
        kind: str,
        data: bytes,
        file_name: str | None,
        content_type: str | None,
        *,
        width: int | None = None,
        height: int | None = None,
        duration: int | None = None,
        extra: JSON | None = None,
    ) -> StoredFile:
        """Store a non-photo file with best-effort metadata."""
        default_mime = {
            "voice": "audio/ogg",
            "audio": "audio/mpeg",
            "video": "video/mp4",
            "animation": "video/mp4",
            "video_note": "video/mp4",
            "sticker": "image/webp",
        }.get(kind, "application/octet-stream")
        mime = content_type if content_type and content_type != "application/octet-stream" else None
        mime = mime or guess_mime(file_name, data, default_mime)
        if kind in ("video", "animation", "video_note"):
            probed = probe_mp4(data)
            if probed:
                width = width or probed[0] or None
                height = height or probed[1] or None
                duration = duration if duration is not None else probed[2]
            width, height = width or 640, height or 360
        elif kind == "sticker":
            info = probe_image(data)
            width = width or (info.width if info else 512)
            height = height or (info.height if info else 512)
            extra = {"type": "regular", "is_animated": False, "is_video": False, **(extra or {})}
        elif kind == "document":
            file_name = file_name or "document"
        ext = PurePosixPath(file_name).suffix.lstrip(".") if file_name and "." in file_name else extension_for(mime)
        return self.state.new_file(
            kind,
            data,
            ext or "bin",
            mime_type=mime,
            file_name=file_name if kind in ("document", "video", "animation", "audio") else None,
            width=width if kind in ("video", "animation", "sticker", "video_note") else None,
            height=height if kind in ("video", "animation", "sticker", "video_note") else None,
            duration=duration if kind in ("video", "animation", "voice", "audio", "video_note") else None,
            extra=extra or {},
        )

    async def resolve_file(
        self, value: Upload | str, kind: str, p: Params | None = None, spec: JSON | None = None
    ) -> StoredFile:
        """Turn an upload, URL or file_id into a stored file of the requested kind."""
        data: bytes
        file_name: str | None
        content_type: str | None = None
        if isinstance(value, Upload):
            data, file_name, content_type = value.data, value.filename, value.content_type
            self.check_refused(file_name, data)
        elif value.startswith(("http://", "https://")):
            if self.fetch_url is None:
                raise bad_request("failed to get HTTP URL content")
            try:
                data, content_type = await self.fetch_url(value)
            except ApiError:
                raise
            except Exception:
                raise bad_request("failed to get HTTP URL content") from None
            file_name = PurePosixPath(urlparse(value).path).name or None
        else:
            with self.state.lock:
                stored = self.state.files.get(value)
            if stored is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
            if (kind == "photo") != (stored.kind == "photo"):
                raise bad_request(f"can't use file of type {stored.kind.title()} as {kind.title()}")
            return stored
        if not data:
            raise bad_request("file must be non-empty")
        if kind == "photo":
            return self.store_photo_upload(data)

        def num(name: str) -> int | None:
            if spec is not None and spec.get(name) is not None:
                return int(spec[name])
            return p.get_int(name) if p is not None else None

        extra: JSON = {}
        if kind == "sticker" and p is not None and p.get_str("emoji"):
            extra["emoji"] = p.get_str("emoji")
        if kind == "audio":
            for key in ("performer", "title"):
                val = (spec or {}).get(key) or (p.get_str(key) if p is not None else None)
                if val:
                    extra[key] = val
        return self.store_media(
            kind,
            data,
            file_name,
            content_type,
            width=num("width"),
            height=num("height"),
            duration=num("duration"),
            extra=extra,
        )

    def check_refused(self, file_name: str | None, data: bytes) -> None:
        """400 for an upload a test made Telegram refuse (``BotAPIEmulator.refuse_upload``)."""
        with self.state.lock:
            rule = next((r for r in self.state.upload_refusals if r.matches(file_name, data)), None)
            if rule is None:
                return
            rule.refused += 1
            if rule.times is not None:
                rule.times -= 1
        raise bad_request(rule.description)

    def media_content(self, kind: str, stored: StoredFile) -> JSON:
        """Message fields for a media file."""
        with self.state.lock:
            if kind == "photo":
                group = stored.photo_group or [stored.file_id]
                return {"photo": [self.state.files[fid].as_photo_size() for fid in group]}
            media = stored.as_media()
            if kind == "animation":
                doc = {k: v for k, v in media.items() if k not in ("width", "height", "duration")}
                return {"animation": media, "document": doc}
            if kind == "document":
                media = {k: v for k, v in media.items() if k not in ("width", "height", "duration")}
            return {kind: media}

    async def send_media(self, p: Params, kind: str) -> JSON:
        """Shared body of sendPhoto/sendVideo/sendDocument/..."""
        chat = self.target_for(p)
        caption, cents = ("", [])
        if kind not in ("sticker", "video_note"):
            caption, cents = self.formatted(p, "caption", "caption_entities", caption=True)
        inline, keyboard = self.markup(p)
        reply = self.reply_to(chat, p)
        value = p.get_input_file(kind)
        if value is None:
            raise bad_request(f"there is no {kind} in the request")
        stored = await self.resolve_file(value, kind, p)
        content = self.media_content(kind, stored)
        if caption:
            content["caption"] = caption
            if cents:
                content["caption_entities"] = cents
        if p.get_bool("has_spoiler"):
            content["has_media_spoiler"] = True
        if p.get_bool("show_caption_above_media"):
            content["show_caption_above_media"] = True
        return self.bot_send(chat, content, inline=inline, keyboard=keyboard, reply=reply, p=p)

    async def m_getFile(self, p: Params) -> JSON:
        file_id = p.get_str("file_id", required=True) or ""
        with self.state.lock:
            stored = self.state.files.get(file_id)
        if stored is None:
            raise bad_request("invalid file_id")
        data = stored.content()
        if len(data) > MAX_DOWNLOAD_BYTES:
            raise bad_request("file is too big")
        return stored.as_file()
