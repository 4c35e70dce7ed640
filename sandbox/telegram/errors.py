"""Bot API errors in the exact JSON shape Telegram uses."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answered as ``{"ok": false, "error_code": N, "description": "..."}``."""

    def __init__(self, error_code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def to_json(self) -> dict[str, Any]:
        """The response body Telegram would send."""
        body: dict[str, Any] = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(reason: str) -> ApiError:
    """400 with the usual ``Bad Request: `` prefix."""
    return ApiError(400, f"Bad Request: {reason}")


def forbidden(reason: str) -> ApiError:
    """403 with the usual ``Forbidden: `` prefix."""
    return ApiError(403, f"Forbidden: {reason}")


def too_many_requests(retry_after: int) -> ApiError:
    """429 flood-control error carrying ``parameters.retry_after``."""
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


def not_found() -> ApiError:
    """404 answered for unknown methods."""
    return ApiError(404, "Not Found")


def unauthorized() -> ApiError:
    """401 answered for a wrong token."""
    return ApiError(401, "Unauthorized")


def conflict(reason: str) -> ApiError:
    """409 with the usual ``Conflict: `` prefix."""
    return ApiError(409, f"Conflict: {reason}")


DEFAULT_DESCRIPTIONS: dict[int, str] = {
    400: "Bad Request: injected failure",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: injected failure",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


def error_for_code(error_code: int, description: str | None = None, retry_after: int | None = None) -> ApiError:
    """Build an injected error with a realistic default description."""
    if error_code == 429:
        seconds = 1 if retry_after is None else retry_after
        return ApiError(429, description or f"Too Many Requests: retry after {seconds}", retry_after=seconds)
    return ApiError(error_code, description or DEFAULT_DESCRIPTIONS.get(error_code, f"Error {error_code}"))
