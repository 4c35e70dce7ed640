"""What the Google providers share: the request parameters they read, input image checks, and
`GoogleProvider` (backend choice, the cached client, error mapping and logging around each call)."""

from __future__ import annotations

import logging
import re
import time
from typing import Any, ClassVar

from ..base import InputImage, InputVideo, InvalidInput, PermanentError, Provider, ProviderRequest
from .client import GEMINI, VERTEX, GoogleConfig, get_client
from .errors import map_exception

logger = logging.getLogger(__name__)

_RATIO = re.compile(r"^\d{1,2}:\d{1,2}$")


def aspect_ratio_param(req: ProviderRequest) -> str | None:
    value = req.params.get("aspect_ratio")
    if value in (None, ""):
        return None
    value = str(value).strip()
    if not _RATIO.match(value):
        raise InvalidInput(f"unsupported aspect ratio {value!r}", code="unsupported_aspect_ratio")
    return value


def int_param(req: ProviderRequest, name: str) -> int | None:
    value = req.params.get(name)
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be an integer, got {value!r}") from exc
    if number <= 0:
        raise InvalidInput(f"{name} must be positive, got {number}")
    return number


def sniff_image_mime(data: bytes) -> str | None:
    """The image type from magic bytes (png, jpeg, webp, gif, heic), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1"):
        return "image/heic"
    return None


def checked_images(images: list[InputImage], what: str = "input image") -> list[InputImage]:
    """The images with their MIME type taken from their bytes; InvalidInput for an empty or non-image."""
    checked = []
    for i, image in enumerate(images):
        if not image.data:
            raise InvalidInput(f"{what} #{i + 1} is empty", code="bad_image")
        sniffed = sniff_image_mime(image.data)
        mime = sniffed or image.mime_type
        if not mime or not mime.startswith("image/"):
            raise InvalidInput(f"{what} #{i + 1} is not an image ({mime!r})", code="bad_image")
        checked.append(InputImage(image.data, mime))
    return checked


def checked_video(video: InputVideo) -> InputVideo:
    """A source video: not empty, and an MP4 / a video MIME type."""
    if not video.data:
        raise InvalidInput("the video to extend is empty", code="bad_video")
    mime = "video/mp4" if video.data[4:8] == b"ftyp" else video.mime_type
    if not mime or not mime.startswith("video/"):
        raise InvalidInput(f"the video to extend is not a video ({mime!r})", code="bad_video")
    return InputVideo(video.data, mime)


def str_param(req: ProviderRequest, name: str) -> str | None:
    value = req.params.get(name)
    return None if value in (None, "") else str(value).strip()


def dump_model(model: Any) -> Any:
    if model is None:
        return None
    try:
        return model.model_dump(mode="json", exclude_none=True)
    except Exception:
        return str(model)


class GoogleProvider(Provider):
    """Shared plumbing: backend choice, cached client, error mapping, logging."""

    default_to_vertex: ClassVar[bool] = False
    method_label: ClassVar[str] = "google"

    def __init__(self, config: GoogleConfig) -> None:
        self.config = config

    def backend_for(self, req: ProviderRequest) -> str:
        if req.backend in (GEMINI, VERTEX):
            return req.backend
        if req.backend:
            raise PermanentError(f"unknown backend {req.backend!r}", code="not_configured")
        return VERTEX if self.default_to_vertex else self.config.default_backend

    def client(self, backend: str) -> Any:
        return get_client(self.config, backend)

    def _call(self, req: ProviderRequest, backend: str, what: str, fn: Any) -> Any:
        started = time.monotonic()
        try:
            result = fn()
        except Exception as exc:
            mapped = map_exception(exc, context=self.method_label)
            logger.warning(
                "google %s failed: request=%s model=%s backend=%s after %.2fs: %r",
                what,
                req.request_id,
                req.provider_model_id,
                backend,
                time.monotonic() - started,
                mapped,
            )
            raise mapped from exc
        logger.info(
            "google %s: request=%s model=%s backend=%s in %.2fs",
            what,
            req.request_id,
            req.provider_model_id,
            backend,
            time.monotonic() - started,
        )
        return result

    def _base_metadata(self, req: ProviderRequest, backend: str) -> dict[str, Any]:
        return {
            "provider": self.name,
            "provider_model_id": req.provider_model_id,
            "backend": backend,
            "request_id": req.request_id,
        }


def expect_kind(req: ProviderRequest, kind: str, provider: str) -> None:
    if req.kind != kind:
        raise InvalidInput(f"{provider} generates {kind}s, not {req.kind}s", code="wrong_kind")
    if not req.provider_model_id:
        raise PermanentError("provider_model_id is empty", code="model_not_found")
