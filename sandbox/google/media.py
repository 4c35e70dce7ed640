"""The fake's media: a small PNG per prompt (stripes of the input images, PNG text chunks) and small
real H.264 MP4s (generated once per shape and cached)."""

from __future__ import annotations

import base64
import hashlib
import io
import threading


def parse_ratio(aspect: str | None, default: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in str(aspect).split(":", 1))
        if w > 0 and h > 0:
            return w, h
    except (TypeError, ValueError):
        pass
    return default


def make_png(prompt: str, aspect: str | None, inputs: list[bytes], long_side: int = 64) -> bytes:
    """A small PNG: the prompt's colour, one stripe per input image (its mean colour), text chunks."""
    from PIL import Image, ImageDraw, PngImagePlugin

    w, h = parse_ratio(aspect)
    width = long_side if w >= h else max(1, round(long_side * w / h))
    height = long_side if h >= w else max(1, round(long_side * h / w))
    digest = hashlib.sha256(prompt.encode()).digest()
    image = Image.new("RGB", (width, height), tuple(digest[:3]))
    if inputs:
        draw = ImageDraw.Draw(image)
        stripe = max(1, width // len(inputs))
        for i, data in enumerate(inputs):
            try:
                with Image.open(io.BytesIO(data)) as im:
                    colour = im.convert("RGB").resize((1, 1)).getpixel((0, 0))
            except Exception:
                colour = (255, 0, 255)
            draw.rectangle((i * stripe, height // 2, (i + 1) * stripe - 1, height - 1), fill=colour)
    info = PngImagePlugin.PngInfo()
    info.add_text("fake-google", "1")
    info.add_text("fake-inputs", str(len(inputs)))
    info.add_text("fake-aspect", f"{w}:{h}")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


_video_cache: dict[str, bytes] = {}
_video_lock = threading.Lock()


def fake_video(aspect: str | None = "16:9") -> bytes:
    """A small real MP4 (1 s, 8 fps, 128x72 or 72x128), generated once per orientation."""
    key = "9:16" if parse_ratio(aspect, (16, 9))[0] < parse_ratio(aspect, (16, 9))[1] else "16:9"
    cached = _video_cache.get(key)
    if cached is not None:
        return cached
    with _video_lock:
        cached = _video_cache.get(key)
        if cached is None:
            import numpy as np

            from botapp.providers.demo import encode_mp4

            width, height = (128, 72) if key == "16:9" else (72, 128)
            frames = []
            for i in range(8):
                frame = np.zeros((height, width, 3), np.uint8)
                frame[..., 0] = 40 + i * 25
                frame[..., 2] = 200 - i * 20
                frame[:, : (i + 1) * width // 8, 1] = 220
                frames.append(frame)
            cached = encode_mp4(frames, fps=8)
            _video_cache[key] = cached
    return cached


_b64_cache: dict[int, str] = {}


def b64_cached(data: bytes) -> str:
    """Base64 of the (few, cached) fake videos, computed once each."""
    key = id(data)
    found = _b64_cache.get(key)
    if found is None:
        found = base64.b64encode(data).decode()
        _b64_cache[key] = found
    return found
