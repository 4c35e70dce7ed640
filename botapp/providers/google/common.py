"""What the Google providers share: the request parameters they read, input image checks, and
`GoogleProvider` (backend choice, the cached client, error mapping and logging around each call, the
download of a video Google answered with a URI)."""

from __future__ import annotations

import logging
import re
import time
from typing import Any, ClassVar
from urllib.parse import urlparse

import httpx

from ..base import (
    InputImage,
    InputVideo,
    InvalidInput,
    PermanentError,
    Provider,
    ProviderBusy,
    ProviderError,
    ProviderRequest,
    RateLimited,
)
from .client import GEMINI, VERTEX, GoogleConfig, get_client
from .errors import map_exception

logger = logging.getLogger(__name__)
POLLS = frozenset({"operations.get", "interactions.get"})  # the calls that ask a running operation how it goes

_RATIO = re.compile(r"^\d{1,2}:\d{1,2}$")
_KEY_PARAMETER = re.compile(r"([?&](?:key|api_key)=)[^&\s'\"]+", re.IGNORECASE)


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
        """`fn()`, timed and logged; an exception mapped to a typed ProviderError without secrets."""
        started = time.monotonic()
        try:
            result = fn()
        except Exception as exc:
            mapped = self._scrub(map_exception(exc, context=self.method_label))
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
        # A poll answers many times a second with many videos in flight: at DEBUG (its failures stay warnings).
        logger.log(
            logging.DEBUG if what in POLLS else logging.INFO,
            "google %s: request=%s model=%s backend=%s in %.2fs",
            what,
            req.request_id,
            req.provider_model_id,
            backend,
            time.monotonic() - started,
        )
        return result

    def _scrub(self, error: ProviderError) -> ProviderError:
        """The error with this config's API keys, and any `key=` URL parameter, out of its message
        (the process-wide `redact` knows the keys of Django's settings, not a config's)."""
        text = error.message
        for key in (self.config.api_key, self.config.vertex_api_key):
            if key and len(key) >= 4:
                text = text.replace(key, "[redacted]")
        text = _KEY_PARAMETER.sub(r"\1[redacted]", text)
        if text != error.message:
            error.message = text
            error.args = (text,)
        return error

    def _base_metadata(self, req: ProviderRequest, backend: str) -> dict[str, Any]:
        return {
            "provider": self.name,
            "provider_model_id": req.provider_model_id,
            "backend": backend,
            "request_id": req.request_id,
        }

    def _download(self, uri: str, backend: str, req: ProviderRequest) -> bytes:
        """A video Google answered with an http(s) URI. The API key goes only to a Google host or the
        configured base URL's host; messages name the URI without its query (it may carry a key)."""
        headers: dict[str, str] = {}
        key = self.config.api_key if backend == GEMINI else self.config.vertex_api_key
        base = self.config.gemini_base_url if backend == GEMINI else self.config.vertex_base_url
        host = urlparse(uri).hostname or ""
        trusted = host.endswith(".googleapis.com") or (base and urlparse(base).hostname == host)
        if key and trusted:
            headers["x-goog-api-key"] = key
        started = time.monotonic()
        try:
            response = httpx.get(uri, headers=headers, timeout=self.config.download_timeout, follow_redirects=True)
        except Exception as exc:
            raise map_exception(exc) from exc
        if response.status_code == 429:
            raise RateLimited(f"video download rate-limited ({_without_query(uri)})")
        if response.status_code >= 500:
            raise ProviderBusy(f"video download failed: HTTP {response.status_code}", code="download_failed")
        if response.status_code != 200:
            raise PermanentError(
                f"video download failed: HTTP {response.status_code} for {_without_query(uri)}", code="download_failed"
            )
        logger.info(
            "google video downloaded: request=%s %d bytes in %.2fs",
            req.request_id,
            len(response.content),
            time.monotonic() - started,
        )
        return response.content


def _without_query(uri: str) -> str:
    return uri.split("?", 1)[0]


def expect_kind(req: ProviderRequest, kind: str, provider: str) -> None:
    if req.kind != kind:
        raise InvalidInput(f"{provider} generates {kind}s, not {req.kind}s", code="wrong_kind")
    if not req.provider_model_id:
        raise PermanentError("provider_model_id is empty", code="model_not_found")
