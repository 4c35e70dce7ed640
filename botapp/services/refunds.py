"""Refunds of Telegram Stars payments, whoever makes them, and what they take back from the ledger.

Three ways a Stars payment gets refunded, one way to take the tokens back (`record_refund`):

- **an operator** in the admin ("Refund Stars payment…" on a payment): `refund_stars_payment` checks the
  payment, asks Telegram (`refundStarPayment` through the one sender), and only once Telegram said yes
  records the refund;
- **Telegram itself** (its support, a chargeback): the bot gets a message with `refunded_payment`
  (botapp/handlers/refunds.py) -> `record_external_refund`, and the operators are alerted;
- **the reconciliation** (botapp/services/reconcile.py) finds a refund on Telegram's side that we have
  not recorded (the message was lost) and records it.

`record_refund` runs in one transaction, under the payment's row lock, then the payer's balance row,
then the referrer's (the order `PaymentService.complete` locks them in): the payment moves
succeeded -> refunded once, whoever calls, and only that call takes back

- the tokens the payment credited, from the buckets they went to (its `deposit` rows in the ledger:
  purchased tokens from the main bucket, its bonus from the bonus bucket), ledger key
  `payment:<payment id>:refund`;
- the referral reward it produced (its `referral` rows: the referrer's bonus bucket), ledger key
  `referral:payment:<payment id>:refund`;

each as `payment_refund` rows linked to the payment. Nothing else is given back or freed (a promocode
the payment consumed stays consumed). The user is told after commit (task `notify_payment_refund`, in
their language): "your payment of N ⭐ was refunded; X tokens were taken back".

**The rule when tokens were already spent.** A bucket is never taken below zero: only what is left of
what the payment put there is taken, and the rest is the *shortfall*, a loss. An operator's refund that
would record a shortfall (the payer spent some of the tokens, or the referrer spent some of the reward)
is refused before Telegram is asked, unless the operator ticks "refund anyway": then what is left is
taken and the shortfall recorded. A refund Telegram already made (by its support, or "already
refunded" answered to us) is a fact: it is always recorded the same way, with its shortfall. The
shortfall is recorded in `Payment.raw["refund"]` (`by`, `at`, `shortfall` in tokens, the payer's and
the referrer's parts, what was taken, the source) and in the ledger rows' description. (A spend between
the operator's check and the refund is recorded as a shortfall too: Telegram's refund cannot be undone.)

Failures: Telegram refusing (CHARGE_NOT_FOUND, too old...) changes nothing and says why
(`RefundRefused`); an unknown outcome (a timeout) changes nothing either (`RefundOutcomeUnknown`): the
operator retries, and if the first call went through Telegram answers CHARGE_ALREADY_REFUNDED, which is
recorded as a refund made elsewhere. A second submit of the same form (its one-time `key`) is a replay.
Before asking Telegram, the operator's request is noted on the payment (`raw["refund_requested"]`,
committed): a `refunded_payment` Telegram may send for our own refund, even before our call returns, is
then recorded as the operator's (their name and form key, no "refunded outside the admin" alert).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from botapp.i18n import t
from botapp.models import ZERO, Payment, Transaction, UserBalance
from botapp.services import alerts, notify
from botapp.services.balance import CENT, BalanceService
from botapp.services.exceptions import DomainError, PaymentError
from botapp.telegram.sender import BotBlocked, OutcomeUnknown, RetryLater, SendRejected, TelegramError, get_sender

log = logging.getLogger(__name__)

STARS = Payment.Provider.TELEGRAM_STARS
CREDIT_KINDS = (Transaction.Kind.DEPOSIT, Transaction.Kind.REFERRAL)  # what a payment credited

# Who recorded a refund (Payment.raw["refund"]["source"]).
SOURCE_ADMIN = "admin"
SOURCE_TELEGRAM = "telegram"
SOURCE_RECONCILE = "reconcile"
SOURCE_PROVIDER = "provider"


# --- errors (operator-facing: English, shown as is in the admin) -------------------------------------------
class RefundError(PaymentError):
    code = "refund_error"
    default_message = "The payment could not be refunded."


class RefundNotAllowed(RefundError):
    code = "refund_not_allowed"
    default_message = "Only a successful Telegram Stars payment can be refunded here."


class AlreadyRefunded(RefundError):
    code = "refund_already_refunded"
    default_message = "Payment #{payment_id} is already refunded (by {by}); nothing changed."


class RefundShortfall(RefundError):
    code = "refund_shortfall"
    default_message = (
        "Not refunded: {shortfall} of the tokens this payment gave were already spent ({detail}). "
        "Tick “refund anyway” to refund and record the shortfall as a loss."
    )


class RefundRefused(RefundError):
    code = "refund_refused"
    default_message = "Telegram refused the refund: {reason}. Nothing changed."


class RefundOutcomeUnknown(RefundError):
    code = "refund_outcome_unknown"
    default_message = (
        "Telegram did not answer ({reason}): the refund may or may not have been made. Nothing was taken "
        "back; try again (if it went through, Telegram answers “already refunded” and it is recorded then)."
    )


# --- what a refund takes back -----------------------------------------------------------------------------
@dataclass(frozen=True)
class TakeBack:
    """One user's part of a refund: what the payment put in each bucket and what is there now."""

    user_id: int
    main: Decimal
    bonus: Decimal
    available_main: Decimal
    available_bonus: Decimal

    @property
    def credited(self) -> Decimal:
        return self.main + self.bonus

    @property
    def available(self) -> Decimal:
        return self.available_main + self.available_bonus

    @property
    def take_main(self) -> Decimal:
        return max(ZERO, min(self.available_main, self.main))

    @property
    def take_bonus(self) -> Decimal:
        return max(ZERO, min(self.available_bonus, self.bonus))

    @property
    def taken(self) -> Decimal:
        return self.take_main + self.take_bonus

    @property
    def shortfall(self) -> Decimal:
        return self.credited - self.taken


@dataclass(frozen=True)
class RefundPlan:
    payment_id: int
    stars: int
    user: TakeBack
    referrer: TakeBack | None

    @property
    def shortfall(self) -> Decimal:
        return self.user.shortfall + (self.referrer.shortfall if self.referrer else ZERO)


@dataclass(frozen=True)
class RefundResult:
    payment: Payment
    applied: bool  # this call recorded the refund (False: it was recorded before)
    plan: RefundPlan | None = None  # what this call took back (None when not applied)
    refunded_elsewhere: bool = False  # Telegram had already refunded it (support, an earlier attempt)
    replayed: bool = False  # the same form (key) was applied before


def _money(value: Decimal | None) -> Decimal:
    return (value or ZERO).quantize(CENT)  # SQLite sums decimals as floats: whole cents, exactly


def _balances(user_id: int, *, lock: bool) -> tuple[Decimal, Decimal]:
    rows = UserBalance.objects.filter(user_id=user_id)
    if lock:
        rows = rows.select_for_update()
    found = rows.values_list("balance", "bonus_balance").first()
    return (found[0], found[1]) if found else (ZERO, ZERO)


def _portion(value: Decimal, share: tuple[Decimal, Decimal]) -> Decimal:
    """The part of `value` between the fractions `share` = (before, after) of a payment refunded in parts:
    the parts of successive refunds add up to exactly `value` (each end rounded the same way)."""
    low, high = share
    return (value * high).quantize(CENT) - (value * low).quantize(CENT)


def _plan(payment: Payment, *, lock: bool, share: tuple[Decimal, Decimal] = (ZERO, Decimal(1))) -> RefundPlan:
    """What the payment credited (its ledger rows) against what is there now (locked with `lock`).
    `share`: the fractions of the payment refunded before and after this refund (a card payment refunded
    in parts); the whole payment by default."""
    credited: dict[tuple[int, str, str], Decimal] = {}
    rows = (
        Transaction.objects.filter(payment_id=payment.pk, kind__in=CREDIT_KINDS)
        .values("user_id", "kind", "bucket")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    for row in rows:
        credited[(row["user_id"], row["kind"], row["bucket"])] = _portion(_money(row["total"]), share)
    referrers = sorted({user_id for user_id, kind, _ in credited if kind == Transaction.Kind.REFERRAL})
    if len(referrers) > 1:  # one reward per payment (its ledger key): anything else is not ours to guess
        raise RefundError(f"Payment #{payment.pk} has referral rewards for several users; refund it by hand.")

    def part(user_id: int, kind: str) -> TakeBack:
        main, bonus = _balances(user_id, lock=lock)
        return TakeBack(
            user_id=user_id,
            main=credited.get((user_id, kind, Transaction.Bucket.MAIN), ZERO),
            bonus=credited.get((user_id, kind, Transaction.Bucket.BONUS), ZERO),
            available_main=main,
            available_bonus=bonus,
        )

    user = part(payment.user_id, Transaction.Kind.DEPOSIT)  # locked first: the order complete() locks in
    referrer = part(referrers[0], Transaction.Kind.REFERRAL) if referrers else None
    return RefundPlan(payment_id=payment.pk, stars=int(payment.amount), user=user, referrer=referrer)


def plan_refund(*, payment_id: int) -> RefundPlan:
    """What refunding the payment would take back now (for the admin's confirmation; nothing locked)."""
    return _plan(Payment.objects.get(pk=payment_id), lock=False)


def _shortfall_note(shortfall: Decimal) -> str:
    return f"; shortfall {shortfall} tokens recorded as a loss" if shortfall > 0 else ""


# --- the one path that records a refund ------------------------------------------------------------------
def record_refund(
    *, payment_id: int, by: str, source: str, key: str = "", refunded_elsewhere: bool = False, notify: bool = True
) -> RefundResult:
    """Record that the payment was refunded (the provider already gave the money back): take back what
    it credited and its referral reward, as far as they are left (the shortfall is recorded), once.
    A payment already refunded is not touched (`applied=False`; `replayed` when `key` is the one that
    refunded it). `notify`: the call that records tells the user, after commit."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status == Payment.Status.REFUNDED:
            prior = payment.raw.get("refund") or {}
            return RefundResult(payment=payment, applied=False, replayed=bool(key) and prior.get("key") == key)
        if payment.status != Payment.Status.SUCCEEDED:
            raise RefundNotAllowed(f"Payment #{payment.pk} is {payment.status}: only a successful payment is refunded.")
        plan = _plan(payment, lock=True)
        moved = _take_back(payment, plan, by=by, what=f"{plan.stars} ⭐")
        now = timezone.now()
        payment.status = Payment.Status.REFUNDED
        payment.refunded_at = now
        payment.raw = {
            **payment.raw,
            "refund": {
                **moved.record(by=by, at=now, source=source, key=key),
                "refunded_elsewhere": refunded_elsewhere,
            },
        }
        payment.save(update_fields=["status", "refunded_at", "raw"])
        flag_spent_refund(payment, moved, by=by)
        if notify:
            transaction.on_commit(lambda: enqueue_refund_notice(payment_id=payment_id))
    moved.log_shortfall(payment_id, source=source, by=by)
    return RefundResult(payment=payment, applied=True, plan=plan, refunded_elsewhere=refunded_elsewhere)


@dataclass(frozen=True)
class _Moved:
    """What one refund took back (and could not: the shortfalls)."""

    taken: Decimal
    user_shortfall: Decimal
    referral_taken: Decimal
    referrer_shortfall: Decimal
    referrer_id: int | None

    @property
    def shortfall(self) -> Decimal:
        return self.user_shortfall + self.referrer_shortfall

    def record(self, *, by: str, at, source: str, key: str) -> dict:
        return {
            "by": by,
            "at": at.isoformat(),
            "source": source,
            "shortfall": str(self.shortfall),
            "user_shortfall": str(self.user_shortfall),
            "referrer_shortfall": str(self.referrer_shortfall),
            "taken": str(self.taken),
            "referral_taken": str(self.referral_taken),
            "referrer_id": self.referrer_id,
            "key": key,
        }

    def log_shortfall(self, payment_id: int, *, source: str, by: str) -> None:
        if self.shortfall > 0:
            log.warning(
                "payment #%s refunded (%s, by %s) with a shortfall of %s tokens (payer %s, referrer %s)",
                payment_id,
                source,
                by,
                self.shortfall,
                self.user_shortfall,
                self.referrer_shortfall,
            )


def _take_back(payment: Payment, plan: RefundPlan, *, by: str, what: str, part: str = "") -> _Moved:
    """Take back, under the locks `_plan` took, what `plan` says: from the payer's buckets and the
    referrer's reward, never below zero (the rest is the shortfall). `part`: a refund of part of the
    payment (its id), which gets ledger keys of its own."""
    user, referrer = plan.user, plan.referrer
    suffix = f":{part}" if part else ""
    taken = BalanceService.take_back(
        user_id=user.user_id,
        main=user.main,
        bonus=user.bonus,
        key=f"payment:{payment.pk}:refund{suffix}",
        payment=payment,
        description=f"Payment #{payment.pk} refunded ({what}){_shortfall_note(user.shortfall)}; by {by}",
    )
    user_shortfall = user.credited + taken.amount  # taken.amount is negative (or zero)
    referral_taken, referrer_shortfall = ZERO, ZERO
    if referrer is not None and referrer.credited > 0:
        reward = BalanceService.take_back(
            user_id=referrer.user_id,
            main=referrer.main,
            bonus=referrer.bonus,
            key=f"referral:payment:{payment.pk}:refund{suffix}",
            payment=payment,
            description=(
                f"Referral reward for payment #{payment.pk} taken back: the payment was refunded ({what})"
                f"{_shortfall_note(referrer.shortfall)}; by {by}"
            ),
        )
        referral_taken, referrer_shortfall = -reward.amount, referrer.credited + reward.amount
    return _Moved(
        taken=-taken.amount,
        user_shortfall=user_shortfall,
        referral_taken=referral_taken,
        referrer_shortfall=referrer_shortfall,
        referrer_id=referrer.user_id if referrer else None,
    )


def flag_spent_refund(payment: Payment, moved: _Moved, *, by: str) -> None:
    """The policy for tokens spent before a refund (in the refund's transaction). The spent part is a
    loss: it is recorded with the refund (the shortfall) and never becomes a debt or a negative balance.
    The payer is flagged: their admin page lists such refunds, and at REFUND_SHORTFALL_BAN_AFTER of them
    (the second, by default) they are banned, as someone who spends and then claws the money back, and
    the operators are alerted. 0 turns the ban off."""
    from django.conf import settings

    from botapp.models import TgUser
    from botapp.selectors.payments import spent_refunds

    if moved.user_shortfall <= 0 or settings.REFUND_SHORTFALL_BAN_AFTER <= 0:
        return
    spent = spent_refunds(user_id=payment.user_id)
    if len(spent) < settings.REFUND_SHORTFALL_BAN_AFTER:
        return
    reason = "Refunded after spending: " + ", ".join(f"payment #{s.payment_id} ({s.shortfall} tokens)" for s in spent)
    if TgUser.objects.filter(pk=payment.user_id, is_banned=False).update(is_banned=True, ban_reason=reason[:255]):
        log.warning("user #%s banned: %s (refund by %s)", payment.user_id, reason, by)
        alerts.alert_operators(
            key="banned_after_spent_refunds", user_id=payment.user_id, count=len(spent), reason=reason
        )


def shortfall_of(payment: Payment) -> Decimal:
    """The loss recorded with the payment's refund (0 when none, or not refunded)."""
    return Decimal((payment.raw.get("refund") or {}).get("shortfall") or "0")


# --- an operator's refund ---------------------------------------------------------------------------------
def refund_stars_payment(*, payment_id: int, operator: str, refund_anyway: bool = False, key: str) -> RefundResult:
    """Refund a Telegram Stars payment: ask Telegram, then take back what it credited (see the module
    docstring for the rule when tokens were spent). `key`: the one-time key of the operator's form, so
    that the same form submitted twice refunds once (the second is `replayed`)."""
    payment, replay = operator_payment(payment_id=payment_id, key=key, why_not=why_not_refundable)
    if replay is not None:
        return replay
    plan = _plan(payment, lock=False)
    check_shortfall(plan, refund_anyway=refund_anyway)
    sender = get_sender()
    if sender is None:
        raise RefundRefused(reason="no bot token is configured (BOT_TOKEN)")
    _mark_requested(payment_id=payment.pk, by=operator, key=key)
    elsewhere = False
    try:
        sender.refund_star_payment(payment.user.telegram_id, payment.provider_charge_id)
    except SendRejected as exc:
        if "CHARGE_ALREADY_REFUNDED" not in str(exc).upper():
            _mark_requested(payment_id=payment.pk, by=operator, key=key, clear=True)
            raise RefundRefused(reason=_telegram_reason(exc)) from exc
        elsewhere = True  # it IS refunded: by Telegram's support, or by an attempt whose answer was lost
        log.warning("payment #%s: Telegram says it was already refunded; recording it", payment.pk)
    except (OutcomeUnknown, RetryLater) as exc:
        raise RefundOutcomeUnknown(reason=str(exc)) from exc  # the request stays marked: it may have been made
    except (BotBlocked, TelegramError) as exc:
        _mark_requested(payment_id=payment.pk, by=operator, key=key, clear=True)
        raise RefundRefused(reason=_telegram_reason(exc)) from exc
    result = record_refund(
        payment_id=payment.pk, by=operator, source=SOURCE_ADMIN, key=key, refunded_elsewhere=elsewhere
    )
    if result.applied:
        return result
    if result.replayed:  # Telegram announced this very refund and the bot recorded it for this form first
        return RefundResult(payment=result.payment, applied=True, refunded_elsewhere=elsewhere)
    # Recorded meanwhile by another path (another operator, Telegram's support): once.
    return RefundResult(payment=result.payment, applied=False, refunded_elsewhere=elsewhere)


def operator_payment(
    *, payment_id: int, key: str, why_not: Callable[[Payment], RefundError | None]
) -> tuple[Payment, RefundResult | None]:
    """The payment an operator's form refunds, and the replay when this very form refunded it already;
    raises RefundNotAllowed for no such payment, or `why_not`'s error when it cannot be refunded."""
    payment = Payment.objects.select_related("user").filter(pk=payment_id).first()
    if payment is None:
        raise RefundNotAllowed("No such payment.")
    prior = payment.raw.get("refund") or {}
    if payment.status == Payment.Status.REFUNDED and key and prior.get("key") == key:
        return payment, RefundResult(payment=payment, applied=False, replayed=True)
    blocker = why_not(payment)
    if blocker is not None:
        raise blocker
    return payment, None


def check_shortfall(plan: RefundPlan, *, refund_anyway: bool) -> None:
    """An operator's refund that would record a shortfall is refused (RefundShortfall, saying who spent
    what) unless they ticked "refund anyway"."""
    if plan.shortfall <= 0 or refund_anyway:
        return
    parts = [f"the payer has {plan.user.available} of {plan.user.credited}"]
    if plan.referrer is not None and plan.referrer.shortfall > 0:
        parts.append(f"the referrer has {plan.referrer.available} of the {plan.referrer.credited} reward")
    raise RefundShortfall(shortfall=plan.shortfall, detail="; ".join(parts))


def _mark_requested(*, payment_id: int, by: str, key: str, clear: bool = False) -> None:
    """Note on the payment (committed before Telegram is asked) that an operator is refunding it, so that
    a `refunded_payment` Telegram sends for it (maybe before our own call returns) is recorded as theirs,
    with their form's key, rather than as a refund made outside the admin. Cleared when Telegram refuses."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status != Payment.Status.SUCCEEDED:
            return
        raw = {name: value for name, value in payment.raw.items() if name != "refund_requested"}
        if not clear:
            raw["refund_requested"] = {"by": by, "key": key, "at": timezone.now().isoformat()}
        payment.raw = raw
        payment.save(update_fields=["raw"])


def requested_by_operator(payment: Payment) -> dict | None:
    """The operator's pending refund request of this payment (`_mark_requested`), if any."""
    requested = payment.raw.get("refund_requested")
    return requested if isinstance(requested, dict) and requested.get("by") else None


def why_not_refundable(payment: Payment) -> RefundError | None:
    """Why an operator cannot refund this payment here (the error to raise), or None when they can."""
    if payment.status == Payment.Status.REFUNDED:
        return AlreadyRefunded(payment_id=payment.pk, by=(payment.raw.get("refund") or {}).get("by") or "the provider")
    if payment.provider != STARS or not payment.provider_charge_id:
        return RefundNotAllowed()
    if payment.status != Payment.Status.SUCCEEDED:
        return RefundNotAllowed(f"Payment #{payment.pk} is {payment.status}: only a successful payment is refunded.")
    return None


def _telegram_reason(exc: Exception) -> str:
    text = str(exc)
    for prefix in ("Telegram server says - ", "Bad Request: "):
        text = text.replace(prefix, "")
    return text.strip() or type(exc).__name__


# --- a refund Telegram made (refunded_payment) ------------------------------------------------------------
@dataclass(frozen=True)
class ExternalRefund:
    status: str  # "recorded", "already" (recorded before: a repeat, or our own refund), "unknown"
    payment_id: int | None = None
    shortfall: Decimal = ZERO


def record_external_refund(
    *, charge_id: str, telegram_id: int, total_amount: int, currency: str, invoice_payload: str
) -> ExternalRefund:
    """A `refunded_payment` arrived (Telegram refunded a payment without us, or announces ours): take
    back what the payment credited once per charge id (what is left; the shortfall recorded) and alert
    the operators. An unknown charge: logged and alerted, nothing else."""
    payment = Payment.objects.filter(provider=STARS, provider_charge_id=charge_id).first()
    if payment is None:
        log.error(
            "refunded_payment for an unknown charge %s (user %s, %s %s, payload %s)",
            charge_id,
            telegram_id,
            total_amount,
            currency,
            invoice_payload,
        )
        alerts.alert_operators(
            key="stars_refund_unknown_charge",
            telegram_id=telegram_id,
            amount=total_amount,
            currency=currency,
            charge_id=charge_id,
            payload=invoice_payload,
        )
        return ExternalRefund(status="unknown")
    requested = requested_by_operator(payment)
    try:
        if requested is not None:  # our own refund, announced by Telegram: the operator's, with their key
            result = record_refund(
                payment_id=payment.pk, by=requested["by"], source=SOURCE_ADMIN, key=requested.get("key") or ""
            )
        else:
            result = record_refund(payment_id=payment.pk, by="Telegram", source=SOURCE_TELEGRAM)
    except DomainError as exc:
        log.error("refunded_payment for payment #%s could not be recorded: %s", payment.pk, exc.message)
        alerts.alert_operators(
            key="stars_refund_unknown_charge",
            telegram_id=telegram_id,
            amount=total_amount,
            currency=currency,
            charge_id=charge_id,
            payload=f"{invoice_payload} (payment #{payment.pk}: {exc.message})",
        )
        return ExternalRefund(status="unknown", payment_id=payment.pk)
    if not result.applied:
        log.info("refunded_payment for payment #%s: already recorded", payment.pk)
        return ExternalRefund(status="already", payment_id=payment.pk)
    shortfall = shortfall_of(result.payment)
    if requested is not None:
        log.info("refunded_payment for payment #%s: the refund %s asked for, recorded", payment.pk, requested["by"])
        return ExternalRefund(status="recorded", payment_id=payment.pk, shortfall=shortfall)
    alerts.alert_operators(
        key="stars_refunded_externally",
        payment_id=payment.pk,
        telegram_id=telegram_id,
        amount=total_amount,
        taken=(result.payment.raw.get("refund") or {}).get("taken", "0"),
        shortfall=shortfall,
        charge_id=charge_id,
    )
    return ExternalRefund(status="recorded", payment_id=payment.pk, shortfall=shortfall)


# --- telling the user -------------------------------------------------------------------------------------
def enqueue_refund_notice(*, payment_id: int) -> None:
    """Hand the notice to the workers (call on commit). A broker failure never fails the refund."""
    notify.enqueue("notify_payment_refund", payment_id, what=f"payment #{payment_id}: the refund notice")


def _tokens(value: Decimal) -> str:
    text = f"{Decimal(value).quantize(CENT):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def refund_notice_text(*, payment: Payment, lang: str) -> str:
    taken = -_money(
        Transaction.objects.filter(
            payment_id=payment.pk, user_id=payment.user_id, kind=Transaction.Kind.PAYMENT_REFUND
        ).aggregate(total=Sum("amount"))["total"]
    )
    balance = UserBalance.objects.filter(user_id=payment.user_id).first()
    unit = "⭐" if payment.currency == "XTR" else payment.currency
    paid = f"{_tokens(payment.amount)} {unit}"
    params = {"amount": paid, "balance": _tokens(balance.total if balance else ZERO)}
    if taken > 0:
        return t("refunds.payment_refunded", lang, tokens=_tokens(taken), **params)
    return t("refunds.payment_refunded_nothing_taken", lang, **params)


def send_refund_notice(*, payment_id: int) -> float | None:
    """notify_payment_refund: tell the user their payment was refunded. Returns a retry delay (seconds)
    when Telegram asks us to wait, else None (sent, or nothing to send)."""
    payment = Payment.objects.select_related("user").filter(pk=payment_id).first()
    if payment is None or payment.refunded_at is None or payment.user.bot_blocked:
        return None
    # The refund time makes the marker unique even if the database is recreated while the cache lives.
    # An unknown outcome is not repeated (the change is in /balance anyway).
    return notify.send_once(
        chat_id=payment.user.telegram_id,
        text=refund_notice_text(payment=payment, lang=notify.language_of(payment.user_id)),
        marker=f"payment:{payment.pk}:{payment.refunded_at.timestamp():.6f}:refund-notified",
        what=f"payment #{payment_id}: the refund notice",
    )
