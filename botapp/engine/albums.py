"""Several variants (`GenRequest.variants` > 1, see botapp/engine/variants.py) reach the chat.

The kept variants go as one album (sendMediaGroup: photos, or documents with the user's "send as
file"; every item is marked before the one request, so a lost answer never leads to a second album),
then ONE message that says what happened (ready, blocked by the safety filter, failed, refused by
Telegram, the tokens returned) with the buttons per variant (Edit 1, Animate 1, Upscale 1...).

Telegram refuses a whole album when it refuses one of its items (nothing is sent): the items then go
one by one, and one Telegram refuses is marked `refused` and counts as a failed variant. Settling
refunds the variants that did not reach the user (failed, blocked, refused) once, in the transaction
that marks the request delivered (`GenerationService.mark_delivered_variants`). A single variant left
goes as one photo (no album), followed by the same message.
"""

from __future__ import annotations

import html
import logging
from datetime import datetime
from typing import Any

from botapp.engine import common
from botapp.engine.common import chat_action, model_label, show_status
from botapp.engine.results import TooLargeToSend, fit_for_upload
from botapp.engine.sending import (
    Prepared,
    caption_for,
    filename_for,
    is_media,
    kept_variants,
    mark_refused,
    possibly_sent,
    prepare,
    save_progress,
    send_as_file,
    send_one,
)
from botapp.i18n import fmt_tokens, t
from botapp.models import GenRequest
from botapp.services.generation import GenerationService, variant_share
from botapp.telegram.media import DOCUMENT
from botapp.telegram.sender import AlbumItem, BotBlocked, OutcomeUnknown, RetryLater, SendRejected, TelegramSender

log = logging.getLogger(__name__)


def deliver_variants(
    request: GenRequest,
    token: datetime,
    sender: TelegramSender,
    lang: str,
    new_level: int | None,
    cache: dict[str, bytes],
) -> None:
    results = [dict(item) for item in request.results]
    positions = [index for index, item in enumerate(results) if is_media(item)]
    todo = [i for i in positions if not possibly_sent(results[i]) and not results[i].get("refused")]
    as_file = send_as_file(request)
    if todo:
        show_status(request, sender, "generation.status.sending", lang)
        chat_action(request, sender, uploading=True)
    is_demo = any(results[i].get("is_demo") for i in positions)
    caption = caption_for(request, lang, is_demo=is_demo, new_level=None)
    captioned = any(possibly_sent(results[i]) for i in positions)
    prepared: dict[int, Prepared] = {}
    for i in todo:
        data, method = prepare(results[i], cache, as_file)
        try:
            data, link = fit_for_upload(results[i], data)
        except TooLargeToSend as exc:
            mark_refused(request, results[i], exc)
            continue
        prepared[i] = (data, method, link)
    album = [i for i in todo if i in prepared and prepared[i][2] is None and not results[i].get("album_refused")]
    if len(album) >= 2:
        if not _send_album(request, token, sender, results, album, prepared, None if captioned else caption, as_file):
            return
        captioned = captioned or any(possibly_sent(results[i]) for i in album)
    for i in todo:  # what the album did not take: one by one (a refused one is marked and skipped)
        if i not in prepared or possibly_sent(results[i]) or results[i].get("refused"):
            continue
        if not send_one(
            request, token, sender, lang, results, i, prepared[i], None if captioned else caption, None, refuse=True
        ):
            return
        captioned = captioned or possibly_sent(results[i])
    kept = [i for i in positions if possibly_sent(results[i])]
    if not kept:  # Telegram took none of them: refunded whole (deliver -> undeliverable)
        save_progress(request.pk, token, results)
        refused = [results[i].get("refused") for i in positions]
        if refused and all(code == "result_too_large" for code in refused):
            raise TooLargeToSend("every variant is over the upload limit")
        raise SendRejected("Telegram refused every variant")
    _send_variants_message(request, sender, lang, results, kept, new_level)
    if not save_progress(request.pk, token, results):
        log.warning("generation #%s: lost the delivery claim before settling", request.pk)
        return
    failed = request.variants - len(kept)
    moved, refund = GenerationService.mark_delivered_variants(request_id=request.pk, results=results, failed=failed)
    if not moved:
        log.error("generation #%s: sent, but mark_delivered refused (status changed meanwhile)", request.pk)
        return
    log.info(
        "generation #%s delivered: %d of %d variants%s",
        request.pk,
        len(kept),
        request.variants,
        f", {refund.amount} refunded" if refund is not None else "",
    )
    if request.status_message_id:
        sender.delete_message(request.chat_id, request.status_message_id)


def _send_album(
    request: GenRequest,
    token: datetime,
    sender: TelegramSender,
    results: list[dict],
    album: list[int],
    prepared: dict[int, Prepared],
    caption: str | None,
    as_file: bool,
) -> bool:
    """The variants as one album, all marked before the one request (False: the claim was lost).

    Telegram does not mix documents with photos in an album: one item that must go as a document (send
    as file, over the photo limits) makes them all documents. A refused album (one bad item refuses
    all: nothing was sent) leaves its items to go one by one."""
    documents = as_file or any(prepared[i][1] == DOCUMENT for i in album)
    items = []
    for n, i in enumerate(album):
        data, method, _ = prepared[i]
        item = results[i]
        items.append(
            AlbumItem(
                method=DOCUMENT if documents else method,
                file=data,
                filename=filename_for(request, i, item),
                caption=caption if n == 0 else None,
                width=item.get("width"),
                height=item.get("height"),
                duration=item.get("duration"),
            )
        )
        item["send_started_at"] = common.now().isoformat()
    if not save_progress(request.pk, token, results):
        log.warning("generation #%s: lost the delivery claim; not sending", request.pk)
        return False
    try:
        sent = sender.send_media_group(request.chat_id, items)
    except OutcomeUnknown as exc:
        log.warning("generation #%s: the album may or may not have arrived (%s)", request.pk, exc)
        for i in album:
            results[i]["outcome"] = "unknown"
    except (RetryLater, SendRejected, BotBlocked) as exc:
        for i in album:
            results[i].pop("send_started_at", None)  # definitely not sent
        if not isinstance(exc, SendRejected):
            save_progress(request.pk, token, results)
            raise
        log.info("generation #%s: Telegram refused the album (%s); sending the variants one by one", request.pk, exc)
        for i in album:
            results[i]["album_refused"] = True
    else:
        for i, message in zip(album, sent, strict=True):
            results[i].update(
                tg_file_id=message.file_id,
                tg_file_unique_id=message.file_unique_id,
                tg_message_id=message.message_id,
                sent_as=message.method,
                album=True,
            )
    save_progress(request.pk, token, results)
    return True


def variants_text(request: GenRequest, results: list[dict], lang: str, *, new_level: int | None = None) -> str:
    """What happened to a request's variants: ready, blocked, failed, refused, the tokens returned."""
    label = html.escape(model_label(request))
    kept = kept_variants(results)
    key = "generation.variants.all_ready" if kept == request.variants else "generation.variants.ready"
    lines = [t(key, lang, ready=kept, total=request.variants, label=label)]
    failed = [item for item in results if isinstance(item, dict) and item.get("failed")]
    blocked = sum(1 for item in failed if item.get("error_code") == "safety_blocked")
    if blocked:
        lines.append(t("generation.variants.blocked", lang, n=blocked))
    if len(failed) > blocked:
        lines.append(t("generation.variants.failed", lang, n=len(failed) - blocked))
    refused = sum(1 for item in results if is_media(item) and item.get("refused"))
    if refused:
        lines.append(t("generation.variants.refused", lang, n=refused))
    missing = request.variants - kept
    if missing > 0 and request.price:
        amount = fmt_tokens(variant_share(request, missing))
        lines.append(t("generation.variants.refunded", lang, amount=amount))
    if new_level:
        lines.append(t("generation.caption.level_up", lang, level=new_level))
    return "\n".join(lines)


def _send_variants_message(
    request: GenRequest, sender: TelegramSender, lang: str, results: list[dict], kept: list[int], new_level: int | None
) -> None:
    """The one message after the album: what happened and the buttons per variant (once: its id is
    kept on the first item; flood control propagates, and the delivery retries only this message)."""
    first = results[kept[0]]
    if "summary_message_id" in first:
        return
    text = variants_text(request, results, lang, new_level=new_level)
    unknown = any(not (results[i].get("tg_file_id") or results[i].get("sent_as")) for i in kept)
    with_file = [i for i in kept if results[i].get("tg_file_id")]
    if unknown:  # some may not have arrived: a button sends them from storage (HistoryCb RESEND)
        text += "\n\n" + t("generation.variants.unknown", lang)
    elif with_file:
        text += "\n\n" + t("generation.variants.pick", lang)
    keyboard = _variants_keyboard(request, lang, with_file, resend=unknown)
    try:
        sent = sender.send_message(request.chat_id, text, reply_markup=keyboard, repeatable=True)
    except (BotBlocked, SendRejected, OutcomeUnknown) as exc:
        log.info("generation #%s: could not send the variants' message: %s", request.pk, exc)
        sent = None
    first["summary_message_id"] = sent.message_id if sent is not None else 0


def _variants_keyboard(request: GenRequest, lang: str, positions: list[int], *, resend: bool) -> Any:
    try:
        from botapp.keyboards import variants_keyboard

        return variants_keyboard(request, lang, positions=positions, resend=resend)
    except Exception:
        log.exception("variants keyboard for #%s failed; sending without buttons", request.pk)
        return None
