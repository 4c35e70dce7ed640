"""The user's photos for the provider: downloaded from Telegram (or read from our storage, for a
result the user edits or animates) and checked with Pillow before anything is sent to Google."""

from __future__ import annotations

import io

from django.conf import settings
from django.core.files.storage import default_storage

from botapp.models import GenRequest
from botapp.providers import InputImage, ProviderRequest
from botapp.redaction import error_text
from botapp.telegram.sender import FileTooLarge, SendRejected, get_sender

INPUT_IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MAX_INPUT_PIXELS = 40_000_000


class InputImageError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def build_provider_request(request: GenRequest, *, with_images: bool) -> ProviderRequest:
    ai_model = request.ai_model
    images = [fetch_input_image(meta) for meta in (request.input_images or [])] if with_images else []
    return ProviderRequest(
        provider_model_id=ai_model.provider_model_id if ai_model else request.model,
        kind=request.kind,
        prompt=request.prompt,
        negative_prompt=request.negative_prompt or None,
        input_images=images,
        params=dict(request.params or {}),
        backend=(ai_model.api_backend or None) if ai_model else None,
        request_id=str(request.pk),
    )


def fetch_input_image(meta: dict) -> InputImage:
    limit = settings.MAX_INPUT_IMAGE_BYTES
    size = meta.get("size") or 0
    if size and int(size) > limit:
        raise InputImageError("input_image_too_large", f"input photo of {size} bytes, limit {limit}")
    if meta.get("path"):  # one of our stored results
        try:
            with default_storage.open(meta["path"], "rb") as fh:
                data = fh.read(limit + 1)
        except OSError as exc:
            raise InputImageError("input_image_unavailable", f"stored image {meta['path']}: {error_text(exc)}") from exc
    else:
        sender = get_sender()
        if sender is None or not meta.get("file_id"):
            raise InputImageError("input_image_unavailable", "no Telegram bot to download the input photo")
        try:
            data = sender.download(meta["file_id"], max_bytes=min(limit, settings.TELEGRAM_DOWNLOAD_LIMIT_BYTES))
        except FileTooLarge as exc:
            raise InputImageError("input_image_too_large", error_text(exc)) from exc
        except SendRejected as exc:  # an unknown file_id, or the file server's 4xx
            raise InputImageError("input_image_unavailable", f"download refused: {error_text(exc)}") from exc
    if len(data) > limit:
        raise InputImageError("input_image_too_large", f"input photo over {limit} bytes")
    return InputImage(data=data, mime_type=check_image(data))


def check_image(data: bytes) -> str:
    """The image's MIME type if Pillow can read all of it and Google accepts the format."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            width, height = im.size
            if width * height > MAX_INPUT_PIXELS:
                raise InputImageError("input_image_too_large", f"input photo of {width}x{height} pixels")
            im.verify()
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # verify() does not decode the pixels; a truncated file fails here
    except InputImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputImageError("input_image_too_large", str(exc)) from exc
    except Exception as exc:
        raise InputImageError("input_image_invalid", f"unreadable input photo: {error_text(exc)}") from exc
    if fmt not in INPUT_IMAGE_FORMATS:
        raise InputImageError("input_image_invalid", f"unsupported input photo format {fmt}")
    return INPUT_IMAGE_FORMATS[fmt]
