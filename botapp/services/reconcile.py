"""The Stars reconciliation: Telegram's Stars ledger (getStarTransactions) against our payments.

    python manage.py reconcile_stars [--days 30] [--no-alert]      (and the daily beat task reconcile_stars)

Telegram lists every Stars transaction of the bot, oldest first: a payment is a transaction whose id is
the `telegram_payment_charge_id`, with a `source` user, `transaction_type="invoice_payment"` and the
invoice payload; its refund is a second transaction with the same id and a `receiver` user. Within the
window (transactions and payments of the last `days` days; membership is checked against the whole
list, so nothing at the window's edge is flagged wrongly):

- **a charge on Telegram with no credited payment of ours**: the pending payment with its invoice
  payload is credited now, through the normal `PaymentService.complete` (exactly once per charge id, so
  a run interrupted halfway and run again credits nothing twice) -> finding `credited` (fixed); a
  payload we do not know -> `unknown_payload`; a payment `complete` refuses (another charge, another
  amount) -> `not_credited`. A charge Telegram has already refunded is not credited (nothing to do: noted);
  a Star subscription's charge (payload "sub:...") is credited as that subscription's month
  (botapp.services.subscriptions.credit_from_ledger, once per charge id);
- **a credited payment of ours that Telegram does not list** -> `unknown_to_telegram`;
- **a charge whose amount differs from our payment's** -> `amount_mismatch`;
- **a refund on Telegram's side only** (the `refunded_payment` message was lost): recorded now through the
  same path as that message (botapp.services.refunds.record_refund: what is left is taken back, the
  shortfall recorded) -> `refund_recorded` (fixed); if it cannot be -> `refund_not_recorded`;
- **a refund on our side only** (a payment marked refunded that Telegram did not refund) ->
  `refund_unknown_to_telegram`.

Every finding, fixed or not, is reported (a fix means the bot missed something): the command prints
them and exits non-zero when there is any, and ONE operator alert per run summarises them.

Cost: Telegram's list is the whole history, oldest first, with no date filter, so every run reads all
of it (one getStarTransactions call per 100 transactions, paced by TELEGRAM_AUX_RATE): about 100 calls
for 10,000 transactions. The window only limits what is compared. Should the history grow large, a
stored "offset before the window" would let a run skip the old pages (the list only grows at its end).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from botapp.models import Payment
from botapp.services import alerts
from botapp.services.exceptions import DomainError, UnknownSubscription
from botapp.services.payments import STARS as XTR
from botapp.services.payments import PaymentService
from botapp.services.refunds import SOURCE_RECONCILE, record_refund, shortfall_of
from botapp.services.subscriptions import PAYLOAD_PREFIX as SUBSCRIPTION_PREFIX
from botapp.services.subscriptions import credit_from_ledger
from botapp.telegram.sender import StarLedgerEntry, TelegramSender, get_sender

log = logging.getLogger(__name__)

PROVIDER = Payment.Provider.TELEGRAM_STARS
PAGE_SIZE = 100  # getStarTransactions' maximum
MAX_PAGES = 100_000  # a guard against a server that never ends its list
ALERT_LINES = 10  # findings listed in the operators' alert (the rest: "... and N more")
BATCH = 500  # charge ids per query

CREDITED = "credited"
UNKNOWN_PAYLOAD = "unknown_payload"
NOT_CREDITED = "not_credited"
UNKNOWN_TO_TELEGRAM = "unknown_to_telegram"
AMOUNT_MISMATCH = "amount_mismatch"
REFUND_RECORDED = "refund_recorded"
REFUND_NOT_RECORDED = "refund_not_recorded"
REFUND_UNKNOWN_TO_TELEGRAM = "refund_unknown_to_telegram"


class ReconcileError(DomainError):
    code = "reconcile_error"
    default_message = "The Stars reconciliation could not run: {reason}"


@dataclass(frozen=True)
class Finding:
    kind: str
    charge_id: str
    detail: str
    payment_id: int | None = None
    fixed: bool = False

    def line(self) -> str:
        payment = f" payment #{self.payment_id}" if self.payment_id else ""
        state = "FIXED" if self.fixed else "FLAG"
        return f"{state:5} {self.kind}: charge {self.charge_id}{payment}: {self.detail}"


@dataclass
class ReconcileReport:
    days: int
    since: datetime
    pages: int = 0
    transactions: int = 0
    telegram_payments: int = 0  # in the window
    telegram_refunds: int = 0  # in the window
    our_payments: int = 0  # credited payments of ours in the window
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def fixed(self) -> int:
        return sum(1 for finding in self.findings if finding.fixed)

    def counts(self) -> dict[str, int]:
        return {
            "transactions": self.transactions,
            "telegram_payments": self.telegram_payments,
            "telegram_refunds": self.telegram_refunds,
            "our_payments": self.our_payments,
            "findings": len(self.findings),
            "fixed": self.fixed,
        }

    def lines(self) -> list[str]:
        head = (
            f"Stars reconciliation since {self.since:%Y-%m-%d %H:%M} UTC ({self.days} days): read {self.transactions} "
            f"Telegram transactions in {self.pages} page(s); in the window {self.telegram_payments} payment(s) and "
            f"{self.telegram_refunds} refund(s) on Telegram, {self.our_payments} credited payment(s) of ours."
        )
        body = [finding.line() for finding in self.findings] + [f"note  {note}" for note in self.notes]
        if self.findings:
            tail = f"{len(self.findings)} finding(s), {self.fixed} fixed."
        else:
            tail = "OK: Telegram's ledger and our payments agree."
        return [head, *body, tail]


def read_ledger(sender: TelegramSender, *, page_size: int = PAGE_SIZE) -> tuple[list[StarLedgerEntry], int]:
    """Every transaction of the bot's Stars ledger, oldest first, and the number of pages read."""
    entries: list[StarLedgerEntry] = []
    for page_number in range(1, MAX_PAGES + 1):
        page = sender.star_transactions(offset=len(entries), limit=page_size)
        entries.extend(page)
        if len(page) < page_size:
            return entries, page_number
    raise ReconcileError(reason=f"getStarTransactions did not end after {MAX_PAGES} pages")


def _by_charge(charge_ids: Iterable[str]) -> dict[str, Payment]:
    ids = sorted(set(charge_ids))
    found: dict[str, Payment] = {}
    for start in range(0, len(ids), BATCH):
        for payment in Payment.objects.filter(provider=PROVIDER, provider_charge_id__in=ids[start : start + BATCH]):
            found[payment.provider_charge_id or ""] = payment
    return found


def reconcile_stars(
    *, days: int = 30, alert: bool = False, now: datetime | None = None, sender: TelegramSender | None = None
) -> ReconcileReport:
    """Compare the last `days` days of Telegram's Stars ledger with our payments, fix what can be fixed
    (credit an uncredited charge, record a refund Telegram made), report everything (module docstring).
    `alert`: one operator alert summarising the findings, if any."""
    sender = sender or get_sender()
    if sender is None:
        raise ReconcileError(reason="no bot token is configured (BOT_TOKEN)")
    now = now or timezone.now()
    report = ReconcileReport(days=days, since=now - timedelta(days=days))
    entries, report.pages = read_ledger(sender)
    report.transactions = len(entries)
    paid: dict[str, StarLedgerEntry] = {}
    refunded: dict[str, StarLedgerEntry] = {}
    for entry in entries:
        if entry.kind == "payment":
            paid.setdefault(entry.id, entry)
        elif entry.kind == "refund":
            refunded.setdefault(entry.id, entry)
    recent_paid = [entry for entry in paid.values() if entry.date >= report.since]
    recent_refunds = [entry for entry in refunded.values() if entry.date >= report.since]
    report.telegram_payments, report.telegram_refunds = len(recent_paid), len(recent_refunds)
    ours = _by_charge(entry.id for entry in [*recent_paid, *recent_refunds])

    for entry in recent_paid:  # Telegram's charges: credited by us, with the same amount?
        payment = ours.get(entry.id)
        if payment is None:
            if entry.id in refunded:
                report.notes.append(f"charge {entry.id} ({entry.amount} ⭐) was refunded on Telegram, never credited")
                continue
            finding = _credit(entry, now=now)
            if finding is not None:
                report.findings.append(finding)
        elif payment.amount != Decimal(entry.amount) or payment.currency != XTR:
            report.findings.append(
                Finding(
                    AMOUNT_MISMATCH,
                    entry.id,
                    f"Telegram: {entry.amount} ⭐, ours: {payment.amount} {payment.currency}",
                    payment.pk,
                )
            )

    credited = Payment.objects.filter(
        provider=PROVIDER,
        provider_charge_id__isnull=False,
        status__in=(Payment.Status.SUCCEEDED, Payment.Status.REFUNDED),
        paid_at__gte=report.since,
    ).order_by("pk")
    for payment in credited.iterator(chunk_size=BATCH):  # ours: does Telegram know the charge?
        report.our_payments += 1
        if payment.provider_charge_id not in paid:
            report.findings.append(
                Finding(
                    UNKNOWN_TO_TELEGRAM,
                    payment.provider_charge_id or "",
                    f"credited {payment.tokens} + {payment.bonus_tokens} tokens for {payment.amount} "
                    f"{payment.currency}, but Telegram does not list this charge",
                    payment.pk,
                )
            )

    for entry in recent_refunds:  # refunded on Telegram: refunded here too?
        payment = ours.get(entry.id)
        if payment is None or payment.status == Payment.Status.REFUNDED:
            continue  # never credited (noted above, or before the window), or already recorded
        finding = _record_refund(entry, payment)
        if finding is not None:
            report.findings.append(finding)

    refunded_here = Payment.objects.filter(
        provider=PROVIDER,
        status=Payment.Status.REFUNDED,
        refunded_at__gte=report.since,
        provider_charge_id__isnull=False,
    ).order_by("pk")
    for payment in refunded_here.iterator(chunk_size=BATCH):  # refunded here: refunded on Telegram too?
        if payment.provider_charge_id not in refunded:
            by = (payment.raw.get("refund") or {}).get("by") or "?"
            report.findings.append(
                Finding(
                    REFUND_UNKNOWN_TO_TELEGRAM,
                    payment.provider_charge_id or "",
                    f"marked refunded here (by {by}), but Telegram lists no refund: the user kept the Stars?",
                    payment.pk,
                )
            )

    for line in report.lines():
        log.log(logging.WARNING if report.findings else logging.INFO, "%s", line)
    if alert and report.findings:
        _alert(report)
    return report


def _credit(entry: StarLedgerEntry, *, now: datetime) -> Finding | None:
    """A charge on Telegram that no payment of ours carries: credit its invoice, the normal way."""
    payload = entry.invoice_payload or ""
    payment = Payment.objects.filter(invoice_payload=payload).first() if payload else None
    if payment is None and payload.startswith(SUBSCRIPTION_PREFIX):
        return _credit_subscription(entry, payload)
    if payment is None:
        return Finding(
            UNKNOWN_PAYLOAD,
            entry.id,
            f"{entry.amount} ⭐ from user {entry.user_id} for payload {payload!r}, which no payment of ours has",
        )
    try:
        outcome = PaymentService.complete(
            invoice_payload=payload,
            provider_charge_id=entry.id,
            total_amount=entry.amount,
            currency=XTR,
            raw={"reconciled_at": now.isoformat(), "telegram_date": entry.date.isoformat(), "by": "reconciliation"},
        )
    except DomainError as exc:
        return Finding(NOT_CREDITED, entry.id, f"{entry.amount} ⭐ not credited: {exc.message}", payment.pk)
    if not outcome.credited:  # credited meanwhile (the bot's handler was faster): nothing missing
        return None
    tokens = outcome.payment.tokens + outcome.payment.bonus_tokens
    log.warning("Stars charge %s was not credited: payment #%s credited now", entry.id, payment.pk)
    return Finding(
        CREDITED, entry.id, f"{entry.amount} ⭐ paid, never credited: {tokens} tokens credited now", payment.pk, True
    )


def _credit_subscription(entry: StarLedgerEntry, payload: str) -> Finding | None:
    """A Star subscription's charge we never saw (its update was lost): credit that month the normal way."""
    try:
        credited = credit_from_ledger(
            entry_id=entry.id, invoice_payload=payload, user_id=entry.user_id, amount=entry.amount, date=entry.date
        )
    except UnknownSubscription:
        return Finding(
            UNKNOWN_PAYLOAD,
            entry.id,
            f"{entry.amount} ⭐ from user {entry.user_id} for payload {payload!r}, which no subscription of ours has",
        )
    except DomainError as exc:
        detail = f"{entry.amount} ⭐ of subscription {payload!r} not credited: {exc.message}"
        return Finding(NOT_CREDITED, entry.id, detail)
    if not credited:
        return None
    payment = Payment.objects.filter(provider=PROVIDER, provider_charge_id=entry.id).first()
    log.warning("Stars charge %s of subscription %s was not credited: credited now", entry.id, payload)
    tokens = (payment.tokens + payment.bonus_tokens) if payment else "?"
    return Finding(
        CREDITED,
        entry.id,
        f"{entry.amount} ⭐ subscription month paid, never credited: {tokens} tokens credited now",
        payment.pk if payment else None,
        True,
    )


def _record_refund(entry: StarLedgerEntry, payment: Payment) -> Finding | None:
    """A refund Telegram made that we have not recorded: record it, the way a refunded_payment would."""
    try:
        result = record_refund(payment_id=payment.pk, by="reconciliation", source=SOURCE_RECONCILE)
    except DomainError as exc:
        return Finding(
            REFUND_NOT_RECORDED, entry.id, f"refunded on Telegram; not recorded here: {exc.message}", payment.pk
        )
    if not result.applied:  # recorded meanwhile (the refunded_payment message): nothing missing
        return None
    refund = result.payment.raw.get("refund") or {}
    shortfall = shortfall_of(result.payment)
    loss = f", shortfall {shortfall} tokens recorded as a loss" if shortfall > 0 else ""
    return Finding(
        REFUND_RECORDED,
        entry.id,
        f"refunded on Telegram ({entry.amount} ⭐), not here: recorded now, "
        f"{refund.get('taken', '0')} tokens taken back{loss}",
        payment.pk,
        fixed=True,
    )


def _alert(report: ReconcileReport) -> None:
    shown = [finding.line() for finding in report.findings[:ALERT_LINES]]
    if len(report.findings) > ALERT_LINES:
        shown.append(f"… and {len(report.findings) - ALERT_LINES} more")
    alerts.alert_operators(
        key="stars_reconcile",
        days=report.days,
        count=len(report.findings),
        fixed=report.fixed,
        summary="\n".join(shown),
    )
