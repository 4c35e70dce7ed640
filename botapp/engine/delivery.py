"""Delivery (deliver_generation): a stored result reaches the user's chat.

The guarantee: a paid result is never sent twice by the workers, and never lost.

- The sender holds the request's delivery claim (`next_poll_at` of a succeeded, undelivered request;
  a conditional UPDATE), so a duplicate delivery task sends nothing.
- Before each upload the item is marked `send_started_at`, committed while the claim is held.
  Sent: its `tg_file_id` is stored and later attempts skip it. Definitely not sent (flood control,
  a refusal, no connection at all): the mark is cleared, and the delivery is retried or refunded.
- Outcome unknown: the upload went out but the answer never came (a timeout, a connection reset, a
  5xx), or a worker was killed mid-upload (the next attempt finds the mark without a file_id). The item
  is never uploaded again. The user gets a short notice "your result #N is ready" with a button that
  sends it from storage on request (`HistoryCb` RESEND). The notice may repeat (a duplicate notice is
  harmless; a lost one is not), and the request counts as delivered: it is not refunded, because the
  result exists.
- A request none of whose items can have reached the user (403, a refusal, no delivery within
  GENERATION_DELIVERY_GRACE_SECONDS) is refunded once (`GenerationService.fail_undelivered`).

Several variants (`GenRequest.variants` > 1) go as an album, then one message with what happened
and the buttons: botapp/engine/albums.py. Sending one item (the marks above): botapp/engine/sending.py.
"""

from __future__ import annotations

import html
import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from botapp.engine import albums, common, dispatch
from botapp.engine.common import Status, chat_action, language_of, load, model_label, show_status
from botapp.engine.results import TooLargeToSend, fit_for_upload
from botapp.engine.sending import (
    caption_for,
    kept_variants,
    possibly_sent,
    prepare,
    send_as_file,
    send_one,
)
from botapp.i18n import t
from botapp.models import GenRequest
from botapp.redaction import error_text
from botapp.services.generation import GenerationService
from botapp.telegram.sender import (
    BotBlocked,
    RetryLater,
    SendRejected,
    TelegramSender,
    get_sender,
)

log = logging.getLogger(__name__)


def delivery_lease() -> timedelta:
    return common.seconds(settings.TELEGRAM_UPLOAD_TIMEOUT_SECONDS + 3 * settings.TELEGRAM_MAX_WAIT_SECONDS + 30)


def _result_keyboard(request: GenRequest, lang: str, index: int) -> Any:
    """The buttons under a result (regenerate / edit / animate / menu) from the bot's keyboards."""
    try:
        from botapp.keyboards import result_keyboard
    except ImportError:  # pragma: no cover - the bot package is always there
        return None
    try:
        return result_keyboard(request, lang, index=index)
    except Exception:
        log.exception("result keyboard for #%s failed; sending without buttons", request.pk)
        return None


# --------------------------------------------------------------------------------------------------
# Delivery
# --------------------------------------------------------------------------------------------------
def claim_delivery(request_id: int) -> datetime | None:
    now = common.now()
    lease = now + delivery_lease()
    moved = (
        GenRequest.objects.filter(pk=request_id, status=Status.SUCCEEDED, delivered_at__isnull=True)
        .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now))
        .update(next_poll_at=lease)
    )
    return lease if moved else None


def _still_ours(request_id: int, token: datetime) -> bool:
    return GenRequest.objects.filter(
        pk=request_id, status=Status.SUCCEEDED, delivered_at__isnull=True, next_poll_at=token
    ).exists()


def deliver(request_id: int, *, new_level: int | None = None, cache: dict[str, bytes] | None = None) -> float | None:
    """deliver_generation: send the stored result once. Returns seconds to retry after, or None."""
    token = claim_delivery(request_id)
    if token is None:
        return None
    request = load(request_id)
    if request is None or not request.chat_id:
        return None
    sender = get_sender()
    if sender is None:
        log.warning("generation #%s: no BOT_TOKEN, cannot deliver; the sweep will retry", request_id)
        GenRequest.objects.filter(pk=request_id, next_poll_at=token).update(
            next_poll_at=common.now() + common.seconds(settings.GENERATION_REDISPATCH_AFTER_SECONDS)
        )
        return None
    lang = language_of(request)
    try:
        _deliver(request, token, sender, lang, new_level, cache or {})
    except BotBlocked as exc:
        undeliverable(request, token, "bot_blocked", error_text(exc), notify=False)
    except SendRejected as exc:
        code = "result_too_large" if isinstance(exc, TooLargeToSend) else "telegram_refused"
        undeliverable(request, token, code, error_text(exc), notify=True)
    except RetryLater as exc:
        return _delivery_retry(request, token, exc.retry_in, error_text(exc))
    except Exception as exc:
        log.exception("generation #%s: delivery failed", request_id)
        return _delivery_retry(request, token, 30.0, error_text(exc))
    return None


def _deliver(
    request: GenRequest,
    token: datetime,
    sender: TelegramSender,
    lang: str,
    new_level: int | None,
    cache: dict[str, bytes],
) -> None:
    if request.variants > 1:
        albums.deliver_variants(request, token, sender, lang, new_level, cache)
        return
    results = [dict(item) for item in request.results]
    as_file = send_as_file(request)
    show_status(request, sender, "generation.status.sending", lang)
    chat_action(request, sender, uploading=True)
    is_demo = any(item.get("is_demo") for item in results)
    for index, item in enumerate(results):
        if possibly_sent(item):
            continue  # sent by an earlier attempt, or its outcome is unknown: never uploaded again
        caption = caption_for(request, lang, is_demo=is_demo, new_level=new_level) if index == 0 else None
        keyboard = _result_keyboard(request, lang, index)
        data, method = prepare(item, cache, as_file)
        data, link = fit_for_upload(item, data)  # over the upload limit: re-encoded, or a link
        if not send_one(request, token, sender, lang, results, index, (data, method, link), caption, keyboard):
            return
    unknown = [item for item in results if possibly_sent(item) and not (item.get("tg_file_id") or item.get("sent_as"))]
    if unknown:
        _send_ready_notice(request, sender, lang)
    if GenerationService.mark_delivered(request_id=request.pk, results=results):
        log.info("generation #%s delivered%s", request.pk, " (with a notice)" if unknown else "")
        if request.status_message_id:
            sender.delete_message(request.chat_id, request.status_message_id)
    else:
        log.error("generation #%s: sent, but mark_delivered refused (status changed meanwhile)", request.pk)


def _send_ready_notice(request: GenRequest, sender: TelegramSender, lang: str) -> None:
    """After an unknown outcome: tell the user the result is ready, with a button that sends it.

    Repeatable (a duplicate notice is harmless). Flood control or Telegram being down propagates (the
    delivery is retried: it only sends this notice again). When the user cannot be told (403, 400),
    the result still counts as delivered: it may have arrived, and the history screen sends it."""
    from botapp.keyboards import result_ready_keyboard

    text = t("generation.result_ready", lang, id=request.pk, label=html.escape(model_label(request)))
    try:
        sender.send_message(
            request.chat_id, text, reply_markup=result_ready_keyboard(lang, request.pk), repeatable=True
        )
    except (BotBlocked, SendRejected) as exc:
        log.info("generation #%s: could not send the ready notice: %s", request.pk, exc)


def record_resent(*, request_id: int, index: int, file_id: str, file_unique_id: str | None, sent_as: str) -> bool:
    """Remember the file_id of a result the bot sent on request, so that later re-sends reuse it."""
    with transaction.atomic():
        request = GenRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None or index >= len(request.results) or request.results[index].get("tg_file_id"):
            return False
        results = [dict(item) for item in request.results]
        results[index].update(tg_file_id=file_id, tg_file_unique_id=file_unique_id, sent_as=sent_as)
        GenRequest.objects.filter(pk=request_id).update(results=results)
    return True


def _delivery_deadline(request: GenRequest) -> datetime:
    base = request.finished_at or request.deadline_at or common.now()
    return base + common.seconds(settings.GENERATION_DELIVERY_GRACE_SECONDS)


def _delivery_retry(request: GenRequest, token: datetime, retry_in: float, message: str) -> float | None:
    retry_in = max(1.0, float(retry_in))
    if common.now() + common.seconds(retry_in) >= _delivery_deadline(request):
        undeliverable(request, token, "delivery_failed", message, notify=True)
        return None
    GenRequest.objects.filter(pk=request.pk, status=Status.SUCCEEDED, next_poll_at=token).update(
        next_poll_at=common.now() + common.seconds(retry_in)
    )
    log.info("generation #%s: delivery postponed by %.0fs (%s)", request.pk, retry_in, message)
    return retry_in


def undeliverable(request: GenRequest, token: datetime, code: str, message: str, *, notify: bool) -> None:
    """The result cannot reach the user: refund (only while we hold the delivery claim).

    A result that reached the user, or may have (an upload whose answer was lost), is never refunded:
    it counts as delivered, and the user gets it again from the history screen."""
    if not _still_ours(request.pk, token):
        return
    results = GenRequest.objects.filter(pk=request.pk).values_list("results", flat=True).first() or []
    if any(possibly_sent(item) for item in results):
        if request.variants > 1:  # the variants that reached the user are paid; the rest refunded
            failed = request.variants - kept_variants(results)
            moved, _ = GenerationService.mark_delivered_variants(request_id=request.pk, results=results, failed=failed)
        else:
            moved = GenerationService.mark_delivered(request_id=request.pk)
        if moved:
            log.warning("generation #%s: %s after part of it may have arrived; not refunded", request.pk, code)
        return
    if GenerationService.fail_undelivered(request_id=request.pk, error_code=code, error_message=message):
        log.info("generation #%s: undeliverable (%s), refunded", request.pk, code)
        if notify:
            dispatch.notify_failure(request.pk, None)
