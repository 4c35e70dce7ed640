"""Media helpers: image/video probing, Telegram-like photo sizes, sample files."""

from __future__ import annotations

import io
import mimetypes
import struct
from dataclasses import dataclass

from PIL import Image

#: Bounding boxes of the PhotoSize variants Telegram generates (s, m, x, y, w).
PHOTO_BOXES: tuple[int, ...] = (90, 320, 800, 1280, 2560)
MAX_PHOTO_SIDE = 2560


@dataclass(frozen=True)
class ImageInfo:
    """Basic facts about a decodable image."""

    width: int
    height: int
    format: str
    mime_type: str


def probe_image(data: bytes) -> ImageInfo | None:
    """Width/height/format of an image, or None when Pillow cannot read it."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or "JPEG"
            return ImageInfo(img.width, img.height, fmt, Image.MIME.get(fmt, "image/jpeg"))
    except Exception:
        return None


def scaled(width: int, height: int, box: int) -> tuple[int, int]:
    """Size after fitting (width, height) into a box x box square, keeping the ratio."""
    side = max(width, height)
    if side <= box:
        return width, height
    factor = box / side
    return max(1, round(width * factor)), max(1, round(height * factor))


def photo_size_plan(width: int, height: int) -> list[tuple[int, int]]:
    """The (width, height) list of PhotoSizes Telegram would produce, smallest first."""
    side = max(width, height)
    plan = [scaled(width, height, box) for box in PHOTO_BOXES if side > box and box < MAX_PHOTO_SIDE]
    plan.append(scaled(width, height, MAX_PHOTO_SIDE))
    return plan


def resize_image(data: bytes, width: int, height: int) -> bytes:
    """JPEG-encode ``data`` resized to (width, height); returns the input if it is no image."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (width, height))
            resized = img.convert("RGB").resize((width, height))
            buf = io.BytesIO()
            resized.save(buf, format="JPEG", quality=85)
            return buf.getvalue()
    except Exception:
        return data


def probe_mp4(data: bytes) -> tuple[int, int, int] | None:
    """Best effort (width, height, duration seconds) from an MP4/MOV header."""
    try:
        moov = _find_box(data, 0, len(data), b"moov")
        if moov is None:
            return None
        start, end = moov
        duration = 0
        mvhd = _find_box(data, start, end, b"mvhd")
        if mvhd:
            s = mvhd[0]
            version = data[s]
            if version == 1:
                timescale, dur = struct.unpack(">IQ", data[s + 20 : s + 32])
            else:
                timescale, dur = struct.unpack(">II", data[s + 12 : s + 20])
            duration = round(dur / timescale) if timescale else 0
        pos = start
        while True:
            trak = _find_box(data, pos, end, b"trak")
            if trak is None:
                break
            tkhd = _find_box(data, trak[0], trak[1], b"tkhd")
            if tkhd:
                s = tkhd[0]
                off = 88 if data[s] == 1 else 76
                w, h = struct.unpack(">II", data[s + off : s + off + 8])
                if w and h:
                    return w >> 16, h >> 16, duration
            pos = trak[1]
        return None if not duration else (0, 0, duration)
    except Exception:
        return None


def _find_box(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    """(payload start, box end) of the first box of ``kind`` in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, box = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header:
            return None
        if box == kind:
            return pos + header, min(pos + size, end)
        pos += size
    return None


def guess_mime(file_name: str | None, data: bytes | None = None, default: str = "application/octet-stream") -> str:
    """MIME type from a file name, falling back to sniffing images."""
    if file_name:
        guessed, _ = mimetypes.guess_type(file_name)
        if guessed:
            return guessed
    if data:
        info = probe_image(data)
        if info:
            return info.mime_type
        if data[4:8] == b"ftyp":
            return "video/mp4"
    return default


def extension_for(mime_type: str | None, default: str = "bin") -> str:
    """A file extension for a MIME type."""
    if not mime_type:
        return default
    special = {"image/jpeg": "jpg", "video/mp4": "mp4", "audio/ogg": "oga", "image/webp": "webp"}
    if mime_type in special:
        return special[mime_type]
    ext = mimetypes.guess_extension(mime_type)
    return ext.lstrip(".") if ext else default


def sample_image(
    width: int = 640, height: int = 480, fmt: str = "PNG", color: tuple[int, int, int] = (40, 120, 200)
) -> bytes:
    """A small generated image (for tests that just need "a photo")."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format=fmt)
    return buf.getvalue()


def sample_mp4(width: int = 320, height: int = 240, duration: int = 3) -> bytes:
    """A minimal MP4 header (ftyp + moov/mvhd/trak/tkhd) carrying width, height and duration."""
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2mp41")
    mvhd_payload = bytes(4) + struct.pack(">IIII", 0, 0, 1000, duration * 1000) + bytes(80)
    tkhd_payload = bytes(4) + bytes(72) + struct.pack(">II", width << 16, height << 16)
    trak = _box(b"trak", _box(b"tkhd", tkhd_payload))
    moov = _box(b"moov", _box(b"mvhd", mvhd_payload) + trak)
    return ftyp + moov


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", len(payload) + 8, kind) + payload
