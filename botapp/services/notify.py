"""A message to a user (or an operator) that no bot update asked for: the two halves every such notice
shares (a refund, a grant, a reward, a card payment, a lapsed subscription, a support request's copy).

    enqueue(task_name, *args, what=...)   on commit: `botapp.tasks.<task_name>` on the send queue
                                          (CELERY_SEND_QUEUE); a broker failure is logged, never raised
    language_of(user_id, default=None)    the user's language (UserSettings), normalized
    send_once(chat_id=, text=, marker=, what=, ...)
                                          the task's body: through the one Telegram sender, once per
                                          cache marker; returns a retry delay when Telegram asks us to wait

What a caller checks before sending (the user blocked the bot, notifications off, nothing to say) and
the marker's key stay with the caller.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.cache import cache

from botapp.i18n import normalize_language
from botapp.models import UserSettings
from botapp.telegram.sender import BotBlocked, OutcomeUnknown, RetryLater, SendRejected, get_sender

log = logging.getLogger(__name__)

MARKER_TTL = 7 * 24 * 3600


def enqueue(task_name: str, *args: Any, what: str) -> None:
    """Hand `botapp.tasks.<task_name>(*args)` to the workers, on the send queue (call on commit). A
    broker failure never fails the caller: it is logged (`what`: the notice, for the log)."""
    try:
        from botapp import tasks

        queue = getattr(settings, "CELERY_SEND_QUEUE", None)
        getattr(tasks, task_name).apply_async(args, **({"queue": queue} if queue else {}))
    except Exception:
        log.exception("%s: could not enqueue it", what)


def language_of(user_id: int, *, default: str | None = None) -> str:
    """The user's language from their settings (`default` when none is stored), normalized."""
    language = UserSettings.objects.filter(user_id=user_id).values_list("language", flat=True).first()
    return normalize_language(language or default)


def send_once(
    *,
    chat_id: int,
    text: str,
    marker: str,
    what: str,
    ttl: float = MARKER_TTL,
    reply_markup: Any = None,
    mark_blocked: bool = False,
    level: int = logging.INFO,
) -> float | None:
    """Send `text` to `chat_id` once per `marker` (a cache key kept `ttl` seconds). Returns a retry delay
    (seconds) when Telegram asks us to wait (the marker is dropped: the retry sends it), else None: sent,
    already sent, no bot token, or given up (blocked, rejected, or an unknown outcome: it may have
    arrived, so it is never repeated). `mark_blocked`: a 403 marks the user (`chat_id`) bot_blocked
    here too (the sender does; this also covers a test double). `what` names the notice in the log,
    logged at `level`."""
    sender = get_sender()
    if sender is None:
        log.log(level, "%s not sent: BOT_TOKEN is not set", what)
        return None
    if not cache.add(marker, 1, ttl):
        return None
    try:
        if reply_markup is None:
            sender.send_message(chat_id, text)
        else:
            sender.send_message(chat_id, text, reply_markup=reply_markup)
    except RetryLater as exc:
        cache.delete(marker)
        return exc.retry_in
    except BotBlocked as exc:
        if mark_blocked:
            from botapp.services import users

            users.mark_bot_blocked(telegram_id=chat_id)
        log.log(level, "%s not delivered, the bot is blocked: %s", what, exc)
    except OutcomeUnknown as exc:
        log.log(level, "%s may not have arrived: %s", what, exc)
    except SendRejected as exc:
        log.log(level, "%s not delivered: %s", what, exc)
    return None
