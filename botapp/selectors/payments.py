"""Payments, read side: a user's payments as the bot lists them (the balance screen, /paysupport and
the operators' copy of a support request).

A listed payment is one that money moved for, or may have: everything but an invoice that was never
paid (a pending or cancelled invoice without a provider charge id: Telegram charges Stars only at the
successful payment, so such a row is just an invoice the user opened). A card payment carries its
provider's id from the start, so a pending one (money possibly on its way) is listed.

Newest first (by creation, then id); two queries a page (the count and the rows), through the
payment's user index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Q, QuerySet

from botapp.models import Payment

DEFAULT_PER_PAGE = 5
MAX_PER_PAGE = 50

_UNPAID_INVOICE = Q(status__in=(Payment.Status.PENDING, Payment.Status.CANCELLED)) & (
    Q(provider_charge_id__isnull=True) | Q(provider_charge_id="")
)


@dataclass(frozen=True, slots=True)
class PaymentLine:
    """One payment as the user and support see it (a cache-safe copy of `Payment`)."""

    id: int
    at: datetime  # when it was paid, else when it was created
    provider: str
    status: str
    amount: Decimal
    currency: str
    tokens: Decimal
    bonus_tokens: Decimal
    charge_id: str  # the provider's charge id ("" until paid)

    @property
    def code(self) -> str:
        """What support finds the payment by: the provider's charge id, else our #id."""
        return self.charge_id or f"#{self.id}"


@dataclass(frozen=True, slots=True)
class PaymentPage:
    items: tuple[PaymentLine, ...]
    page: int  # 1-based, within 1..pages
    pages: int  # at least 1
    total: int  # listed payments in all
    per_page: int

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def listed_payments(*, user_id: int) -> QuerySet[Payment]:
    """The user's payments the bot lists (see the module docstring), newest first."""
    return Payment.objects.filter(user_id=user_id).exclude(_UNPAID_INVOICE).order_by("-created_at", "-pk")


def _line(row: Payment) -> PaymentLine:
    return PaymentLine(
        id=row.pk,
        at=row.paid_at or row.created_at,
        provider=row.provider,
        status=row.status,
        amount=row.amount,
        currency=row.currency,
        tokens=row.tokens,
        bonus_tokens=row.bonus_tokens,
        charge_id=row.provider_charge_id or "",
    )


def user_payments(*, user_id: int, page: int = 1, per_page: int = DEFAULT_PER_PAGE) -> PaymentPage:
    """Page `page` (1-based) of the user's listed payments, `per_page` to a page (1..MAX_PER_PAGE).
    A page past the end gives the last page, a page before the first the first one."""
    per_page = max(1, min(int(per_page), MAX_PER_PAGE))
    rows = listed_payments(user_id=user_id)
    total = rows.count()
    pages = max(1, -(-total // per_page))
    page = max(1, min(int(page), pages))
    start = (page - 1) * per_page
    items = tuple(_line(row) for row in rows[start : start + per_page]) if total else ()
    return PaymentPage(items=items, page=page, pages=pages, total=total, per_page=per_page)


# --- refunds of tokens already spent (the policy: botapp.services.refunds.flag_spent_refund) ---------------
@dataclass(frozen=True)
class SpentRefund:
    """A refund the payer had already spent part of: what was lost on it (their part of the shortfall)."""

    payment_id: int
    shortfall: Decimal


def spent_refunds(*, user_id: int) -> list[SpentRefund]:
    """The user's refunded payments whose tokens they had partly spent first, oldest first: from each
    payment's refund record (a card payment refunded in parts: from each part)."""
    found: list[SpentRefund] = []
    refunded = Payment.objects.filter(user_id=user_id).filter(
        Q(status=Payment.Status.REFUNDED) | Q(raw__has_key="card_refunds")
    )
    for pk, raw in refunded.order_by("created_at", "pk").values_list("pk", "raw"):
        raw = raw or {}
        parts = raw.get("card_refunds")
        entries = list(parts.values()) if isinstance(parts, dict) and parts else [raw.get("refund") or {}]
        shortfall = sum((Decimal(str(entry.get("user_shortfall") or "0")) for entry in entries), Decimal(0))
        if shortfall > 0:
            found.append(SpentRefund(payment_id=pk, shortfall=shortfall))
    return found
