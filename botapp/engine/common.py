"""What the engine's steps share: the clock, loading a request, the user's language, the status message."""

from __future__ import annotations

import html
from datetime import datetime, timedelta
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
    """Best effort: edit the status message (queued -> generating -> sending)."""
    if sender is None or not request.chat_id or not request.status_message_id:
        return
    text = t(key, lang, label=html.escape(model_label(request)), **params)
    sender.edit_text(request.chat_id, request.status_message_id, text)


def chat_action(request: GenRequest, sender: TelegramSender | None, uploading: bool = False) -> None:
    if sender is None or not request.chat_id:
        return
    action = "upload_photo"
    if request.kind == AIModel.Kind.VIDEO:
        action = "upload_video" if uploading else "record_video"
    sender.chat_action(request.chat_id, action)
