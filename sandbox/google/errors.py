"""Google's error answers: the status names and default messages of `{"error": {...}}` bodies."""

from __future__ import annotations

from typing import Any

GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
DEFAULT_MESSAGES = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials.",
    403: "The caller does not have permission.",
    404: "Publisher model was not found or your project does not have access to it.",
    429: "Resource exhausted. Please try again later.",
    500: "Internal error encountered.",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline exceeded.",
}


def error_body(
    status: int,
    message: str | None = None,
    *,
    retry_delay: float | None = None,
    details: list[dict[str, Any]] | None = None,
    status_name: str | None = None,
) -> dict[str, Any]:
    """The JSON body Google answers an error with (RetryInfo for a 429 with a delay); `status_name`
    overrides the status the HTTP code implies (e.g. 400 FAILED_PRECONDITION)."""
    error: dict[str, Any] = {
        "code": status,
        "message": message or DEFAULT_MESSAGES.get(status, "Error."),
        "status": status_name or GOOGLE_STATUS.get(status, "UNKNOWN"),
    }
    details = list(details or [])
    if status == 429 and retry_delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_delay:g}s"})
    if details:
        error["details"] = details
    return {"error": error}
