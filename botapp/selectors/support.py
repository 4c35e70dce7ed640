"""Support, read side: find a user from whatever the person asking support pasted, and one user's
recent history (payments, generations, ledger rows, support messages) merged newest first.

Every lookup of `find_user_ids` is an exact match on an indexed column (no scan of the big tables):

    123 / #123      GenRequest.pk (the generation number the bot shows); a bare number is also a
                    Telegram id and a TgUser.pk (the union is returned)
    @name / name    TgUser.username, case-insensitive (the index on UPPER(username))
    ABCD2345        TgUser.referral_code (the unique index; codes are upper-case)
    charge id       Payment.provider_charge_id (the unique (provider, provider_charge_id) index, read
                    with every provider) and Payment.invoice_payload (unique)
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models.functions import Upper
from django.utils.html import strip_tags

from botapp.models import GenRequest, Payment, SupportMessage, TgUser, Transaction

MAX_TERM = 255  # longer than any key searched here
MAX_BIGINT = 2**63 - 1
PROMPT_CHARS = 120  # a prompt / message text is shortened to this many characters on a timeline line


# --- find a user ---------------------------------------------------------------------------------------
def _number(term: str) -> int | None:
    if term.isascii() and term.isdigit() and len(term) <= 19:
        value = int(term)
        return value if 0 < value <= MAX_BIGINT else None
    return None


def users_by_username(name: str) -> set[int]:
    """Users whose username is `name`, whatever the case (Telegram usernames are case-insensitive)."""
    name = name.strip().lstrip("@")
    if not name:
        return set()
    return set(
        TgUser.objects.alias(username_upper=Upper("username"))
        .filter(username_upper=name.upper())
        .values_list("pk", flat=True)
    )


def users_by_payment(key: str) -> set[int]:
    """The user of the payment whose provider charge id or invoice payload is `key` (exact)."""
    by_charge = Payment.objects.filter(provider__in=Payment.Provider.values, provider_charge_id=key)
    by_payload = Payment.objects.filter(invoice_payload=key)
    return set(by_charge.values_list("user_id", flat=True)) | set(by_payload.values_list("user_id", flat=True))


def users_by_generation(number: int) -> set[int]:
    return set(GenRequest.objects.filter(pk=number).values_list("user_id", flat=True))


def find_user_ids(term: str) -> set[int]:
    """The ids (TgUser.pk) of the users `term` names exactly: see the module docstring for the keys.
    An empty set when nothing matches (the admin then falls back to its text search)."""
    term = (term or "").strip()
    if not term or len(term) > MAX_TERM or any(char.isspace() for char in term):
        return set()
    if term.startswith("#"):
        number = _number(term[1:])
        return users_by_generation(number) if number is not None else set()
    if term.startswith("@"):
        return users_by_username(term[1:])
    found: set[int] = set()
    number = _number(term)
    if number is not None:
        found |= set(TgUser.objects.filter(telegram_id=number).values_list("pk", flat=True))
        found |= set(TgUser.objects.filter(pk=number).values_list("pk", flat=True))
        found |= users_by_generation(number)
    else:
        found |= users_by_username(term)
        codes = {term, term.upper()}
        found |= set(TgUser.objects.filter(referral_code__in=codes).values_list("pk", flat=True))
    found |= users_by_payment(term)
    return found


# --- a user's timeline ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResultFile:
    """One result file of a generation (GenRequest.results[index])."""

    index: int
    kind: str  # "image" | "video" | anything else the worker stored
    mime_type: str
    path: str
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    size: int | None = None

    @property
    def is_image(self) -> bool:
        return self.kind == "image" or self.mime_type.startswith("image/")

    @property
    def is_video(self) -> bool:
        return self.kind == "video" or self.mime_type.startswith("video/")


@dataclass(frozen=True)
class TimelineEntry:
    """One line of the timeline. `source` is the model ("payment", "generation", "ledger", "message")
    and `pk` its row; `amount` is signed (tokens in for a payment, the price out for a generation)."""

    source: str
    pk: int
    at: datetime
    kind: str  # the row's kind / provider (a badge)
    kind_label: str
    status: str = ""
    status_label: str = ""
    amount: Decimal | None = None
    detail: str = ""  # a payment's price, a ledger row's bucket and balance after
    model: str = ""
    text: str = ""  # a prompt / description / message, shortened
    error: str = ""  # an error code (a generation) or a send error (a message)
    refunded: bool = False  # a generation refunded
    related: tuple[tuple[str, int], ...] = ()  # (source, pk) of the rows a ledger row belongs to
    files: tuple[ResultFile, ...] = field(default=())


def shorten(text: str, limit: int = PROMPT_CHARS) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def result_files(results: Iterable[dict] | None) -> tuple[ResultFile, ...]:
    """The stored files of GenRequest.results (items without a path, e.g. a demo's, are skipped)."""
    files = []
    for index, item in enumerate(results or ()):
        if not isinstance(item, dict) or not item.get("path"):
            continue
        files.append(
            ResultFile(
                index=index,
                kind=str(item.get("kind") or ""),
                mime_type=str(item.get("mime_type") or ""),
                path=str(item["path"]),
                width=item.get("width"),
                height=item.get("height"),
                duration=item.get("duration"),
                size=item.get("size"),
            )
        )
    return tuple(files)


def _payments(user_id: int, limit: int) -> list[TimelineEntry]:
    rows = Payment.objects.filter(user_id=user_id).order_by("-created_at", "-pk")[:limit]
    return [
        TimelineEntry(
            source="payment",
            pk=row.pk,
            at=row.paid_at or row.created_at,
            kind=row.provider,
            kind_label=row.get_provider_display(),
            status=row.status,
            status_label=row.get_status_display(),
            amount=row.tokens + row.bonus_tokens,
            detail=f"{row.amount} {row.currency}",
            text=row.provider_charge_id or row.invoice_payload,
        )
        for row in rows
    ]


def _generations(user_id: int, limit: int) -> list[TimelineEntry]:
    rows = GenRequest.objects.filter(user_id=user_id).select_related("ai_model").order_by("-created_at", "-pk")[:limit]
    return [
        TimelineEntry(
            source="generation",
            pk=row.pk,
            at=row.created_at,
            kind=row.kind,
            kind_label=row.get_kind_display(),
            status=row.status,
            status_label=row.get_status_display(),
            amount=-row.price if row.price else None,
            refunded=row.refunded_at is not None,
            model=str(row.ai_model) if row.ai_model_id else row.model,
            text=shorten(row.prompt),
            error=row.error_code,
            files=result_files(row.results),
        )
        for row in rows
    ]


def _ledger(user_id: int, limit: int) -> list[TimelineEntry]:
    rows = Transaction.objects.filter(user_id=user_id).order_by("-created_at", "-pk")[:limit]
    entries = []
    for row in rows:
        related = tuple(
            (source, pk)
            for source, pk in (
                ("generation", row.gen_request_id),
                ("payment", row.payment_id),
                ("promocode", row.promocode_id),
            )
            if pk
        )
        entries.append(
            TimelineEntry(
                source="ledger",
                pk=row.pk,
                at=row.created_at,
                kind=row.kind,
                kind_label=row.get_kind_display(),
                amount=row.amount,
                detail=f"{row.get_bucket_display()} → {row.balance_after}",
                text=shorten(row.description),
                related=related,
            )
        )
    return entries


def _messages(user_id: int, limit: int) -> list[TimelineEntry]:
    rows = SupportMessage.objects.filter(user_id=user_id).order_by("-created_at", "-pk")[:limit]
    return [
        TimelineEntry(
            source="message",
            pk=row.pk,
            at=row.created_at,
            kind="message",
            kind_label=str(SupportMessage._meta.verbose_name),
            status=row.status,
            status_label=row.get_status_display(),
            detail=row.operator_name,
            text=shorten(html.unescape(strip_tags(row.text))),  # what the user reads, without the markup
            error=row.error,
        )
        for row in rows
    ]


SOURCES = {"payment": _payments, "generation": _generations, "ledger": _ledger, "message": _messages}


def user_timeline(*, user_id: int, limit: int = 50, sources: Iterable[str] = tuple(SOURCES)) -> list[TimelineEntry]:
    """The user's `limit` newest payments, generations, ledger rows and support messages, merged newest
    first (each source reads at most `limit` rows, through its (user, created_at) index)."""
    entries: list[TimelineEntry] = []
    for name in sources:
        entries.extend(SOURCES[name](user_id, limit))
    order = {name: position for position, name in enumerate(SOURCES)}
    entries.sort(key=lambda entry: (entry.at, -order[entry.source], entry.pk), reverse=True)
    return entries[:limit]
