"""Messages to a user about their money that no bot update asked for: an operator's refund of a
generation ("your generation #N was refunded: X tokens are back") and an operator's grant or take of
tokens ("you received N tokens: <reason>" / "N tokens were deducted: <reason>").

The refund's service (`GenerationService.admin_refund`) calls `enqueue_refund_notice` on commit,
only for the call that actually refunded, so one refund is one notice. The Celery task
`botapp.tasks.notify_refund` sends it through the one Telegram sender (rate limits, 403 -> blocked),
on the send queue: the operator's admin request never waits for Telegram. A cache marker keeps a
redelivered or duplicated task from telling the user twice.

A grant or take (`BalanceService.admin_adjust`, notify=True) works the same way, keyed by the ledger
row: `enqueue_adjustment_notice(transaction_id=...)` on commit of a call that wrote (not a replayed
idempotency key), the task `botapp.tasks.notify_adjustment`, and a cache marker per ledger row.
"""

from __future__ import annotations

import html
import re
from decimal import Decimal

from django.db.models import Sum

from botapp.i18n import t
from botapp.models import ZERO, GenRequest, Transaction, UserBalance
from botapp.services import notify


def enqueue_refund_notice(*, request_id: int) -> None:
    """Hand the notice to the workers (call on commit). A broker failure never fails the refund."""
    notify.enqueue("notify_refund", request_id, what=f"generation #{request_id}: the refund notice")


def _tokens(value: Decimal) -> str:
    text = f"{Decimal(value).quantize(Decimal('0.01')):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def refund_notice_text(*, request: GenRequest, lang: str) -> str | None:
    """The notice in `lang`, or None when nothing was refunded."""
    refunded = Transaction.objects.filter(operation_key=request.refund_key, kind=Transaction.Kind.REFUND).aggregate(
        total=Sum("amount")
    )["total"]
    if not refunded:
        return None
    balance = UserBalance.objects.filter(user_id=request.user_id).first()
    total = balance.total if balance else ZERO
    return t("money.generation_refunded", lang, number=request.pk, amount=_tokens(refunded), balance=_tokens(total))


def send_refund_notice(*, request_id: int) -> float | None:
    """notify_refund: tell the user their generation was refunded. Returns a retry delay (seconds)
    when Telegram asks us to wait, else None (sent, or nothing to send)."""
    request = GenRequest.objects.select_related("user").filter(pk=request_id).first()
    if request is None or request.refunded_at is None or request.user.bot_blocked:
        return None
    text = refund_notice_text(request=request, lang=notify.language_of(request.user_id))
    if text is None:
        return None
    # The refund time makes the marker unique even if the database is recreated while the cache lives.
    # An unknown outcome is not repeated (the refund is in /balance anyway).
    return notify.send_once(
        chat_id=request.user.telegram_id,
        text=text,
        marker=f"gen:{request.pk}:{request.refunded_at.timestamp():.6f}:refund-notified",
        what=f"generation #{request_id}: the refund notice",
    )


# --- an operator's grant or take of tokens ----------------------------------------------------------------
# The admin signs the ledger's reason with the operator ("<reason> (by alice)"): the user sees the reason.
_OPERATOR_SIGNATURE = re.compile(r"\s*\(by [^()]*\)\s*$")


def enqueue_adjustment_notice(*, transaction_id: int) -> None:
    """Hand the grant/take notice to the workers (call on commit). A broker failure never fails the grant."""
    notify.enqueue("notify_adjustment", transaction_id, what=f"ledger row #{transaction_id}: the adjustment notice")


def user_reason(description: str) -> str:
    """The operator's reason as the user sees it: without the admin's "(by <operator>)" signature."""
    return _OPERATOR_SIGNATURE.sub("", description or "").strip()


def adjustment_notice_text(*, row: Transaction, lang: str) -> str | None:
    """The notice in `lang` for the adjustment `row` belongs to, or None when it moved nothing."""
    amount = Transaction.objects.filter(operation_key=row.operation_key, user_id=row.user_id).aggregate(
        total=Sum("amount")
    )["total"]
    if not amount:
        return None
    balance = UserBalance.objects.filter(user_id=row.user_id).first()
    key = "money.tokens_granted" if amount > 0 else "money.tokens_deducted"
    return t(
        key,
        lang,
        amount=_tokens(abs(amount)),
        reason=html.escape(user_reason(row.description), quote=False) or "—",
        balance=_tokens(balance.total if balance else ZERO),
    )


def send_adjustment_notice(*, transaction_id: int) -> float | None:
    """notify_adjustment: tell the user an operator granted or took tokens. Returns a retry delay
    (seconds) when Telegram asks us to wait, else None (sent, or nothing to send)."""
    row = (
        Transaction.objects.select_related("user")
        .filter(pk=transaction_id, kind=Transaction.Kind.ADMIN_ADJUSTMENT)
        .first()
    )
    if row is None or row.user.bot_blocked:
        return None
    text = adjustment_notice_text(row=row, lang=notify.language_of(row.user_id))
    if text is None:
        return None
    # The row's time makes the marker unique even if the database is recreated while the cache lives.
    # An unknown outcome is not repeated (the change is in /balance anyway).
    return notify.send_once(
        chat_id=row.user.telegram_id,
        text=text,
        marker=f"tx:{row.pk}:{row.created_at.timestamp():.6f}:adjust-notified",
        what=f"ledger row #{transaction_id}: the adjustment notice",
    )
