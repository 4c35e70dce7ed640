"""What the engine's steps share: the clock, loading a request, the user's language, the status message
(with its Refresh / Cancel buttons while the request can be cancelled)."""

from __future__ import annotations

import html
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from botapp.i18n import normalize_language, t
from botapp.models import AIModel, GenRequest, UserSettings
from botapp.telegram.sender import TelegramSender

Status = GenRequest.Status


def now() -> datetime:
    return timezone.now()


def seconds(value: float) -> timedelta:
    return timedelta(seconds=float(value))


def load(request_id: int) -> GenRequest | None:
    return GenRequest.objects.select_related("ai_model").filter(pk=request_id).first()


def language_of(request: GenRequest) -> str:
    lang = UserSettings.objects.filter(user_id=request.user_id).values_list("language", flat=True).first()
    return normalize_language(lang)


def model_label(request: GenRequest) -> str:
    ai_model = request.ai_model
    if ai_model is None:
        return request.model
    return f"{ai_model.emoji} {ai_model.name}".strip()


def show_status(request: GenRequest, sender: TelegramSender | None, key: str, lang: str, **params: Any) -> None:
    """Best effort: edit the status message (queued -> generating -> sending).

    While the request has not been sent to the provider it keeps its Refresh / Cancel buttons. The
    user may cancel it while we edit: the status is read again after the edit, and a cancelled
    request gets its "cancelled" text back (the bot's edit may have come before ours)."""
    if sender is None or not request.chat_id or not request.status_message_id:
        return
    text = t(key, lang, label=html.escape(model_label(request)), **params)
    cancellable = request.submitted_at is None and request.status in GenRequest.IN_FLIGHT
    markup = status_keyboard(request, lang) if cancellable else None
    sender.edit_text(request.chat_id, request.status_message_id, text, reply_markup=markup)
    if cancellable and GenRequest.objects.filter(pk=request.pk, status=Status.CANCELLED).exists():
        show_cancelled(request, sender, lang)


def confirm_nonce(request: GenRequest) -> str | None:
    """The nonce of the confirmation that created the request (its idempotency key
    `confirm:<user>:<nonce>`, see botapp.handlers.generation.control.confirm_key), or None."""
    key = request.idempotency_key or ""
    prefix = f"confirm:{request.user_id}:"
    return key[len(prefix) :] if key.startswith(prefix) and len(key) > len(prefix) else None


def status_keyboard(request: GenRequest, lang: str) -> Any:
    """Refresh / Cancel under the status message of a request the user can still cancel."""
    nonce = confirm_nonce(request)
    if nonce is None:
        return None
    from botapp.keyboards import queue_keyboard

    return queue_keyboard(lang, nonce)


def cancelled_text(request: GenRequest, lang: str) -> str:
    amount = Decimal(request.price or 0).quantize(Decimal("0.01"))
    shown = f"{amount:f}".rstrip("0").rstrip(".")
    return t("generation.status.cancelled", lang, label=html.escape(model_label(request)), amount=shown)


def show_cancelled(request: GenRequest, sender: TelegramSender, lang: str) -> None:
    from botapp.keyboards import menu_only

    sender.edit_text(
        request.chat_id, request.status_message_id, cancelled_text(request, lang), reply_markup=menu_only(lang)
    )


def chat_action(request: GenRequest, sender: TelegramSender | None, uploading: bool = False) -> None:
    if sender is None or not request.chat_id:
        return
    action = "upload_photo"
    if request.kind == AIModel.Kind.VIDEO:
        action = "upload_video" if uploading else "record_video"
    sender.chat_action(request.chat_id, action)
