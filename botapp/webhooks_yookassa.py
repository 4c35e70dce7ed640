"""YooKassa's webhook (HTTP notifications) in the web process: POST /yookassa/webhook/.

YooKassa signs nothing, so: only its networks may call (YOOKASSA_TRUSTED_IPS; the caller is the peer
address, or with YOOKASSA_TRUST_FORWARDED_FOR=N the N-th address from the right of X-Forwarded-For),
and the body is only a hint: the service re-reads the payment (or the refund: `refund.*` events,
botapp/services/card_refunds.py) from the API and acts on that.

Answers: 403 an untrusted address; 413 a body over MAX_BODY_BYTES; 400 a body that is not a notification;
503 YooKassa's API could not be asked (or no shop is configured): YooKassa retries later; otherwise 200,
also for a payment that is not ours (logged: a retry would not make it ours) and for a replay (nothing
happens twice).
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from botapp.services import yookassa_api
from botapp.services.card import CardService
from botapp.services.card_refunds import handle_refund_notification
from botapp.services.yookassa_api import BadNotification, GatewayError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


@csrf_exempt
@require_POST
def yookassa_webhook(request: HttpRequest) -> HttpResponse:
    caller = yookassa_api.client_address(
        request.META.get("REMOTE_ADDR", ""),
        request.headers.get("X-Forwarded-For", ""),
        hops=int(settings.YOOKASSA_TRUST_FORWARDED_FOR),
    )
    if not yookassa_api.is_trusted(caller):
        log.warning("YooKassa webhook from an untrusted address %r: refused", caller)
        return HttpResponse("forbidden", status=403, content_type="text/plain")
    try:
        body = request.body
    except RequestDataTooBig:
        return HttpResponse("too large", status=413, content_type="text/plain")
    if len(body) > MAX_BODY_BYTES:
        return HttpResponse("too large", status=413, content_type="text/plain")
    try:
        notification = yookassa_api.parse_notification(json.loads(body))
    except (ValueError, RecursionError, BadNotification) as exc:
        log.warning("YooKassa webhook: not a notification (%s): refused", str(exc)[:200])
        return HttpResponse("bad request", status=400, content_type="text/plain")
    about_refund = notification.event.startswith("refund.")
    if not notification.about_payment and not about_refund:
        log.info("YooKassa webhook %s about %s: not handled", notification.event, notification.object_id)
        return JsonResponse({"ok": True, "outcome": "ignored"})
    if not yookassa_api.configured():
        log.error("YooKassa webhook %s, but no shop is configured: answered 503", notification.event)
        return HttpResponse("not configured", status=503, content_type="text/plain")
    try:
        if about_refund:  # a refund made here or in YooKassa's dashboard: re-read, then taken back once
            outcome = handle_refund_notification(refund_id=notification.object_id).status
        else:
            outcome = CardService.handle_notification(yookassa_id=notification.object_id, event=notification.event)
    except GatewayError as exc:
        log.warning("YooKassa webhook %s: the API could not be asked (%s): answered 503", notification.event, exc)
        return HttpResponse("try again", status=503, content_type="text/plain")
    return JsonResponse({"ok": True, "outcome": str(outcome)})
