"""Google providers on the official google-genai SDK (3.x): Nano Banana, Imagen, Veo.

Backends, as decided by the installed SDK (google-genai 3.4.0):

- `generate_content` (Nano Banana) works on both the Gemini API (API key) and Vertex AI.
- `generate_images` (Imagen) and `generate_videos` (Veo) raise `ValueError` before any request on
  the Gemini API: they need Vertex AI (express-mode API key, or project + location + ADC).
  Imagen and Veo therefore default to the Vertex backend; Nano Banana follows `GoogleConfig.use_vertex`.
- Veo operations are polled with `client.operations.get(GenerateVideosOperation(name=...))`:
  on Vertex that is `POST {resource}:fetchPredictOperation`; on the Gemini API `GET /{v}/{name}`.
  The backend of a poll is inferred from the operation name (`models/...` = Gemini API).

Video download: the providers never ask for a GCS output (`output_gcs_uri`), so Vertex returns the
video inline (`bytesBase64Encoded`). If a URI comes back instead, an `http(s)` URI is fetched with
httpx (the API key is only sent to Google hosts or the configured base URL's host); a `gs://` URI is
returned as `MediaItem(uri=..., data=None)` because the SDK cannot download from GCS.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlparse

import httpx
from google.genai import errors as genai_errors
from google.genai import types

from botapp.redaction import error_text, redact

from .base import (
    InputImage,
    InvalidInput,
    MediaItem,
    OperationTimeout,
    PermanentError,
    PollOutcome,
    Provider,
    ProviderBusy,
    ProviderError,
    ProviderRequest,
    ProviderResult,
    RateLimited,
    SafetyBlocked,
    Submission,
    Transient,
)
from .media import image_size

logger = logging.getLogger(__name__)

GEMINI = "gemini"
VERTEX = "vertex"


@dataclass(frozen=True)
class GoogleConfig:
    """Credentials and endpoints; one `genai.Client` is cached per (config, backend).

    - `api_key`: Gemini API key (AI Studio).
    - `use_vertex`: default backend for models whose `api_backend` is empty (Nano Banana).
    - Vertex: `vertex_api_key` (express mode) and/or `project` + `location` (with ADC or `credentials`).
    - `gemini_base_url` / `vertex_base_url`: endpoint overrides (the fake server in tests); when None
      the SDK also honours GOOGLE_GEMINI_BASE_URL / GOOGLE_VERTEX_BASE_URL.
    - `http_timeout`: seconds for one HTTP call; `download_timeout`: seconds for a video download.
    """

    api_key: str | None = None
    use_vertex: bool = False
    project: str | None = None
    location: str | None = None
    vertex_api_key: str | None = None
    gemini_base_url: str | None = None
    vertex_base_url: str | None = None
    http_timeout: float = 120.0
    download_timeout: float = 300.0
    credentials: Any = None  # google.auth credentials for project/location mode (else ADC)

    def __repr__(self) -> str:  # never print keys
        return (
            f"GoogleConfig(use_vertex={self.use_vertex}, project={self.project!r}, "
            f"location={self.location!r}, api_key={'set' if self.api_key else None}, "
            f"vertex_api_key={'set' if self.vertex_api_key else None}, "
            f"gemini_base_url={self.gemini_base_url!r}, vertex_base_url={self.vertex_base_url!r})"
        )

    @property
    def default_backend(self) -> str:
        return VERTEX if self.use_vertex else GEMINI


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------

_clients: dict[tuple[GoogleConfig, str], Any] = {}
_clients_lock = threading.Lock()


def get_client(config: GoogleConfig, backend: str) -> Any:
    """The cached `genai.Client` for a backend ("gemini" | "vertex"); raises PermanentError if unset."""
    key = (config, backend)
    client = _clients.get(key)
    if client is not None:
        return client
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _build_client(config, backend)
            _clients[key] = client
    return client


def clear_client_cache() -> None:
    """Forget cached clients (tests, or after a credentials change)."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        try:
            client.close()
        except Exception:  # pragma: no cover - best effort
            logger.debug("closing a genai client failed", exc_info=True)


def _build_client(config: GoogleConfig, backend: str) -> Any:
    from google import genai

    timeout_ms = int(config.http_timeout * 1000) if config.http_timeout else None
    try:
        if backend == GEMINI:
            if not config.api_key:
                raise PermanentError("the Gemini API backend needs an API key (GOOGLE_API_KEY)", code="not_configured")
            options = types.HttpOptions(base_url=config.gemini_base_url or None, timeout=timeout_ms)
            return genai.Client(vertexai=False, api_key=config.api_key, http_options=options)
        if backend == VERTEX:
            options = types.HttpOptions(base_url=config.vertex_base_url or None, timeout=timeout_ms)
            if config.vertex_api_key:
                # Express mode; with project AND location too, paths are project-scoped.
                scoped = bool(config.project and config.location)
                return genai.Client(
                    vertexai=True,
                    api_key=config.vertex_api_key,
                    project=config.project if scoped else None,
                    location=config.location if scoped else None,
                    http_options=options,
                )
            if config.project:
                return genai.Client(
                    vertexai=True,
                    project=config.project,
                    location=config.location or "global",
                    credentials=config.credentials,
                    http_options=options,
                )
            raise PermanentError(
                "Vertex AI is not configured: set a Vertex API key (express mode) or project + location",
                code="not_configured",
            )
    except ProviderError:
        raise
    except Exception as exc:
        raise PermanentError(f"cannot create the {backend} client: {exc}", code="not_configured") from exc
    raise PermanentError(f"unknown backend {backend!r}", code="not_configured")


# --------------------------------------------------------------------------------------------
# Error mapping
# --------------------------------------------------------------------------------------------

_SAFETY_FINISH_REASONS = frozenset(
    {
        "SAFETY",
        "PROHIBITED_CONTENT",
        "RECITATION",
        "BLOCKLIST",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "IMAGE_OTHER",
        "MODEL_ARMOR",
    }
)
_USER_REASONS = {
    "IMAGE_SAFETY": "The generated image was blocked by the safety filter.",
    "IMAGE_PROHIBITED_CONTENT": "The image would contain prohibited content.",
    "PROHIBITED_CONTENT": "The request contains prohibited content.",
    "SAFETY": "The request was blocked by the safety filter.",
    "RECITATION": "The result was too close to existing copyrighted material.",
    "IMAGE_RECITATION": "The result was too close to existing copyrighted material.",
    "IMAGE_OTHER": "The model declined to produce this image; try rephrasing the prompt.",
    "BLOCKLIST": "The request contains blocked terms.",
    "SPII": "The request contains sensitive personal information.",
}
_RAI_MESSAGE = re.compile(
    r"responsible ai|usage guidelines|violate|prohibited|sensitive words|safety filter|"
    r"could not be submitted|\brai\b",
    re.IGNORECASE,
)
_SUPPORT_CODES = re.compile(r"support codes?:\s*([\d ,]+)", re.IGNORECASE)
# google.rpc.Code numbers found in a long-running operation's `error`.
_RPC_INVALID_ARGUMENT, _RPC_DEADLINE_EXCEEDED, _RPC_RESOURCE_EXHAUSTED = 3, 4, 8
_RPC_FAILED_PRECONDITION, _RPC_ABORTED, _RPC_INTERNAL, _RPC_UNAVAILABLE = 9, 10, 13, 14


def _enum_name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _support_codes(message: str) -> list[str]:
    m = _SUPPORT_CODES.search(message or "")
    return [c.strip() for c in m.group(1).split(",") if c.strip()] if m else []


def _parse_duration(value: Any) -> float | None:
    """'7s' / '0.5s' / 7 -> seconds."""
    if value is None:
        return None
    try:
        return float(str(value).strip().rstrip("s"))
    except ValueError:
        return None


def _retry_after(exc: genai_errors.APIError) -> float | None:
    details = exc.details if isinstance(exc.details, dict) else {}
    error = details.get("error", details) if isinstance(details, dict) else {}
    for item in (error.get("details") or []) if isinstance(error, dict) else []:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("RetryInfo"):
            delay = _parse_duration(item.get("retryDelay"))
            if delay is not None:
                return delay
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is not None:
        return _parse_duration(headers.get("retry-after"))
    return None


def _error_reasons(exc: genai_errors.APIError) -> set[str]:
    details = exc.details if isinstance(exc.details, dict) else {}
    error = details.get("error", details)
    reasons: set[str] = set()
    for item in (error.get("details") or []) if isinstance(error, dict) else []:
        if isinstance(item, dict) and item.get("reason"):
            reasons.add(str(item["reason"]))
    return reasons


def map_api_error(exc: genai_errors.APIError) -> ProviderError:
    """Map an SDK `APIError` (ClientError / ServerError) to a typed provider error."""
    code = int(exc.code or 0)
    status = (exc.status or "").upper()
    message = redact(exc.message or str(exc))
    text = f"{code} {status}: {message}"
    details = {"http_status": code, "status": status}
    if code == 429 or status == "RESOURCE_EXHAUSTED":
        return RateLimited(text, retry_after=_retry_after(exc), details=details)
    if code in (401, 403) or status in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return PermanentError(text, code="auth", details=details)
    if code == 400 and ("API_KEY_INVALID" in _error_reasons(exc) or "api key not valid" in message.lower()):
        return PermanentError(text, code="auth", details=details)
    if code == 404 or status == "NOT_FOUND":
        return PermanentError(text, code="model_not_found", details=details)
    if status == "FAILED_PRECONDITION":
        return PermanentError(text, code="failed_precondition", details=details)
    if code in (400, 413, 422) or status in ("INVALID_ARGUMENT", "OUT_OF_RANGE"):
        if _RAI_MESSAGE.search(message):
            codes = _support_codes(message)
            return SafetyBlocked("RAI_PROMPT_BLOCKED", text, details={**details, "support_codes": codes})
        return InvalidInput(text, details=details)
    if code in (408, 409, 499) or status in ("ABORTED", "CANCELLED", "DEADLINE_EXCEEDED"):
        return Transient(text, code="transient", details=details)
    if code >= 500:
        return ProviderBusy(text, details=details)
    return PermanentError(text, details=details)


def _http_error_classes() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """(timeout, transport, any-http) exception classes of httpx and httpx2 (the SDK's default in 3.x)."""
    modules: list[Any] = [httpx]
    try:
        import httpx2

        modules.append(httpx2)
    except ImportError:  # pragma: no cover
        pass
    return (
        tuple(m.TimeoutException for m in modules),
        tuple(m.TransportError for m in modules),
        tuple(m.HTTPError for m in modules),
    )


_TIMEOUT_ERRORS, _TRANSPORT_ERRORS, _HTTP_ERRORS = _http_error_classes()


def map_exception(exc: BaseException, *, context: str = "") -> ProviderError:
    """Map anything raised while talking to Google to a typed provider error."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, genai_errors.APIError):
        return map_api_error(exc)
    if isinstance(exc, _TIMEOUT_ERRORS):
        return Transient(f"timeout: {error_text(exc)}", code="timeout")
    if isinstance(exc, _TRANSPORT_ERRORS):
        return Transient(f"network error: {error_text(exc)}", code="network")
    if isinstance(exc, _HTTP_ERRORS):
        return Transient(f"http error: {error_text(exc)}", code="network")
    try:
        from google.auth import exceptions as auth_exceptions
    except ImportError:  # pragma: no cover
        auth_exceptions = None  # type: ignore[assignment]
    if auth_exceptions is not None:
        if isinstance(exc, auth_exceptions.TransportError):
            return Transient(f"auth transport error: {error_text(exc)}", code="network")
        if isinstance(exc, auth_exceptions.GoogleAuthError):
            return PermanentError(f"Google credentials problem: {error_text(exc)}", code="auth")
    if isinstance(exc, ValueError):
        msg = redact(str(exc))
        if "only supported in" in msg and ("Agent Platform" in msg or "Vertex" in msg):
            return PermanentError(
                f"{context or 'this method'} needs Vertex AI: set backend=vertex ({msg})",
                code="backend_unsupported",
            )
        if "Gemini Developer client" in msg:
            return PermanentError(f"{context}: {msg}", code="backend_unsupported")
        return InvalidInput(f"invalid request: {msg}")
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return Transient(f"network error: {error_text(exc)}", code="network")
    return PermanentError(f"unexpected error: {error_text(exc)}", code="unexpected")


def map_operation_error(error: dict[str, Any]) -> ProviderError:
    """Map a finished operation's `error` ({code: google.rpc.Code, message}) to a typed error."""
    try:
        code = int(error.get("code") or 0)
    except (TypeError, ValueError):
        code = 0
    message = str(error.get("message") or "operation failed")
    text = f"operation error {code}: {message}"
    details = {"rpc_code": code, "operation_error": error}
    if _RAI_MESSAGE.search(message) and code in (0, _RPC_INVALID_ARGUMENT, _RPC_FAILED_PRECONDITION):
        return SafetyBlocked(
            "RAI_OPERATION_BLOCKED", text, details={**details, "support_codes": _support_codes(message)}
        )
    if code == _RPC_INVALID_ARGUMENT:
        return InvalidInput(text, details=details)
    if code == _RPC_RESOURCE_EXHAUSTED:
        return RateLimited(text, details=details)
    if code == _RPC_DEADLINE_EXCEEDED:
        return OperationTimeout(text, details=details)
    if code in (_RPC_INTERNAL, _RPC_UNAVAILABLE, _RPC_ABORTED):
        return ProviderBusy(text, code="operation_failed_transient", details=details)
    return PermanentError(text, code="operation_failed", details=details)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

_RATIO = re.compile(r"^\d{1,2}:\d{1,2}$")


def _aspect_ratio(req: ProviderRequest) -> str | None:
    value = req.params.get("aspect_ratio")
    if value in (None, ""):
        return None
    value = str(value).strip()
    if not _RATIO.match(value):
        raise InvalidInput(f"unsupported aspect ratio {value!r}", code="unsupported_aspect_ratio")
    return value


def _int_param(req: ProviderRequest, name: str) -> int | None:
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


def _checked_images(images: list[InputImage]) -> list[InputImage]:
    checked = []
    for i, image in enumerate(images):
        if not image.data:
            raise InvalidInput(f"input image #{i + 1} is empty", code="bad_image")
        sniffed = sniff_image_mime(image.data)
        mime = sniffed or image.mime_type
        if not mime or not mime.startswith("image/"):
            raise InvalidInput(f"input image #{i + 1} is not an image ({mime!r})", code="bad_image")
        checked.append(InputImage(image.data, mime))
    return checked


def _dump(model: Any) -> Any:
    if model is None:
        return None
    try:
        return model.model_dump(mode="json", exclude_none=True)
    except Exception:
        return str(model)


class _GoogleProvider(Provider):
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


def _expect_kind(req: ProviderRequest, kind: str, provider: str) -> None:
    if req.kind != kind:
        raise InvalidInput(f"{provider} generates {kind}s, not {req.kind}s", code="wrong_kind")
    if not req.provider_model_id:
        raise PermanentError("provider_model_id is empty", code="model_not_found")


# --------------------------------------------------------------------------------------------
# Nano Banana (Gemini image models through generate_content)
# --------------------------------------------------------------------------------------------


class NanoBananaProvider(_GoogleProvider):
    """Gemini image models ("Nano Banana") via `generate_content` with image output; both backends.

    Input images are sent as inline parts after the prompt (editing / composition). The negative
    prompt, which generate_content does not have, is appended to the prompt as "Avoid: ...".
    `params["response_modalities"]` overrides the default ["IMAGE"] (older ids need ["TEXT","IMAGE"]).
    """

    name = "google-gemini-image"
    method_label = "generate_content"

    def submit(self, req: ProviderRequest) -> Submission:
        _expect_kind(req, "image", "Nano Banana")
        backend = self.backend_for(req)
        images = _checked_images(req.input_images)
        ratio = _aspect_ratio(req)
        prompt = req.prompt
        if req.negative_prompt:
            prompt = f"{prompt}\n\nAvoid: {req.negative_prompt}"
        contents: list[Any] = [prompt]
        contents += [types.Part.from_bytes(data=i.data, mime_type=i.mime_type) for i in images]
        modalities = req.params.get("response_modalities") or ["IMAGE"]
        config = types.GenerateContentConfig(
            response_modalities=list(modalities),
            image_config=types.ImageConfig(aspect_ratio=ratio) if ratio else None,
            seed=_int_param(req, "seed"),
            automatic_continuation=False,
        )
        client = self.client(backend)
        response = self._call(
            req,
            backend,
            "generate_content",
            lambda: client.models.generate_content(model=req.provider_model_id, contents=contents, config=config),
        )
        return Submission.done(self._parse(response, req, backend))

    def _parse(self, response: Any, req: ProviderRequest, backend: str) -> ProviderResult:
        metadata = self._base_metadata(req, backend)
        metadata.update(
            model_version=getattr(response, "model_version", None),
            response_id=getattr(response, "response_id", None),
            usage=_dump(getattr(response, "usage_metadata", None)),
        )
        feedback = getattr(response, "prompt_feedback", None)
        block = _enum_name(getattr(feedback, "block_reason", None)) if feedback else None
        if block and block != "BLOCKED_REASON_UNSPECIFIED":
            raise SafetyBlocked(
                block,
                f"prompt blocked: {block} {getattr(feedback, 'block_reason_message', '') or ''}".strip(),
                details={"prompt_feedback": _dump(feedback), "stage": "prompt"},
                user_reason=_USER_REASONS.get(block, "The prompt was blocked by the safety filter."),
            )
        media: list[MediaItem] = []
        texts: list[str] = []
        finish: str | None = None
        finish_message: str | None = None
        for candidate in response.candidates or []:
            finish = _enum_name(candidate.finish_reason) or finish
            finish_message = getattr(candidate, "finish_message", None) or finish_message
            parts = candidate.content.parts if candidate.content and candidate.content.parts else []
            for part in parts:
                if getattr(part, "thought", None):
                    continue  # interim "thinking" images of the Pro models
                blob = part.inline_data
                if blob is not None and blob.data and (blob.mime_type or "image/").startswith("image/"):
                    width, height = image_size(blob.data)
                    media.append(
                        MediaItem(mime_type=blob.mime_type or "image/png", data=blob.data, width=width, height=height)
                    )
                elif part.text:
                    texts.append(part.text)
        metadata["finish_reason"] = finish
        text = "\n".join(texts) or None
        if media:
            return ProviderResult(media=media, text=text, metadata=metadata)
        if finish in _SAFETY_FINISH_REASONS:
            raise SafetyBlocked(
                finish,
                f"output blocked: finish_reason={finish} {finish_message or ''}".strip(),
                details={"stage": "output", "text": text},
                user_reason=_USER_REASONS.get(finish),
            )
        if not response.candidates:
            raise PermanentError("the model returned no candidates", code="empty_result")
        raise PermanentError(
            f"the model returned no image (finish_reason={finish}){': ' + text if text else ''}",
            code="no_image",
            user_reason="The model did not return an image; try rephrasing the prompt.",
            details={"finish_reason": finish, "text": text},
        )


# --------------------------------------------------------------------------------------------
# Imagen (generate_images; Vertex only in SDK 3.x)
# --------------------------------------------------------------------------------------------


class ImagenProvider(_GoogleProvider):
    """Imagen via `generate_images` (Vertex AI): aspect_ratio, number_of_images, negative_prompt."""

    name = "google-imagen"
    method_label = "Imagen (generate_images)"
    default_to_vertex = True

    def submit(self, req: ProviderRequest) -> Submission:
        _expect_kind(req, "image", "Imagen")
        if req.input_images:
            raise InvalidInput("Imagen generate_images takes no input images", code="input_not_supported")
        backend = self.backend_for(req)
        config = types.GenerateImagesConfig(
            number_of_images=_int_param(req, "number_of_images") or 1,
            aspect_ratio=_aspect_ratio(req),
            negative_prompt=req.negative_prompt or None,
            include_rai_reason=True,
            output_mime_type=req.params.get("output_mime_type") or None,
        )
        client = self.client(backend)
        response = self._call(
            req,
            backend,
            "generate_images",
            lambda: client.models.generate_images(model=req.provider_model_id, prompt=req.prompt, config=config),
        )
        metadata = self._base_metadata(req, backend)
        media: list[MediaItem] = []
        filtered: list[str] = []
        for generated in response.generated_images or []:
            image = generated.image
            if image is not None and image.image_bytes:
                width, height = image_size(image.image_bytes)
                media.append(
                    MediaItem(
                        mime_type=image.mime_type or "image/png", data=image.image_bytes, width=width, height=height
                    )
                )
            elif generated.rai_filtered_reason:
                filtered.append(generated.rai_filtered_reason)
        metadata["rai_filtered_reasons"] = filtered
        if media:
            return Submission.done(ProviderResult(media=media, metadata=metadata))
        if filtered:
            codes = [c for reason in filtered for c in _support_codes(reason)]
            raise SafetyBlocked(
                "RAI_FILTERED",
                "Imagen filtered every image: " + "; ".join(filtered),
                details={"rai_filtered_reasons": filtered, "support_codes": codes},
            )
        raise PermanentError("Imagen returned no images", code="empty_result")


# --------------------------------------------------------------------------------------------
# Veo (generate_videos, a long-running operation)
# --------------------------------------------------------------------------------------------


def backend_of_operation(operation_id: str) -> str | None:
    """Gemini API operations are named `models/{m}/operations/{id}`; Vertex ones
    `projects/.../publishers/google/models/{m}/operations/{id}` (or `publishers/...`)."""
    if operation_id.startswith(("models/", "tunedModels/")):
        return GEMINI
    if operation_id.startswith(("projects/", "publishers/")):
        return VERTEX
    return None


class VeoProvider(_GoogleProvider):
    """Veo via `generate_videos` (Vertex AI); `submit` returns the operation name, `poll` checks it."""

    name = "google-veo"
    method_label = "Veo (generate_videos)"
    default_to_vertex = True
    long_running = True

    def submit(self, req: ProviderRequest) -> Submission:
        _expect_kind(req, "video", "Veo")
        backend = self.backend_for(req)
        images = _checked_images(req.input_images)
        image = types.Image(image_bytes=images[0].data, mime_type=images[0].mime_type) if images else None
        generate_audio = req.params.get("generate_audio")
        config = types.GenerateVideosConfig(
            number_of_videos=1,
            aspect_ratio=_aspect_ratio(req),
            duration_seconds=_int_param(req, "duration_seconds"),
            resolution=req.params.get("resolution") or None,
            negative_prompt=req.negative_prompt or None,
            generate_audio=bool(generate_audio) if generate_audio is not None else None,
            seed=_int_param(req, "seed"),
        )
        source = types.GenerateVideosSource(prompt=req.prompt or None, image=image)
        client = self.client(backend)
        operation = self._call(
            req,
            backend,
            "generate_videos",
            lambda: client.models.generate_videos(model=req.provider_model_id, source=source, config=config),
        )
        if operation.done:
            return Submission.done(self._finish(operation, req, backend))
        if not operation.name:
            raise PermanentError("generate_videos returned an operation without a name", code="no_operation")
        return Submission.pending(operation.name)

    def poll(self, operation_id: str, req: ProviderRequest) -> PollOutcome:
        if not operation_id:
            raise PermanentError("empty operation id", code="no_operation")
        backend = backend_of_operation(operation_id) or self.backend_for(req)
        client = self.client(backend)
        operation = self._call(
            req,
            backend,
            "operations.get",
            lambda: client.operations.get(types.GenerateVideosOperation(name=operation_id)),
        )
        if not operation.done:
            progress = None
            meta = operation.metadata or {}
            for key in ("progressPercent", "progress_percent", "progress"):
                if isinstance(meta.get(key), (int, float)):
                    progress = float(meta[key])
                    break
            return PollOutcome.pending(progress)
        return PollOutcome.done(self._finish(operation, req, backend))

    def _finish(self, operation: Any, req: ProviderRequest, backend: str) -> ProviderResult:
        if operation.error:
            error = map_operation_error(dict(operation.error))
            logger.warning("veo operation %s failed: %r", operation.name, error)
            raise error
        response = operation.response or operation.result
        metadata = self._base_metadata(req, backend)
        metadata["operation_name"] = operation.name
        videos = list(response.generated_videos or []) if response else []
        filtered_count = (response.rai_media_filtered_count or 0) if response else 0
        reasons = list(response.rai_media_filtered_reasons or []) if response else []
        metadata.update(rai_media_filtered_count=filtered_count, rai_media_filtered_reasons=reasons)
        duration = _int_param(req, "duration_seconds")
        media: list[MediaItem] = []
        for generated in videos:
            video = generated.video
            if video is None:
                continue
            mime = video.mime_type or "video/mp4"
            if video.video_bytes:
                media.append(MediaItem(mime_type=mime, data=video.video_bytes, duration=duration))
            elif video.uri:
                if video.uri.startswith(("http://", "https://")):
                    data = self._download(video.uri, backend, req)
                    media.append(MediaItem(mime_type=mime, data=data, uri=video.uri, duration=duration))
                else:
                    media.append(MediaItem(mime_type=mime, uri=video.uri, duration=duration))
        if media:
            return ProviderResult(media=media, metadata=metadata)
        if filtered_count or reasons:
            codes = [c for reason in reasons for c in _support_codes(str(reason))]
            raise SafetyBlocked(
                "RAI_MEDIA_FILTERED",
                f"Veo filtered {filtered_count} video(s): " + "; ".join(map(str, reasons)),
                details={"rai_media_filtered_reasons": reasons, "support_codes": codes},
            )
        raise PermanentError("the video operation finished without a video", code="empty_result")

    def _download(self, uri: str, backend: str, req: ProviderRequest) -> bytes:
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
            raise RateLimited(f"video download rate-limited ({uri})")
        if response.status_code >= 500:
            raise ProviderBusy(f"video download failed: HTTP {response.status_code}", code="download_failed")
        if response.status_code != 200:
            raise PermanentError(
                f"video download failed: HTTP {response.status_code} for {uri}", code="download_failed"
            )
        logger.info(
            "veo video downloaded: request=%s %d bytes in %.2fs",
            req.request_id,
            len(response.content),
            time.monotonic() - started,
        )
        return response.content
