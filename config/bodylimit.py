"""A cap on request bodies, before Django sees them.

Django's ASGI handler reads the whole body into a temporary file (on disk past
FILE_UPLOAD_MAX_MEMORY_SIZE) before it routes the request, so without a cap any URL, a webhook
included, lets anyone fill the temporary folder before a secret or a login is checked. This wrapper
refuses a body over its path's limit with 413: at once when `Content-Length` says so (the body is
never read), and otherwise as soon as the streamed bytes pass it (Django is told the client left, and
drops what it had spooled). Limits (settings, bytes):

    BODY_LIMIT_WEBHOOK_BYTES  /telegram/webhook/, /yookassa/webhook/   (1 MiB)
    BODY_LIMIT_ADMIN_BYTES    /admin/ (its forms; photos up to 10 MB)  (12 MiB)
    BODY_LIMIT_BYTES          everything else                          (64 KiB)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

WEBHOOK_PATHS = ("/telegram/webhook/", "/yookassa/webhook/")
ADMIN_PREFIX = "/admin/"
TOO_LARGE = b"Request body too large.\n"


def limit_for(path: str) -> int:
    """The largest body accepted at `path`, from the settings."""
    from django.conf import settings

    if path in WEBHOOK_PATHS:
        return settings.BODY_LIMIT_WEBHOOK_BYTES
    if path.startswith(ADMIN_PREFIX):
        return settings.BODY_LIMIT_ADMIN_BYTES
    return settings.BODY_LIMIT_BYTES


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """ASGI middleware: 413 for a body over its path's limit, before the app reads or stores it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope.get("path") or "/")
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send)
            return
        received = 0
        refused = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body") or b"")
                if received > limit:
                    refused = True
                    await _refuse(send)
                    return {"type": "http.disconnect"}  # the app drops what it read so far
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # once we answered 413, the app has nothing more to say
                await send(message)

        await self.app(scope, counted_receive, guarded_send)


async def _refuse(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(TOO_LARGE)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": TOO_LARGE})
