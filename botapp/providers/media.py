"""Tiny media helpers shared by providers and tests: MP4 header probing (no ffprobe needed)."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"udta"}


@dataclass(frozen=True, slots=True)
class Mp4Info:
    """What the MP4 header says: duration (s), the first video track's size, box order, and whether
    a track is a sound track (a `soun` handler)."""

    duration: float
    width: int | None
    height: int | None
    faststart: bool  # `moov` before `mdat`: playable while downloading
    brand: str
    has_audio: bool = False


def _boxes(data: bytes, start: int, end: int):
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def probe_mp4(data: bytes) -> Mp4Info | None:
    """Parse `ftyp`/`moov/mvhd`/`tkhd` of an MP4; None if the bytes are not an MP4."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return None
    brand = data[8:12].decode("latin-1", "replace")
    duration: float | None = None
    width = height = None
    has_audio = False
    order: list[bytes] = []

    def walk(start: int, end: int, depth: int) -> None:
        nonlocal duration, width, height, has_audio
        for kind, body, stop in _boxes(data, start, end):
            if depth == 0:
                order.append(kind)
            if kind == b"mvhd":
                version = data[body]
                if version == 1:
                    timescale, dur = struct.unpack(">IQ", data[body + 20 : body + 32])
                else:
                    timescale, dur = struct.unpack(">II", data[body + 12 : body + 20])
                if timescale:
                    duration = dur / timescale
            elif kind == b"tkhd" and width is None:
                version = data[body]
                offset = body + (88 if version == 1 else 76)
                if offset + 8 <= stop:
                    w, h = struct.unpack(">II", data[offset : offset + 8])
                    if w and h:
                        width, height = w >> 16, h >> 16
            elif kind == b"hdlr" and body + 12 <= stop:
                has_audio = has_audio or data[body + 8 : body + 12] == b"soun"  # version+flags, pre_defined, type
            elif kind in _CONTAINERS:
                walk(body, stop, depth + 1)

    walk(0, len(data), 0)
    if duration is None:
        return None
    faststart = b"moov" in order and (b"mdat" not in order or order.index(b"moov") < order.index(b"mdat"))
    return Mp4Info(duration=duration, width=width, height=height, faststart=faststart, brand=brand, has_audio=has_audio)


def image_size(data: bytes) -> tuple[int | None, int | None]:
    """(width, height) of an image, or (None, None) when Pillow cannot read it."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception:
        return None, None
