"""HTTP endpoints of the web process: the health check and the Telegram webhook."""

from __future__ import annotations

import hmac
import json
import logging

from aiogram.types import Update
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from pydantic import ValidationError

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024


def health(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def _authorized(request: HttpRequest) -> bool:
    secret = getattr(settings, "WEBHOOK_SECRET", "")
    given = request.headers.get(SECRET_HEADER, "")
    return bool(secret) and hmac.compare_digest(given.encode(), secret.encode())


@csrf_exempt
@require_POST
async def telegram_webhook(request: HttpRequest) -> HttpResponse:
    """Telegram's webhook: 401 without the secret token; the update is handled before answering 200.

    A redelivered update (same update_id) is recognised by the dedupe middleware and handled once.
    Any failure while handling still answers 200: Telegram would otherwise redeliver a poison update
    forever (the error is logged, and the user got an apology from the error handler).
    """
    if not _authorized(request):
        return JsonResponse({"ok": False, "error": "unauthorized"}, status=401)
    if len(request.body) > MAX_UPDATE_BYTES:
        return JsonResponse({"ok": False, "error": "too large"}, status=413)
    from botapp.bot import get_runtime

    runtime = await get_runtime()
    try:
        update = Update.model_validate(json.loads(request.body), context={"bot": runtime.bot})
    except (ValueError, ValidationError):
        return JsonResponse({"ok": False, "error": "malformed update"}, status=400)
    try:
        await runtime.dispatcher.feed_update(runtime.bot, update)
    except Exception:
        log.exception("webhook update %s failed", update.update_id)
    return JsonResponse({"ok": True})
