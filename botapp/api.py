"""The Telegram webhook of the web process (the health check is botapp/health.py)."""

from __future__ import annotations

import hmac
import json
import logging
import math
from typing import Any

from aiogram.types import Update
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from pydantic import ValidationError

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024
MAX_UPDATE_DEPTH = 64  # Telegram's updates nest about 10 levels deep (message, reply, entities, user)
INT64 = 2**63  # every integer of the Bot API (ids, dates, sizes) fits a signed 64-bit integer


class MalformedUpdate(ValueError):
    """A webhook body that is not a Telegram update (answered 400, logged without a traceback)."""


def _refuse_constant(name: str) -> Any:
    raise MalformedUpdate(f"{name} is not JSON")


def parse_update_body(body: bytes) -> dict[str, Any]:
    """The update object of a webhook body, or MalformedUpdate: not UTF-8 JSON, NaN/Infinity, nested
    deeper than MAX_UPDATE_DEPTH, an integer out of the signed 64-bit range or a non-finite number
    anywhere, not an object, or an update_id that is not such an integer."""
    try:
        data = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:  # the C decoder nests one call per level: 100,000 brackets end here
        raise MalformedUpdate("nested too deep") from None
    except ValueError as exc:  # invalid JSON or UTF-8, an empty body, over 4300 digits
        raise MalformedUpdate(f"not JSON: {type(exc).__name__}") from None
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:  # iterative: the depth is what is checked
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_UPDATE_DEPTH:
                raise MalformedUpdate("nested too deep")
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int) and not -INT64 <= value < INT64:
            raise MalformedUpdate("integer out of range")
        elif isinstance(value, float) and not math.isfinite(value):
            raise MalformedUpdate("number out of range")
    if not isinstance(data, dict):
        raise MalformedUpdate(f"a JSON {type(data).__name__}, not an object")
    update_id = data.get("update_id")
    if isinstance(update_id, bool) or not isinstance(update_id, int) or update_id < 0:
        raise MalformedUpdate("no integer update_id")
    return data


def _authorized(request: HttpRequest) -> bool:
    secret = getattr(settings, "WEBHOOK_SECRET", "")
    given = request.headers.get(SECRET_HEADER, "")
    return bool(secret) and hmac.compare_digest(given.encode(), secret.encode())


@csrf_exempt
@require_POST
async def telegram_webhook(request: HttpRequest) -> HttpResponse:
    """Telegram's webhook: 401 without the secret token; the update is handled before answering 200.

    A body that is not an update gets a 4xx and one warning line, never a 500 or a traceback: 415
    unless JSON, 413 over MAX_UPDATE_BYTES, 400 for anything `parse_update_body` or the Update
    schema refuses.
    A redelivered update (same update_id) is recognised by the dedupe middleware and handled once.
    Any failure while handling still answers 200: Telegram would otherwise redeliver a poison update
    forever (the error is logged, and the user got an apology from the error handler).
    """
    if not _authorized(request):
        return JsonResponse({"ok": False, "error": "unauthorized"}, status=401)
    if request.content_type != "application/json":
        log.warning("webhook body refused: content type %r", request.content_type[:100])
        return JsonResponse({"ok": False, "error": "expected application/json"}, status=415)
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        declared = 0
    try:
        body = b"" if declared > MAX_UPDATE_BYTES else request.body
    except RequestDataTooBig:
        declared = MAX_UPDATE_BYTES + 1
    if declared > MAX_UPDATE_BYTES or len(body) > MAX_UPDATE_BYTES:
        log.warning("webhook body refused: too large")
        return JsonResponse({"ok": False, "error": "too large"}, status=413)
    try:
        data = parse_update_body(body)
    except MalformedUpdate as exc:
        log.warning("webhook body refused: %s", exc)
        return JsonResponse({"ok": False, "error": "malformed update"}, status=400)
    from botapp.bot import get_runtime

    runtime = await get_runtime()
    try:
        update = Update.model_validate(data, context={"bot": runtime.bot})
    except ValidationError as exc:
        log.warning("webhook body refused: not an update (%s error(s))", exc.error_count())
        return JsonResponse({"ok": False, "error": "malformed update"}, status=400)
    try:
        await runtime.dispatcher.feed_update(runtime.bot, update)
    except Exception:
        log.exception("webhook update %s failed", update.update_id)
    return JsonResponse({"ok": True})
