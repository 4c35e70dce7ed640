"""Google's checks of a request's fields, as the fake makes them: a request Google would refuse gets
HTTP 400 INVALID_ARGUMENT (the SDK raises `errors.ClientError`) with a message naming the field.

What a model accepts (aspect ratios, image sizes) comes from its id, as Google's model pages list it,
and a test may set it per model (`FakeGoogleServer.set_model_aspect_ratios`). Unknown ids (the tests'
"nano-banana-test") accept everything a current model of their family does.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .media import video_seconds
from .records import b64decode_any, instance_of

IMAGE_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
EXTREME_IMAGE_RATIOS = ("1:4", "4:1", "1:8", "8:1")  # Nano Banana 2 (gemini-3.1-flash-image)
IMAGEN_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
VEO_RATIOS = ("16:9", "9:16")
IMAGE_SIZES = ("1K", "2K", "4K")
VEO_RESOLUTIONS = ("720p", "1080p", "4k")
MAX_REFERENCE_IMAGES = 3
MAX_EXTENSION_SOURCE_SECONDS = 30  # Veo extends a clip of 1 to 30 s by 7 s
FULL_LENGTH_SECONDS = 8  # 1080p, 4k and reference images need 8 s


def default_aspect_ratios(action: str, model: str) -> tuple[str, ...]:
    if action == "predictLongRunning":
        return VEO_RATIOS
    if action == "predict":
        return IMAGEN_RATIOS
    if model.startswith(("gemini-2.5-flash-image", "gemini-3-pro-image")):
        return IMAGE_RATIOS
    return IMAGE_RATIOS + EXTREME_IMAGE_RATIOS


def image_sizes_for(model: str) -> tuple[str, ...]:
    return ("512", *IMAGE_SIZES) if model.startswith("gemini-3.1-flash-image") else IMAGE_SIZES


def video_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_generate_content(model: str, body: Any, ratios: tuple[str, ...]) -> str | None:
    """Why Google would refuse an image generateContent call, or None."""
    config = (body.get("generationConfig") or {}) if isinstance(body, dict) else {}
    image_config = config.get("imageConfig") or {}
    ratio = image_config.get("aspectRatio")
    if ratio is not None and ratio not in ratios:
        return f"Unsupported aspect ratio: {ratio}. Supported values: {', '.join(ratios)}."
    size = image_config.get("imageSize")
    if size is not None and size not in image_sizes_for(model):
        return f"Unsupported image size: {size}. Supported values: {', '.join(image_sizes_for(model))}."
    return None


def check_predict(body: Any, ratios: tuple[str, ...]) -> str | None:
    """Why Google would refuse an Imagen `:predict` call, or None."""
    ratio = ((body.get("parameters") or {}) if isinstance(body, dict) else {}).get("aspectRatio")
    if ratio is not None and ratio not in ratios:
        return f"Unsupported aspect ratio: {ratio}. Supported values: {', '.join(ratios)}."
    return None


def check_veo(body: Any, ratios: tuple[str, ...], produced: set[str]) -> str | None:
    """Why Google would refuse a Veo `:predictLongRunning` call, or None.

    `produced`: hashes of the videos this server made (only those may be extended)."""
    instance = instance_of(body)
    parameters = (body.get("parameters") or {}) if isinstance(body, dict) else {}
    image, last, video = instance.get("image"), instance.get("lastFrame"), instance.get("video")
    references = instance.get("referenceImages") or []
    duration = parameters.get("durationSeconds")
    resolution = parameters.get("resolution")
    ratio = parameters.get("aspectRatio")
    if references and (image or last or video):
        return "referenceImages cannot be combined with image, lastFrame or video."
    if last and not image:
        return "lastFrame is only supported together with image (the first frame)."
    if len(references) > MAX_REFERENCE_IMAGES:
        return f"At most {MAX_REFERENCE_IMAGES} referenceImages are supported, got {len(references)}."
    for reference in references:
        kind = str((reference or {}).get("referenceType") or "")
        if kind.upper() != "ASSET":
            return f"referenceType {kind or '(empty)'} is not supported by this model; use ASSET."
    if ratio is not None and ratio not in ratios:
        return f"Unsupported aspect ratio: {ratio}. Supported values: {', '.join(ratios)}."
    if resolution is not None and resolution not in VEO_RESOLUTIONS:
        return f"Unsupported resolution: {resolution}. Supported values: {', '.join(VEO_RESOLUTIONS)}."
    if resolution in ("1080p", "4k") and duration not in (None, FULL_LENGTH_SECONDS):
        return f"durationSeconds must be {FULL_LENGTH_SECONDS} for {resolution}, got {duration}."
    if references and duration not in (None, FULL_LENGTH_SECONDS):
        return f"durationSeconds must be {FULL_LENGTH_SECONDS} with referenceImages, got {duration}."
    if video:
        if resolution not in (None, "720p"):
            return f"Video extension is only supported at 720p, got {resolution}."
        data = b64decode_any(video["bytesBase64Encoded"]) if video.get("bytesBase64Encoded") else b""
        if not data or video_hash(data) not in produced:
            return "Video extension is only supported for videos generated by Veo."
        seconds = video_seconds(data) or 0
        if seconds > MAX_EXTENSION_SOURCE_SECONDS:
            return f"The input video must be at most {MAX_EXTENSION_SOURCE_SECONDS} seconds long, got {seconds:g}."
    return None
