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


IMAGE_SIZE_SCALE = {"512": 0.5, "1K": 1, "2K": 2, "4K": 4}


def make_png(
    prompt: str, aspect: str | None, inputs: list[bytes], long_side: int = 64, image_size: str | None = None
) -> bytes:
    """A small PNG: the prompt's colour, one stripe per input image (its mean colour), text chunks
    (`fake-inputs`, `fake-aspect`, `fake-size`). `image_size` ("1K", "2K", "4K") scales the long side
    (x1, x2, x4) so a 4K answer is visibly larger."""
    from PIL import Image, ImageDraw, PngImagePlugin

    long_side = max(1, round(long_side * IMAGE_SIZE_SCALE.get(image_size or "1K", 1)))
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
    info.add_text("fake-size", image_size or "")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


_video_cache: dict[tuple[str, int, bool, int], bytes] = {}
_video_lock = threading.Lock()


def fake_video(aspect: str | None = "16:9", seconds: int = 1, audio: bool = False, variant: int = 0) -> bytes:
    """A small real MP4, 128x72 or 72x128, generated once per (orientation, seconds, audio, variant):
    1 s at 8 fps (every ordinary Veo answer), or `seconds` long at 4 fps (an extension: the source
    and 7 s more; an Omni clip). `audio` adds an AAC sine track (Omni's native audio); `variant`
    shifts the colours (an Omni edit: each turn looks different)."""
    ratio = parse_ratio(aspect, (16, 9))
    key = ("9:16" if ratio[0] < ratio[1] else "16:9", max(1, int(seconds)), bool(audio), int(variant))
    cached = _video_cache.get(key)
    if cached is not None:
        return cached
    with _video_lock:
        cached = _video_cache.get(key)
        if cached is None:
            import numpy as np

            from botapp.providers.demo import encode_mp4

            width, height = (128, 72) if key[0] == "16:9" else (72, 128)
            fps = 8 if key[1] == 1 else 4
            count = fps * key[1]
            shift = key[3] * 90
            frames = []
            for i in range(count):
                frame = np.zeros((height, width, 3), np.uint8)
                frame[..., 0] = (40 + i * 25 + shift) % 256
                frame[..., 2] = (200 - i * 20 + shift) % 256
                frame[:, : (i % 8 + 1) * width // 8, 1] = 220
                frames.append(frame)
            cached = encode_mp4(frames, fps=fps)
            if key[2]:
                cached = _with_audio(cached, key[1])
            _video_cache[key] = cached
    return cached


def _with_audio(video: bytes, seconds: int) -> bytes:
    """The MP4 with a sine AAC track of `seconds` added (video stream copied), by imageio-ffmpeg."""
    import os
    import subprocess
    import tempfile

    import imageio_ffmpeg

    with tempfile.TemporaryDirectory(prefix="fake-google-") as folder:
        source, target = os.path.join(folder, "in.mp4"), os.path.join(folder, "out.mp4")
        with open(source, "wb") as f:
            f.write(video)
        subprocess.run(
            [
                imageio_ffmpeg.get_ffmpeg_exe(),
                "-hide_banner",
                "-loglevel",
                "error",
                "-nostdin",
                "-y",
                "-i",
                source,
                "-f",
                "lavfi",
                "-i",
                f"sine=frequency=440:sample_rate=16000:duration={seconds}",
                "-map",
                "0:v",
                "-map",
                "1:a",
                "-c:v",
                "copy",
                "-c:a",
                "aac",
                "-b:a",
                "32k",
                "-movflags",
                "+faststart",
                target,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        with open(target, "rb") as f:
            return f.read()


def video_seconds(data: bytes) -> float | None:
    """An MP4's duration (the header's), or None for anything else."""
    from botapp.providers.media import probe_mp4

    info = probe_mp4(data)
    return info.duration if info else None


_b64_cache: dict[int, str] = {}


def b64_cached(data: bytes) -> str:
    """Base64 of the (few, cached) fake videos, computed once each."""
    key = id(data)
    found = _b64_cache.get(key)
    if found is None:
        found = base64.b64encode(data).decode()
        _b64_cache[key] = found
    return found
