"""Google's answers as typed provider errors: SDK exceptions (`map_exception`, `map_api_error`, and
the Interactions client's own exceptions, `map_interactions_error`), a finished operation's `error`
(`map_operation_error`), and the safety vocabulary (finish reasons, support codes) the providers share."""

from __future__ import annotations

import re
from typing import Any

import httpx
from google.genai import _interactions_errors as interactions_errors
from google.genai import errors as genai_errors

from botapp.redaction import error_text, redact

from ..base import (
    InvalidInput,
    OperationTimeout,
    PermanentError,
    ProviderBusy,
    ProviderError,
    RateLimited,
    SafetyBlocked,
    Transient,
)

SAFETY_FINISH_REASONS = frozenset(
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
USER_REASONS = {
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


def enum_name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def support_codes(message: str) -> list[str]:
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
            codes = support_codes(message)
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


def map_interactions_error(exc: interactions_errors.APIError) -> ProviderError:
    """Map an exception of the Interactions client (`client.interactions.*`, a generated client with
    its own classes: `APIStatusError` and its subclasses by status, `APIConnectionError`,
    `APITimeoutError`, `APIResponseValidationError`) like the SDK's `APIError` of the same answer."""
    if isinstance(exc, interactions_errors.APITimeoutError):
        return Transient(f"timeout: {error_text(exc)}", code="timeout")
    if isinstance(exc, interactions_errors.APIConnectionError):
        return Transient(f"network error: {error_text(exc)}", code="network")
    if isinstance(exc, interactions_errors.APIResponseValidationError):
        return PermanentError(f"unexpected answer from Google: {error_text(exc)}", code="unexpected")
    status = exc.status_code
    if not status:
        return PermanentError(f"Interactions API error: {error_text(exc)}", code="unexpected")
    body = exc.body if isinstance(exc.body, dict) else {"error": {"message": redact(str(exc.body or exc.message))}}
    return map_api_error(genai_errors.APIError(int(status), body, response=getattr(exc, "response", None)))


def map_exception(exc: BaseException, *, context: str = "") -> ProviderError:
    """Map anything raised while talking to Google to a typed provider error."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, genai_errors.APIError):
        return map_api_error(exc)
    if isinstance(exc, interactions_errors.APIError):
        return map_interactions_error(exc)
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
            "RAI_OPERATION_BLOCKED", text, details={**details, "support_codes": support_codes(message)}
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
