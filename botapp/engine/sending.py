"""Sending one stored result to the chat, the piece every delivery is made of (botapp.engine.delivery
for one result, botapp.engine.albums for several variants): the caption, how a file goes (photo,
video, document, or a link over the upload limit), and the marks kept on each result item.

An item's marks (in `GenRequest.results`, saved only while the delivery claim is held):
`send_started_at` (set and committed before the upload), then `tg_file_id` / `sent_as` (it arrived),
or `outcome: unknown` (the answer was lost: never uploaded again), or, for a variant, `refused`
(Telegram will not take it: never sent again, refunded like a failed variant).
"""

from __future__ import annotations

import html
import logging
from datetime import datetime
from typing import Any

from django.conf import settings

from botapp.engine import common
from botapp.engine.common import Status, model_label
from botapp.engine.results import TooLargeToSend, stored_result
from botapp.i18n import t
from botapp.models import GenRequest, UserSettings
from botapp.redaction import error_text
from botapp.telegram.media import DOCUMENT, choose_method, extension_for
from botapp.telegram.sender import BotBlocked, OutcomeUnknown, RetryLater, SendRejected, TelegramSender

log = logging.getLogger(__name__)


def send_as_file(request: GenRequest) -> bool:
    return bool(UserSettings.objects.filter(user_id=request.user_id).values_list("send_as_file", flat=True).first())


CAPTION_PROMPT_CHARS = 700  # the rest of the caption stays well under Telegram's 1024 visible characters


def caption_for(request: GenRequest, lang: str, *, is_demo: bool, new_level: int | None) -> str:
    """HTML caption; the prompt is shortened before escaping, so no tag or entity is ever cut."""
    prompt = " ".join(request.prompt.split())
    if len(prompt) > CAPTION_PROMPT_CHARS:
        prompt = prompt[: CAPTION_PROMPT_CHARS - 1] + "…"
    label = html.escape(model_label(request))
    lines = [t("generation.caption.result", lang, label=label, prompt=html.escape(prompt))]
    if is_demo:
        lines.append(t("generation.caption.demo", lang))
    if new_level:
        lines.append(t("generation.caption.level_up", lang, level=new_level))
    return "\n".join(lines)


def possibly_sent(item: dict) -> bool:
    """Has this result item reached the user, or may it have (an upload with an unknown outcome)?"""
    return bool(item.get("tg_file_id") or item.get("sent_as") or item.get("send_started_at"))


def is_media(item: dict) -> bool:
    """A stored result file (not a failed variant's record)."""
    return bool(isinstance(item, dict) and item.get("path") and not item.get("failed"))


def kept_variants(results: list[dict]) -> int:
    """How many of a request's variants reached the user, or may have: what the user pays for."""
    return sum(1 for item in results or [] if is_media(item) and possibly_sent(item))


Prepared = tuple[bytes, str, str | None]  # what goes to Telegram: the bytes, the method, a link instead


def prepare(item: dict, cache: dict[str, bytes], as_file: bool) -> tuple[bytes, str]:
    """A stored result's bytes and how it goes to Telegram (photo, video or document)."""
    data = cache.get(item["path"])
    if data is None:
        data = stored_result(path=item["path"])
    method = choose_method(
        kind=item.get("kind", "image"),
        mime_type=item.get("mime_type", ""),
        size=len(data),
        width=item.get("width"),
        height=item.get("height"),
        send_as_file=as_file,
        photo_limit=settings.TELEGRAM_PHOTO_LIMIT_BYTES,
    )
    return data, method


def filename_for(request: GenRequest, index: int, item: dict) -> str:
    number = int(item["variant"]) + 1 if "variant" in item else index + 1
    return f"{request.model or 'result'}-{request.pk}-{number}.{extension_for(item.get('mime_type', ''))}"


def send_one(
    request: GenRequest,
    token: datetime,
    sender: TelegramSender,
    lang: str,
    results: list[dict],
    index: int,
    prepared: Prepared,
    caption: str | None,
    keyboard: Any,
    *,
    refuse: bool = False,
) -> bool:
    """Upload one result (or its link), marked first; False when the delivery claim was lost.

    Telegram refusing it (400) raises, or with `refuse` (a variant) marks it `refused` and goes on."""
    data, method, link = prepared
    item = results[index]
    # The mark that makes an interrupted upload visible to the next attempt (committed first).
    item["send_started_at"] = common.now().isoformat()
    if not save_progress(request.pk, token, results):  # failed or delivered by someone else meanwhile
        log.warning("generation #%s: lost the delivery claim; not sending", request.pk)
        return False
    try:
        if link is not None:
            text = caption_or_blank(caption) + t(
                "generation.result_link",
                lang,
                size=round(len(data) / 1024 / 1024),
                url=html.escape(link),
                days=max(1, settings.GENERATION_LINK_TTL_SECONDS // 86400),
            )
            sent_link = sender.send_message(request.chat_id, text, reply_markup=keyboard)
            item.update(sent_as="link", tg_message_id=sent_link.message_id if sent_link else None)
        else:
            filename = filename_for(request, index, item)
            sent = send_file(request, sender, method, data, filename, caption, keyboard, item)
            item.update(
                tg_file_id=sent.file_id,
                tg_file_unique_id=sent.file_unique_id,
                tg_message_id=sent.message_id,
                sent_as=sent.method,
            )
    except OutcomeUnknown as exc:
        log.warning("generation #%s: result %d may or may not have arrived (%s)", request.pk, index, exc)
        item["outcome"] = "unknown"
    except (RetryLater, SendRejected, BotBlocked) as exc:
        item.pop("send_started_at", None)  # definitely not sent: a later attempt may send it
        if not (refuse and isinstance(exc, SendRejected)):
            save_progress(request.pk, token, results)
            raise
        mark_refused(request, item, exc)
    save_progress(request.pk, token, results)
    return True


def mark_refused(request: GenRequest, item: dict, exc: SendRejected) -> None:
    """A variant Telegram will not take: never sent again, refunded like a failed variant."""
    log.warning("generation #%s: Telegram refused variant %s: %s", request.pk, item.get("variant"), exc)
    item["refused"] = "result_too_large" if isinstance(exc, TooLargeToSend) else "telegram_refused"
    item["refused_reason"] = error_text(exc)[:300]


def send_file(
    request: GenRequest,
    sender: TelegramSender,
    method: str,
    data: bytes,
    filename: str,
    caption: str | None,
    keyboard: Any,
    item: dict,
) -> Any:
    """Upload one result; a photo or video Telegram refuses (400: nothing was sent) goes as a document."""
    try:
        return sender.send_file(
            request.chat_id,
            method,
            data,
            filename=filename,
            caption=caption,
            reply_markup=keyboard,
            width=item.get("width"),
            height=item.get("height"),
            duration=item.get("duration"),
        )
    except SendRejected as exc:
        if method == DOCUMENT:
            raise
        log.info("generation #%s: Telegram refused the %s (%s); sending as a document", request.pk, method, exc)
        return sender.send_file(
            request.chat_id, DOCUMENT, data, filename=filename, caption=caption, reply_markup=keyboard
        )


def caption_or_blank(caption: str | None) -> str:
    return f"{caption}\n\n" if caption else ""


def save_progress(request_id: int, token: datetime, results: list[dict]) -> bool:
    """Store the items' progress, only while we hold the delivery claim."""
    return bool(
        GenRequest.objects.filter(
            pk=request_id, status=Status.SUCCEEDED, delivered_at__isnull=True, next_poll_at=token
        ).update(results=results)
    )
