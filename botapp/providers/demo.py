"""An offline provider for development and the local sandbox.

Images are drawn with Pillow from the prompt (a gradient and pattern seeded by the prompt's hash,
the prompt as text, a "DEMO" badge, the requested aspect ratio); with input images it makes a tinted
collage of them, so "editing" visibly uses them. Videos are an animated version of that image,
encoded to H.264 MP4 (yuv420p, faststart) with imageio-ffmpeg.

Video is long-running like Veo: `submit` returns `demo-op-<submit ms>-<uuid>` and `poll` is done once
`delay_seconds` have passed since the submit time encoded in the id (stateless across processes).

The options Google's models take show: an image's resolution ("1K" / "2K" / "4K") sets its size
(768 / 1152 / 1536 px on the long side) and its badge; a video's first frame tints it, a last frame
makes it fade into that frame's look, reference images appear as swatches, an extension is longer
than its source and says so. What a video needs from its inputs is summed up at submit time (mean
colours, the source's length) into the operation id, since the poll gets no photos (stateless).

A Gemini Omni request (a model id with "omni") gets what Omni gives: the requested 3-15 s (not the
short demo length), an extension of the seconds asked for (up to 30 s in all), 360p as a smaller
video, up to 6 reference swatches, and an edit by conversation (`previous_interaction_id`): the
instruction rendered in a night tint, mirrored and labelled EDIT (EDIT 2 for an edit of an edit).
Each Omni result carries a demo interaction id in `metadata["interaction_id"]`
(`demo-int-<edit depth>-<hex>`), so a clip can be edited by conversation with no keys.

Markers in the prompt simulate refusals: `[[safety]]` -> SafetyBlocked, `[[fail]]` -> PermanentError,
`[[busy]]` -> ProviderBusy (for videos these surface at poll time, like a late Veo rejection).
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import math
import os
import random
import tempfile
import textwrap
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from .base import (
    InvalidInput,
    MediaItem,
    PermanentError,
    PollOutcome,
    Provider,
    ProviderBusy,
    ProviderRequest,
    ProviderResult,
    SafetyBlocked,
    Submission,
)
from .media import probe_mp4

OPERATION_PREFIX = "demo-op-"
LOOK_SEPARATOR = "~"
IMAGE_LONG_SIDE = 768
IMAGE_SIZES = {"1K": 768, "2K": 1152, "4K": 1536}
EXTENSION_DEMO_SECONDS = 3.0  # what a demo extension adds (Veo: 7 s), to keep renders short
VIDEO_LONG_SIDE = 480
VIDEO_SIZES = {"360p": 320}  # a smaller video for the draft resolution; the others keep VIDEO_LONG_SIDE
VIDEO_FPS = 12
INTERACTION_PREFIX = "demo-int-"
OMNI_SECONDS = (3.0, 15.0)  # Gemini Omni's clips
OMNI_DEFAULT_SECONDS = 8.0
OMNI_EXTENSION_SECONDS = 5.0  # when the request does not say
OMNI_MAX_SECONDS = 30.0  # an extended Omni clip in all (the Gemini API's limit)
MAX_REFERENCES = 6
EDIT_TINT = (20, 30, 110)  # "make it night": an edit is visibly another take


# --------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------


def parse_ratio(value: object, default: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    """'16:9' -> (16, 9); anything invalid -> default."""
    try:
        w, h = (int(x) for x in str(value).split(":", 1))
        if 0 < w <= 100 and 0 < h <= 100:
            return w, h
    except (TypeError, ValueError):
        pass
    return default


def size_for_ratio(ratio: tuple[int, int], long_side: int) -> tuple[int, int]:
    """Even width/height with the given long side (even sizes suit yuv420p)."""
    w, h = ratio
    if w >= h:
        width, height = long_side, round(long_side * h / w)
    else:
        width, height = round(long_side * w / h), long_side
    return max(2, width // 2 * 2), max(2, height // 2 * 2)


def _seed(prompt: str) -> int:
    return int.from_bytes(hashlib.sha256(prompt.encode("utf-8")).digest()[:8], "big")


def _palette(seed: int) -> list[tuple[int, int, int]]:
    rng = random.Random(seed)
    hue = rng.random()
    colors = []
    for shift, sat, val in ((0.0, 0.55, 0.95), (0.12, 0.65, 0.75), (0.5, 0.45, 0.55)):
        r, g, b = colorsys.hsv_to_rgb((hue + shift) % 1.0, sat, val)
        colors.append((int(r * 255), int(g * 255), int(b * 255)))
    return colors


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "Arial.ttf", "LiberationSans-Regular.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def _background(size: tuple[int, int], seed: int) -> Image.Image:
    """A diagonal gradient with soft circles, seeded."""
    width, height = size
    c1, c2, c3 = _palette(seed)
    rng = random.Random(seed)
    angle = rng.random() * math.pi
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (xs * math.cos(angle) + ys * math.sin(angle)) / max(1.0, (width + height) / 1.4)
    t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
    a, b = np.array(c1, np.float32), np.array(c2, np.float32)
    rgb = a[None, None, :] * (1 - t[..., None]) + b[None, None, :] * t[..., None]
    image = Image.fromarray(rgb.clip(0, 255).astype(np.uint8), "RGB")
    overlay = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for _ in range(7):
        r = rng.uniform(0.08, 0.3) * max(size)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        alpha = rng.randint(40, 90)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(*c3, alpha))
    overlay = overlay.filter(ImageFilter.GaussianBlur(max(2, max(size) // 60)))
    return Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")


def _collage(images: list[bytes], size: tuple[int, int], seed: int) -> Image.Image:
    """The input images tiled to fill `size`, tinted with the prompt's colour."""
    width, height = size
    decoded = []
    for data in images:
        try:
            with Image.open(io.BytesIO(data)) as im:
                decoded.append(ImageOps.exif_transpose(im).convert("RGB"))
        except Exception as exc:
            raise InvalidInput(f"cannot read an input image: {exc}", code="bad_image") from exc
    n = len(decoded)
    cols = math.ceil(math.sqrt(n)) if width >= height else max(1, math.floor(math.sqrt(n)))
    rows = math.ceil(n / cols)
    canvas = Image.new("RGB", size)
    for i, im in enumerate(decoded):
        row, col = divmod(i, cols)
        in_row = cols if row < rows - 1 else n - cols * (rows - 1)
        cell_w = width // in_row
        cell_h = height // rows
        x0 = col * cell_w
        tile = ImageOps.fit(im, (cell_w if col < in_row - 1 else width - x0, cell_h))
        canvas.paste(tile, (x0, row * cell_h))
    tint = Image.new("RGB", size, _palette(seed)[0])
    return Image.blend(canvas, tint, 0.3)


def _overlay_text(image: Image.Image, prompt: str, label: str = "DEMO") -> Image.Image:
    """The prompt in a translucent panel at the bottom and a DEMO badge at the top left."""
    width, height = image.size
    base = image.convert("RGBA")
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    short = min(width, height)
    text_size = max(10, short // 20)
    font = _font(text_size)
    chars = max(12, int(width / (text_size * 0.55)))
    lines = textwrap.wrap(" ".join(prompt.split()) or "(empty prompt)", width=chars)
    max_lines = max(2, (height // 3) // int(text_size * 1.3))
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], textwrap.shorten(" ".join(lines[max_lines - 1 :]), chars, placeholder="…")]
    line_h = int(text_size * 1.3)
    pad = max(6, short // 40)
    panel_h = line_h * len(lines) + 2 * pad
    draw.rectangle((0, height - panel_h, width, height), fill=(0, 0, 0, 140))
    for i, line in enumerate(lines):
        draw.text((pad, height - panel_h + pad + i * line_h), line, font=font, fill=(255, 255, 255, 235))
    badge_font = _font(max(10, short // 14))
    left, top, right, bottom = draw.textbbox((0, 0), label, font=badge_font)
    bw, bh = right - left + 2 * pad, bottom - top + 2 * pad
    draw.rounded_rectangle((pad, pad, pad + bw, pad + bh), radius=pad, fill=(220, 30, 60, 220))
    draw.text((2 * pad - left, 2 * pad - top), label, font=badge_font, fill=(255, 255, 255, 255))
    return Image.alpha_composite(base, layer).convert("RGB")


def render_image(
    prompt: str,
    *,
    aspect_ratio: object = "1:1",
    input_images: list[bytes] | None = None,
    long_side: int = IMAGE_LONG_SIDE,
    label: str = "DEMO",
) -> Image.Image:
    """The demo picture for a prompt (and optional input images)."""
    seed = _seed(prompt)
    size = size_for_ratio(parse_ratio(aspect_ratio), long_side)
    image = _collage(input_images, size, seed) if input_images else _background(size, seed)
    return _overlay_text(image, prompt, label)


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=3)
    return buffer.getvalue()


def encode_mp4(frames: list[np.ndarray], fps: int = VIDEO_FPS) -> bytes:
    """H.264 / yuv420p / +faststart MP4 from RGB frames (even sizes), via imageio-ffmpeg."""
    import imageio.v2 as imageio

    fd, path = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        writer = imageio.get_writer(
            path,
            format="FFMPEG",
            mode="I",
            fps=fps,
            codec="libx264",
            pixelformat="yuv420p",
            macro_block_size=2,
            ffmpeg_log_level="error",
            output_params=["-movflags", "+faststart", "-preset", "veryfast", "-crf", "26"],
        )
        try:
            for frame in frames:
                writer.append_data(frame)
        finally:
            writer.close()
        with open(path, "rb") as f:
            return f.read()
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


Colour = tuple[int, int, int]


def mean_colour(data: bytes) -> Colour | None:
    """An image's mean colour, or None when it cannot be read."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return tuple(im.convert("RGB").resize((1, 1), Image.BILINEAR).getpixel((0, 0)))  # type: ignore[return-value]
    except Exception:
        return None


def _tinted(image: Image.Image, colour: Colour | None, amount: float = 0.45) -> Image.Image:
    return image if colour is None else Image.blend(image, Image.new("RGB", image.size, colour), amount)


def _swatches(image: Image.Image, colours: list[Colour]) -> Image.Image:
    """Small squares of the reference images' colours in the top right corner."""
    if not colours:
        return image
    image = image.copy()
    draw = ImageDraw.Draw(image)
    side = max(8, min(image.size) // 8)
    pad = max(4, side // 4)
    for i, colour in enumerate(colours):
        x1 = image.width - pad - i * (side + pad)
        draw.rectangle((x1 - side, pad, x1, pad + side), fill=colour, outline=(255, 255, 255), width=2)
    return image


def render_video(
    prompt: str,
    *,
    aspect_ratio: object = "16:9",
    input_images: list[bytes] | None = None,
    seconds: float = 3.0,
    fps: int = VIDEO_FPS,
    long_side: int = VIDEO_LONG_SIDE,
    tint: Colour | None = None,
    end_image: bytes | None = None,
    end_tint: Colour | None = None,
    swatches: list[Colour] | None = None,
    label: str = "DEMO",
    edit: bool = False,
) -> bytes:
    """A slow zoom-and-pan over the demo image with a moving progress bar, as MP4 bytes.

    `tint`: the first frame's colour; `end_image` / `end_tint`: a last frame the video fades into;
    `swatches`: reference images' colours shown in a corner; `label`: the badge; `edit`: an edit by
    conversation (mirrored, in a night tint)."""
    ratio = parse_ratio(aspect_ratio, (16, 9))
    width, height = size_for_ratio(ratio, long_side)
    zoom = 1.25
    big_side = int(long_side * zoom) // 2 * 2
    ratio_text = f"{ratio[0]}:{ratio[1]}"
    start = render_image(prompt, aspect_ratio=ratio_text, input_images=input_images, long_side=big_side, label=label)
    if edit:  # another take of the scene: mirrored, in a night tint, then the instruction and badge
        seed = _seed(prompt)
        base = _collage(input_images, start.size, seed) if input_images else _background(start.size, seed)
        start = _overlay_text(ImageOps.mirror(_tinted(base, EDIT_TINT, 0.55)), prompt, label)
    big_arr = np.asarray(_swatches(_tinted(start, tint), swatches or []))
    end_arr = None
    if end_image is not None or end_tint is not None:
        end = render_image(
            prompt, aspect_ratio=ratio_text, input_images=[end_image] if end_image else None, long_side=big_side
        )
        end_arr = np.asarray(_swatches(_tinted(end, end_tint, 0.7), swatches or []))
    bh, bw = big_arr.shape[:2]
    count = max(2, round(seconds * fps))
    frames = []
    for i in range(count):
        t = i / (count - 1)
        scale = zoom - (zoom - 1.0) * 0.8 * t  # zoom out over time
        cw, ch = min(bw, int(width * scale)), min(bh, int(height * scale))
        x0 = int((bw - cw) * (0.5 + 0.5 * math.sin(2 * math.pi * t) * 0.8))
        y0 = int((bh - ch) * t)
        window = big_arr[y0 : y0 + ch, x0 : x0 + cw]
        if end_arr is not None:  # fade from the first frame's look into the last frame's
            window = (window * (1 - t) + end_arr[y0 : y0 + ch, x0 : x0 + cw] * t).astype(np.uint8)
        crop = Image.fromarray(window).resize((width, height), Image.BILINEAR)
        frame = np.array(crop)
        bar = max(2, height // 60)
        frame[height - bar :, : max(1, int(width * (i + 1) / count))] = (255, 255, 255)
        frames.append(frame)
    return encode_mp4(frames, fps)


# --------------------------------------------------------------------------------------------
# Provider
# --------------------------------------------------------------------------------------------


def _check_markers(prompt: str) -> None:
    lowered = prompt.lower()
    if "[[safety]]" in lowered:
        raise SafetyBlocked("DEMO_SAFETY", "demo: the prompt asked for a safety block")
    if "[[busy]]" in lowered:
        raise ProviderBusy("demo: the prompt asked for a busy provider")
    if "[[fail]]" in lowered:
        raise PermanentError("demo: the prompt asked for a failure", code="no_image")


class DemoProvider(Provider):
    """Offline images and videos; video is long-running with a stateless, time-based operation id."""

    name: ClassVar[str] = "demo"

    def __init__(self, *, delay_seconds: float = 3.0, video_seconds: float | None = None) -> None:
        self.delay_seconds = delay_seconds
        self.video_seconds = video_seconds

    def submit(self, req: ProviderRequest) -> Submission:
        if req.kind == "image":
            _check_markers(req.prompt)
            return Submission.done(self._image(req))
        if req.kind == "video":
            submitted_ms = int(time.time() * 1000)
            look = VideoLook.of(req, omni=is_omni(req)).encode()
            suffix = f"{LOOK_SEPARATOR}{look}" if look else ""
            return Submission.pending(f"{OPERATION_PREFIX}{submitted_ms}-{uuid.uuid4().hex}{suffix}")
        raise InvalidInput(f"unknown kind {req.kind!r}", code="wrong_kind")

    def poll(self, operation_id: str, req: ProviderRequest) -> PollOutcome:
        submitted_ms = self.submitted_at_ms(operation_id)
        elapsed = time.time() - submitted_ms / 1000
        if elapsed < self.delay_seconds:
            progress = 100.0 * max(0.0, elapsed) / self.delay_seconds if self.delay_seconds else None
            return PollOutcome.pending(progress)
        _check_markers(req.prompt)
        return PollOutcome.done(self._video(req, operation_id))

    @staticmethod
    def submitted_at_ms(operation_id: str) -> int:
        """The submit time (ms since the epoch) encoded in a demo operation id."""
        if not operation_id.startswith(OPERATION_PREFIX):
            raise PermanentError(f"not a demo operation id: {operation_id!r}", code="no_operation")
        try:
            return int(operation_id[len(OPERATION_PREFIX) :].split("-", 1)[0])
        except ValueError as exc:
            raise PermanentError(f"bad demo operation id: {operation_id!r}", code="no_operation") from exc

    def _image(self, req: ProviderRequest) -> ProviderResult:
        count = max(1, min(4, int(req.params.get("number_of_images") or 1)))
        resolution = str(req.params.get("resolution") or "").upper()
        media = []
        for i in range(count):
            prompt = req.prompt if i == 0 else f"{req.prompt} #{i + 1}"
            image = render_image(
                prompt,
                aspect_ratio=req.params.get("aspect_ratio") or "1:1",
                input_images=[img.data for img in req.input_images] or None,
                long_side=IMAGE_SIZES.get(resolution, IMAGE_LONG_SIDE),
                label=f"DEMO {resolution}" if resolution in IMAGE_SIZES else "DEMO",
            )
            media.append(
                MediaItem(mime_type="image/png", data=encode_png(image), width=image.width, height=image.height)
            )
        return ProviderResult(
            media=media,
            text=None,
            metadata={
                "provider": self.name,
                "provider_model_id": req.provider_model_id,
                "request_id": req.request_id,
                "input_images": len(req.input_images),
                "resolution": resolution or None,
            },
            is_demo=True,
        )

    def _video(self, req: ProviderRequest, operation_id: str) -> ProviderResult:
        look = VideoLook.decode(operation_id)
        omni = is_omni(req)
        requested = req.params.get("duration_seconds")
        seconds = self.video_seconds or min(4.0, max(2.0, float(requested or 4)))
        if omni and not self.video_seconds:  # Omni's 3-15 s, as asked
            seconds = min(OMNI_SECONDS[1], max(OMNI_SECONDS[0], float(requested or OMNI_DEFAULT_SECONDS)))
        if look.extends is not None:  # the whole clip: the source's length and a little more
            added = float(requested or OMNI_EXTENSION_SECONDS) if omni else EXTENSION_DEMO_SECONDS
            seconds = min(OMNI_MAX_SECONDS, look.extends + added)
        resolution = str(req.params.get("resolution") or "")
        edit = f"EDIT {look.edit}" if look.edit and look.edit > 1 else "EDIT" if look.edit else ""
        words = ("DEMO", resolution, "extended" if look.extends is not None else "", edit)
        badge = " ".join(word for word in words if word)
        data = render_video(
            req.prompt,
            aspect_ratio=req.params.get("aspect_ratio") or "16:9",
            # the photos themselves when the caller still has them, else their colours from submit time
            input_images=[img.data for img in (req.input_images[:1] or req.reference_images)] or None,
            seconds=seconds,
            tint=None if req.input_images else look.first,
            end_image=req.last_frame.data if req.last_frame is not None else None,
            end_tint=look.last if req.last_frame is None else None,
            swatches=list(look.references),
            label=badge,
            long_side=VIDEO_SIZES.get(resolution.lower(), VIDEO_LONG_SIDE),
            edit=bool(look.edit),
        )
        info = probe_mp4(data)
        metadata = {
            "provider": self.name,
            "provider_model_id": req.provider_model_id,
            "request_id": req.request_id,
            "operation_name": operation_id,
            "inputs": look.summary(),
            "resolution": resolution or None,
            "generate_audio": req.params.get("generate_audio"),
            "label": badge,
        }
        if omni:
            metadata["interaction_id"] = demo_interaction_id(operation_id, look.edit or 0)
            metadata["previous_interaction_id"] = req.previous_interaction_id
            metadata["task"] = look.task()
        return ProviderResult(
            media=[
                MediaItem(
                    mime_type="video/mp4",
                    data=data,
                    width=info.width if info else None,
                    height=info.height if info else None,
                    duration=info.duration if info else seconds,
                )
            ],
            metadata=metadata,
            is_demo=True,
        )


def is_omni(req: ProviderRequest) -> bool:
    """A Gemini Omni request (its model id says so): the demo gives what Omni gives."""
    return "omni" in (req.provider_model_id or "").lower()


def demo_interaction_id(operation_id: str, edit: int = 0) -> str:
    """The demo interaction id of a demo Omni clip: `demo-int-<edit depth>-<the operation's hex>`."""
    hex_part = operation_id.partition(LOOK_SEPARATOR)[0].rsplit("-", 1)[-1]
    return f"{INTERACTION_PREFIX}{edit}-{hex_part}"


def edit_depth(previous_interaction_id: str | None) -> int | None:
    """How many edits deep a turn that edits `previous_interaction_id` is: a demo interaction's
    depth + 1, 1 for any other id (a real Google one), None without one."""
    if not previous_interaction_id:
        return None
    if previous_interaction_id.startswith(INTERACTION_PREFIX):
        depth = previous_interaction_id[len(INTERACTION_PREFIX) :].split("-", 1)[0]
        if depth.isdigit():
            return int(depth) + 1
    return 1


@dataclass(frozen=True)
class VideoLook:
    """What a demo video shows of its inputs, kept in the operation id between submit and poll:
    the first and last frames' colours, the references' colours, the extended source's length, how
    many edits deep an edit by conversation is."""

    first: Colour | None = None
    last: Colour | None = None
    references: tuple[Colour, ...] = ()
    extends: float | None = None
    edit: int | None = None

    @classmethod
    def of(cls, req: ProviderRequest, *, omni: bool = False) -> VideoLook:
        source = probe_mp4(req.source_video.data) if req.source_video is not None else None
        return cls(
            first=mean_colour(req.input_images[0].data) if req.input_images else None,
            last=mean_colour(req.last_frame.data) if req.last_frame is not None else None,
            references=tuple(c for c in (mean_colour(i.data) for i in req.reference_images[:MAX_REFERENCES]) if c),
            extends=(source.duration if source else 0.0) if req.source_video is not None else None,
            edit=edit_depth(req.previous_interaction_id) if omni and req.source_video is None else None,
        )

    def task(self) -> str:
        """Omni's video task for these inputs."""
        if self.extends is not None:
            return "extend"
        if self.edit:
            return "edit"
        if self.references:
            return "reference_to_video"
        return "image_to_video" if self.first else "text_to_video"

    def encode(self) -> str:
        parts = []
        if self.first:
            parts.append(f"f{_hex(self.first)}")
        if self.last:
            parts.append(f"l{_hex(self.last)}")
        if self.references:
            parts.append("r" + ".".join(map(_hex, self.references)))
        if self.extends is not None:
            parts.append(f"x{self.extends:.2f}")
        if self.edit:
            parts.append(f"e{self.edit}")
        return "_".join(parts)

    @classmethod
    def decode(cls, operation_id: str) -> VideoLook:
        _, _, text = operation_id.partition(LOOK_SEPARATOR)
        values: dict = {}
        try:
            for part in filter(None, text.split("_")):
                key, value = part[0], part[1:]
                if key == "f":
                    values["first"] = _colour(value)
                elif key == "l":
                    values["last"] = _colour(value)
                elif key == "r":
                    values["references"] = tuple(_colour(v) for v in value.split("."))
                elif key == "x":
                    values["extends"] = float(value)
                elif key == "e":
                    values["edit"] = int(value)
        except ValueError:
            return cls()  # an id from elsewhere: a plain video
        return cls(**values)

    def summary(self) -> dict:
        return {
            "first_frame": self.first is not None,
            "last_frame": self.last is not None,
            "reference_images": len(self.references),
            "extension": self.extends is not None,
            **({"edit": self.edit} if self.edit else {}),
        }


def _hex(colour: Colour) -> str:
    return "".join(f"{c:02x}" for c in colour)


def _colour(text: str) -> Colour:
    if len(text) != 6:
        raise ValueError(text)
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
