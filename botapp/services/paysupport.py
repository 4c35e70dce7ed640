"""Payment support (/paysupport), write side: a user's request is stored and reaches the operators.

    limit_reached(user_id)            the /paysupport screen says so before the user writes anything
    submit_request(user_id, text)     checks the text (not empty, at most TEXT_LIMIT characters) and the
                                      user's hourly limit (SUPPORT_REQUESTS_PER_HOUR requests in the last
                                      hour, counted in the table under the user's row lock), writes a
                                      `SupportRequest` (open, topic "payment") with the user's latest
                                      payments attached (`payments`: what the user saw), and on commit
                                      queues one `forward_support_request(id, operator)` task per operator
                                      (ADMIN_IDS) on the send queue
    send_request(request_id, chat_id) the task: one operator's copy (in the admin language: who, what, the
                                      payments with their codes), sent once per request and operator (a
                                      cache marker), through the one Telegram sender

Not an operator alert (botapp.services.alerts): no cool-down, no storm cap, every request within the
user's hourly limit goes through. Every request is also logged. The operators answer from the admin
(a message to the user: botapp.services.support).
"""

from __future__ import annotations

import html
import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from botapp.i18n import t
from botapp.models import SupportRequest, TgUser, UserSettings
from botapp.paylines import payment_lines
from botapp.selectors.payments import PaymentLine, listed_payments, user_payments
from botapp.services import notify, users
from botapp.services.alerts import admin_language
from botapp.services.exceptions import DomainError

log = logging.getLogger(__name__)

TOPIC = "payment"
WINDOW = timedelta(hours=1)
TEXT_LIMIT = 2000  # characters of the user's text: the operator's copy stays within Telegram's 4096
ATTACHED_PAYMENTS = 10  # the user's latest payments attached to a request


class SupportRequestRefused(DomainError):
    code = "support_request_refused"
    default_message = "The support request cannot be sent."


class SupportTextEmpty(SupportRequestRefused):
    code = "support_text_empty"
    default_message = "The message is empty."


class SupportTextTooLong(SupportRequestRefused):
    code = "support_text_too_long"
    default_message = "The message is too long."


class SupportLimitReached(SupportRequestRefused):
    code = "support_limit_reached"
    default_message = "Too many support requests this hour."


# --- the hourly limit --------------------------------------------------------------------------------------
def requests_per_hour() -> int:
    """SUPPORT_REQUESTS_PER_HOUR (0: no limit)."""
    return int(settings.SUPPORT_REQUESTS_PER_HOUR)


def recent_requests(*, user_id: int, now: datetime | None = None) -> int:
    """The user's requests in the last hour."""
    since = (now or timezone.now()) - WINDOW
    return SupportRequest.objects.filter(user_id=user_id, created_at__gt=since).count()


def limit_reached(*, user_id: int) -> bool:
    """Whether the user has used up their requests of the last hour."""
    limit = requests_per_hour()
    return limit > 0 and recent_requests(user_id=user_id) >= limit


# --- the request -----------------------------------------------------------------------------------------
def check_text(*, text: str) -> str:
    """The text, stripped; SupportTextEmpty / SupportTextTooLong (with `length` and `limit`) otherwise."""
    text = (text or "").strip()
    if not text:
        raise SupportTextEmpty()
    if len(text) > TEXT_LIMIT:
        raise SupportTextTooLong(length=len(text), limit=TEXT_LIMIT)
    return text


def attached(line: PaymentLine) -> dict[str, str | int]:
    """A payment as `SupportRequest.payments` keeps it (JSON)."""
    return {
        "id": line.id,
        "at": line.at.isoformat(),
        "provider": line.provider,
        "status": line.status,
        "amount": str(line.amount),
        "currency": line.currency,
        "tokens": str(line.tokens),
        "bonus_tokens": str(line.bonus_tokens),
        "charge_id": line.charge_id,
    }


def attached_lines(payments: list[dict]) -> list[PaymentLine]:
    """`SupportRequest.payments` back as payment lines (items that do not read are skipped)."""
    lines = []
    for item in payments or ():
        try:
            lines.append(
                PaymentLine(
                    id=int(item["id"]),
                    at=datetime.fromisoformat(item["at"]),
                    provider=str(item["provider"]),
                    status=str(item["status"]),
                    amount=Decimal(item["amount"]),
                    currency=str(item["currency"]),
                    tokens=Decimal(item["tokens"]),
                    bonus_tokens=Decimal(item.get("bonus_tokens") or 0),
                    charge_id=str(item.get("charge_id") or ""),
                )
            )
        except (KeyError, TypeError, ValueError, ArithmeticError):
            log.warning("a support request's payment does not read: %r", item)
    return lines


def _admin_ids() -> list[int]:
    return [int(chat_id) for chat_id in settings.ADMIN_IDS]


def submit_request(*, user_id: int, text: str) -> SupportRequest:
    """Store the user's request and pass it to every operator (see the module docstring). Raises
    SupportTextEmpty, SupportTextTooLong or SupportLimitReached (with `limit`); a refused text does not
    count."""
    text = check_text(text=text)
    limit = requests_per_hour()
    admin_ids = _admin_ids()
    with transaction.atomic():
        # Under the user's row lock: two requests at once are counted one after the other.
        TgUser.objects.select_for_update().filter(pk=user_id).values_list("pk", flat=True).first()
        if limit > 0 and recent_requests(user_id=user_id) >= limit:
            raise SupportLimitReached(limit=limit)
        payments = user_payments(user_id=user_id, page=1, per_page=ATTACHED_PAYMENTS).items
        row = SupportRequest.objects.create(
            user_id=user_id, topic=TOPIC, text=text, payments=[attached(line) for line in payments]
        )
        if admin_ids:
            transaction.on_commit(lambda: _enqueue(request_id=row.pk, admin_ids=admin_ids))
    log.info("payment support request #%s from user #%s, to %d operator(s): %r", row.pk, user_id, len(admin_ids), text)
    if not admin_ids:
        log.warning("payment support request #%s is not forwarded: ADMIN_IDS is empty", row.pk)
    return row


def _enqueue(*, request_id: int, admin_ids: list[int]) -> None:
    """One `forward_support_request` task per operator, on the send queue. A broker failure is logged
    and never fails the user's request (it is stored, and in the log)."""
    for chat_id in admin_ids:
        notify.enqueue(
            "forward_support_request",
            request_id,
            chat_id,
            what=f"payment support request #{request_id}: the copy to {chat_id}",
        )


# --- the operator's copy ---------------------------------------------------------------------------------
def _esc(value: object) -> str:
    return html.escape(str(value), quote=False)


def operator_text(*, request: SupportRequest, lang: str) -> str:
    """The request as an operator sees it, in `lang`: who, what, and the payments attached, with codes."""
    user = request.user
    language = UserSettings.objects.filter(user_id=user.pk).values_list("language", flat=True).first()
    name = _esc(user.first_name or user.username or user.telegram_id)
    parts = [
        t("paysupport.ops.title", lang, request=request.pk),
        t(
            "paysupport.ops.sender",
            lang,
            name=f'<a href="tg://user?id={user.telegram_id}">{name}</a>',
            username=f" @{_esc(user.username)}" if user.username else "",
            telegram_id=user.telegram_id,
            user_id=user.pk,
            language=_esc(language or users.language_from_code(user.language_code)),
        ),
        t("paysupport.ops.message", lang, text=_esc(request.text)),
    ]
    lines = attached_lines(request.payments)
    if lines:
        total = listed_payments(user_id=user.pk).filter(created_at__lte=request.created_at).count()
        header = t("paysupport.ops.payments", lang, shown=len(lines), total=max(total, len(lines)))
        parts.append(header + "\n" + payment_lines(lines, lang, with_code=True))
    else:
        parts.append(t("paysupport.ops.no_payments", lang))
    parts.append(t("paysupport.ops.reply_hint", lang))
    return "\n\n".join(parts)


def send_request(*, request_id: int, chat_id: int) -> float | None:
    """forward_support_request: send operator `chat_id` their copy of the request, once. Returns a retry
    delay (seconds) when Telegram asks us to wait, else None (sent, or given up for good)."""
    request = SupportRequest.objects.select_related("user").filter(pk=request_id).first()
    if request is None:
        return None
    # The request's time makes the marker unique even if the database is recreated while the cache lives.
    return notify.send_once(
        chat_id=chat_id,
        text=operator_text(request=request, lang=admin_language()),
        marker=f"paysupport:{request.pk}:{request.created_at.timestamp():.6f}:{chat_id}:sent",
        what=f"payment support request #{request_id} to {chat_id}",
        level=logging.WARNING,
    )


def give_up(*, request_id: int, chat_id: int) -> None:
    """The task ran out of retries (Telegram kept asking to wait): the request stays in the table (open)."""
    log.error("payment support request #%s never reached operator %s (flood control)", request_id, chat_id)
