"""Support, write side: an operator's message to a user, written in the admin and sent in the background.

    queue_messages(user_ids, text, operator, operation_id)
        checks the text (Telegram HTML, botapp.telegram.html), writes one `SupportMessage` row per user
        (pending) and, on commit, queues the Celery task `send_support_message(id)` on the send queue:
        the operator's request never waits for Telegram. One row per user and submitted form
        (`operation_id`): a form submitted twice writes and sends once.
    send(message_id)
        the task: claims the row by a conditional UPDATE pending -> sending (committed before the request
        goes out, so a duplicate or redelivered task finds nothing to do) and sends it through the one
        sender (botapp.telegram.sender):
          sent      Telegram took it (the message id is kept)
          blocked   403: the user blocked the bot (the sender marks the user `bot_blocked`)
          failed    Telegram refused it (400), or no bot token is configured
          pending   flood control / Telegram unreachable before the request went out (RetryLater):
                    the task retries after `retry_in`
          unknown   the answer was lost (it may have arrived): never sent again; also a row left in
                    `sending` for CLAIM_SECONDS by a worker that died mid-send
    give_up(message_id)   the task's last retry: pending -> failed

The user sees the operator's text under a header ("A message from support", in their language) and,
when SUPPORT_USERNAME is set, a line saying where to reply (botapp/locales/*/support.toml).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from botapp.i18n import LANGUAGES, normalize_language, t
from botapp.models import SupportMessage, TgUser, UserSettings
from botapp.redaction import error_text
from botapp.services import notify
from botapp.services.exceptions import DomainError
from botapp.services.users import mark_bot_blocked
from botapp.telegram.html import MESSAGE_LIMIT, HtmlError, check_html
from botapp.telegram.sender import BotBlocked, OutcomeUnknown, RetryLater, SendRejected, get_sender

log = logging.getLogger(__name__)
S = SupportMessage.Status

MAX_RECIPIENTS = 50  # users one form writes to
ERROR_CHARS = 255
CLAIM_SECONDS = 900  # a row in `sending` this long: its worker died between the claim and the answer


class SupportError(DomainError):
    code = "support_message_refused"
    default_message = "The message cannot be sent."


# --- the text --------------------------------------------------------------------------------------------
def compose(*, text: str, lang: str) -> str:
    """What the user receives: the header, the operator's text and, with SUPPORT_USERNAME, the reply hint."""
    parts = [t("support.header", lang), text.strip()]
    username = (getattr(settings, "SUPPORT_USERNAME", "") or "").lstrip("@")
    if username:
        parts.append(t("support.reply_hint", lang, username=username))
    return "\n\n".join(parts)


def text_limit() -> int:
    """The visible characters left for the operator's text once the header and hint are added."""
    frame = max(check_html(compose(text="x", lang=lang)) - 1 for lang in LANGUAGES)
    return MESSAGE_LIMIT - frame


def check_text(*, text: str) -> str:
    """The text, stripped, if Telegram will take it (HTML parse mode, within the length); else
    SupportError with the validator's reason."""
    text = (text or "").strip()
    try:
        check_html(text, limit=text_limit())
    except HtmlError as exc:
        raise SupportError(str(exc)) from None
    return text


# --- queueing ------------------------------------------------------------------------------------------------
@dataclass
class Queued:
    created: list[SupportMessage] = field(default_factory=list)
    replayed: list[SupportMessage] = field(default_factory=list)  # already written by this form


def enqueue(*, message_id: int) -> None:
    """Hand the message to the workers (on commit). A broker failure leaves the row pending (the
    support messages page can queue it again)."""
    notify.enqueue("send_support_message", message_id, what=f"support message #{message_id}")


def queue_messages(
    *,
    user_ids: Sequence[int],
    text: str,
    operator: Any = None,
    operation_id: str | None = None,
) -> Queued:
    """One pending message per user, sent in the background (see the module docstring)."""
    text = check_text(text=text)
    ids = list(dict.fromkeys(int(pk) for pk in user_ids))
    if not ids:
        raise SupportError("Select at least one user.")
    if len(ids) > MAX_RECIPIENTS:
        raise SupportError(f"One message goes to at most {MAX_RECIPIENTS} users; {len(ids)} are selected.")
    users = {user.pk: user for user in TgUser.objects.filter(pk__in=ids)}
    missing = [pk for pk in ids if pk not in users]
    if missing:
        raise SupportError(f"No such user: {missing[0]}.")
    operator_pk = getattr(operator, "pk", None)
    operator_name = operator.get_username() if operator is not None and operator_pk is not None else ""
    result = Queued()
    with transaction.atomic():
        for pk in ids:
            fields = {"user": users[pk], "text": text, "operator_id": operator_pk, "operator_name": operator_name}
            if operation_id:
                row, created = SupportMessage.objects.get_or_create(
                    idempotency_key=f"support:{operation_id}:{pk}", defaults=fields
                )
            else:
                row, created = SupportMessage.objects.create(**fields), True
            if not created:
                result.replayed.append(row)
                continue
            result.created.append(row)
            transaction.on_commit(lambda message_id=row.pk: enqueue(message_id=message_id))
    return result


def requeue(*, message_ids: Sequence[int]) -> int:
    """Queue the pending ones of `message_ids` again (e.g. the broker was down when they were written);
    a duplicate task finds the row claimed and does nothing. Returns how many were queued."""
    pending = list(SupportMessage.objects.filter(pk__in=message_ids, status=S.PENDING).values_list("pk", flat=True))
    for message_id in pending:
        transaction.on_commit(lambda message_id=message_id: enqueue(message_id=message_id))
    return len(pending)


# --- sending ---------------------------------------------------------------------------------------------------
def _outcome(pk: int, /, **changes: Any) -> bool:
    """Record a send's outcome while the row is still claimed (`sending`)."""
    if "error" in changes:
        changes["error"] = str(changes["error"])[:ERROR_CHARS]
    return bool(SupportMessage.objects.filter(pk=pk, status=S.SENDING).update(**changes))


def send(*, message_id: int) -> float | None:
    """send_support_message: send one message once. Returns a retry delay (seconds) when Telegram asks
    us to wait (the row is pending again), else None (done, or nothing to do)."""
    row = SupportMessage.objects.select_related("user").filter(pk=message_id).first()
    if row is None:
        return None
    now = timezone.now()
    if row.status == S.SENDING:
        if row.claimed_at is None or row.claimed_at < now - timedelta(seconds=CLAIM_SECONDS):
            _outcome(row.pk, status=S.UNKNOWN, error="the worker stopped while sending: it may have arrived")
        return None
    if row.status != S.PENDING:
        return None
    sender = get_sender()
    if sender is None:
        SupportMessage.objects.filter(pk=row.pk, status=S.PENDING).update(
            status=S.FAILED, error="no bot token is configured (BOT_TOKEN)"
        )
        return None
    lang = normalize_language(
        UserSettings.objects.filter(user_id=row.user_id).values_list("language", flat=True).first()
    )
    text = compose(text=row.text, lang=lang)
    # The claim, committed before the request goes out: from here on, a crash means "unknown".
    if not SupportMessage.objects.filter(pk=row.pk, status=S.PENDING).update(status=S.SENDING, claimed_at=now):
        return None
    try:
        sent = sender.send_message(row.user.telegram_id, text)
    except BotBlocked as exc:
        mark_bot_blocked(telegram_id=row.user.telegram_id)  # the sender did too; this also covers a test double
        _outcome(row.pk, status=S.BLOCKED, error=error_text(exc))
    except RetryLater as exc:  # not sent: pending again, the task comes back
        _outcome(row.pk, status=S.PENDING, claimed_at=None, error=error_text(exc))
        return max(1.0, float(exc.retry_in))
    except SendRejected as exc:
        _outcome(row.pk, status=S.FAILED, error=error_text(exc))
    except OutcomeUnknown as exc:
        _outcome(row.pk, status=S.UNKNOWN, error=error_text(exc))
    except Exception as exc:  # after the claim: it may have gone out
        log.exception("support message #%s: unexpected error sending it", row.pk)
        _outcome(row.pk, status=S.UNKNOWN, error=error_text(exc))
    else:
        _outcome(
            row.pk,
            status=S.SENT,
            error="",
            message_id=sent.message_id if sent is not None else None,
            sent_at=timezone.now(),
        )
    return None


def give_up(*, message_id: int) -> bool:
    """The task ran out of retries (Telegram kept asking to wait): pending -> failed."""
    return bool(
        SupportMessage.objects.filter(pk=message_id, status=S.PENDING).update(
            status=S.FAILED, error="Telegram kept asking to wait (flood control); not sent"
        )
    )
