"""Star subscriptions: monthly plans paid in Telegram Stars; Telegram charges every 30 days by itself.

    subscribe(user, plan)       -> a pending StarSubscription, payload "sub:<hex>" (reused while unpaid)
    the bot's createInvoiceLink -> (currency XTR, one price, subscription_period=2592000) -> attach_link
    pre-checkout                -> validate_precheckout (the first charge only: renewals have none)
    successful_payment          -> credit_period, for the first charge and every renewal (is_recurring)
    subscription update         -> apply_update (the user cancelled / re-enabled in Telegram, a renewal failed)
    profile buttons             -> edit_target + editUserStarSubscription + set_cancelled
    beat (hourly)               -> lapse_overdue: no renewal came after the period (+ a grace): lapsed

Money rules:

- **Each charge credits once.** `credit_period` runs in one transaction under the subscription's row
  lock; a charge id that already has its Payment is a replay and credits nothing, the ledger key is
  `payment:telegram_stars:<charge id>` (the same as a one-off top-up's, so a charge id is credited at
  most once whichever path sees it) and (provider, provider_charge_id) is unique in the database.
  Every charge gets its own Payment (Telegram repeats the invoice payload on every renewal, and
  Payment.invoice_payload is unique): payload "<subscription payload>:<n>", the n-th paid month,
  linked to the subscription, with the end of the period it pays (`period_end`).
- A month credits the plan's tokens (main balance) and bonus tokens (bonus balance), as a DEPOSIT
  linked to the payment. **A subscriber keeps the terms they subscribed at**: Telegram keeps charging
  the price of the link, and every renewal credits what the first paid month credited; editing a plan
  changes it for new subscriptions only. The level perk (a bonus % on top-ups) is not added: a plan's
  bonus is set by the operator.
- **Monthly tokens do not expire**: they are bought tokens, like a package's; a lapsed or cancelled
  subscription takes nothing back.
- **Referral reward: a subscription charge counts as a top-up**, like any Stars payment: the referrer
  gets the reward for every paid month (the first-top-up bonus if it is the friend's first payment).
- **A charge is never lost.** Telegram charged a subscription we cancelled (or marked lapsed): the month
  is credited (the user paid) and the subscription is active again. A recurring charge whose payload no
  subscription of ours has (or another user's) raises `UnknownSubscription`: the handler alerts the
  operators and tells the user, and nothing is recorded, like any payment that cannot be credited (the
  daily Stars reconciliation keeps reporting the charge until an operator resolves it).
- **One running subscription per user.** A user whose subscription is active, or cancelled but still
  in its paid period, cannot subscribe again, to the same plan or to another: switching plans means
  cancelling and subscribing to the new plan once the paid period has ended (no proration, no two
  plans billed at once). A link is paid once: its pre-checkout is refused unless the subscription is
  still pending (Telegram sends no pre-checkout for renewals), so paying an old link again cannot start
  a second Telegram subscription under the same payload.
- Cancelling (from the profile, or by the user in Telegram) stops the renewals; the subscription runs
  to the end of its paid period, then lapses. An active subscription whose renewal does not come within
  SUBSCRIPTION_LAPSE_GRACE_HOURS after the period lapses; so does one whose renewal failed (Telegram's
  `subscription` update, state "failed"). The user is told once (`notify_subscription_lapsed`).
"""

from __future__ import annotations

import html
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from botapp.i18n import t
from botapp.models import ZERO, Payment, StarSubscription, SubscriptionPlan, TgUser
from botapp.services import notify, users
from botapp.services.balance import BalanceService
from botapp.services.exceptions import (
    PaymentError,
    PlanChanged,
    PlanUnavailable,
    SubscriptionExists,
    SubscriptionNotChangeable,
    SubscriptionNotPayable,
    SubscriptionRunning,
    UnknownSubscription,
    UserBanned,
)
from botapp.services.referral import ReferralService

log = logging.getLogger(__name__)

STARS = "XTR"
PAYLOAD_PREFIX = "sub:"
PERIOD_SECONDS = 2_592_000  # 30 days: the only period Telegram allows
PERIOD = timedelta(seconds=PERIOD_SECONDS)
PROVIDER = Payment.Provider.TELEGRAM_STARS
Status = StarSubscription.Status
LAPSE_BATCH = 500
MARKER_TTL = 40 * 24 * 3600


@dataclass(frozen=True)
class PeriodOutcome:
    subscription: StarSubscription  # its plan loaded
    payment: Payment
    credited: bool  # False: a replay of a charge already credited
    first: bool  # the subscription's first paid month


@dataclass(frozen=True)
class EditTarget:
    """What editUserStarSubscription needs: the user and the subscription's first charge id."""

    subscription_id: int
    telegram_id: int
    charge_id: str


def _date(value: datetime | None) -> str:
    return timezone.localtime(value).strftime("%d.%m.%Y") if value else "-"


def running(user_id: int, *, now: datetime | None = None) -> QuerySet[StarSubscription]:
    """The user's running subscriptions: active (a renewal may still come, even past its period within
    the grace), or cancelled within its paid period."""
    now = now or timezone.now()
    return StarSubscription.objects.filter(
        Q(status=Status.ACTIVE) | Q(status=Status.CANCELLED, period_end__gt=now), user_id=user_id
    )


def is_running(sub: StarSubscription, *, now: datetime | None = None) -> bool:
    """`running()` for one subscription already loaded."""
    if sub.status == Status.ACTIVE:
        return True
    return sub.status == Status.CANCELLED and sub.period_end is not None and sub.period_end > (now or timezone.now())


class SubscriptionService:
    """Keyword-only static methods; see the module docstring for the rules."""

    # --- reads ------------------------------------------------------------------------------------
    @staticmethod
    def plans() -> list[SubscriptionPlan]:
        return list(SubscriptionPlan.objects.filter(is_active=True).order_by("sort_order", "price_stars", "pk"))

    @staticmethod
    def plan(*, plan_id: int) -> SubscriptionPlan:
        plan = SubscriptionPlan.objects.filter(pk=plan_id, is_active=True).first()
        if plan is None:
            raise PlanUnavailable()
        return plan

    @staticmethod
    def current(*, user_id: int) -> StarSubscription | None:
        """What the profile shows: the running subscription, else the latest one that ran (lapsed). One query."""
        now = timezone.now()
        recent = list(
            StarSubscription.objects.select_related("plan")
            .filter(user_id=user_id)
            .exclude(status=Status.PENDING)
            .order_by("-period_end", "-pk")[:5]
        )
        runs = [sub for sub in recent if is_running(sub, now=now)]
        return (runs or recent or [None])[0]

    # --- buying -----------------------------------------------------------------------------------
    @staticmethod
    def subscribe(*, user_id: int, plan_id: int) -> StarSubscription:
        """A pending subscription to `plan_id` whose invoice link the bot makes (or the still-pending one
        made before for the same plan and price). Refused while another subscription runs."""
        with transaction.atomic():
            user = TgUser.objects.select_for_update().filter(pk=user_id).first()  # one subscribe at a time
            if user is None or user.is_banned:
                raise UserBanned()
            plan = SubscriptionService.plan(plan_id=plan_id)
            _refuse_if_running(user_id, plan)
            pending = (
                StarSubscription.objects.select_related("plan")
                .filter(user_id=user_id, plan=plan, status=Status.PENDING, price_stars=plan.price_stars)
                .order_by("-pk")
                .first()
            )
            if pending is not None:
                return pending
            return StarSubscription.objects.create(
                user_id=user_id,
                plan=plan,
                status=Status.PENDING,
                invoice_payload=f"{PAYLOAD_PREFIX}{uuid.uuid4().hex}",
                price_stars=plan.price_stars,
            )

    @staticmethod
    def attach_link(*, subscription_id: int, link: str) -> str:
        """Store the invoice link the bot made; the first one stored wins (two links of one payload
        pay the same subscription). Returns the stored link."""
        StarSubscription.objects.filter(pk=subscription_id, invoice_link="").update(
            invoice_link=link[:255], updated_at=timezone.now()
        )
        return StarSubscription.objects.values_list("invoice_link", flat=True).get(pk=subscription_id)

    @staticmethod
    def validate_precheckout(
        *, invoice_payload: str, telegram_id: int, total_amount: int, currency: str
    ) -> StarSubscription:
        """The first charge's pre-checkout (answered within 10 s: cheap reads only)."""
        sub = StarSubscription.objects.select_related("user", "plan").filter(invoice_payload=invoice_payload).first()
        if sub is None or sub.user.telegram_id != telegram_id:
            raise PaymentError("This invoice is not valid.")
        if sub.user.is_banned:
            raise UserBanned()
        if sub.status != Status.PENDING:
            raise SubscriptionNotPayable()
        if not sub.plan.is_active:
            raise PlanUnavailable()
        if currency != STARS or total_amount != sub.price_stars or sub.price_stars != sub.plan.price_stars:
            raise PlanChanged()
        _refuse_if_running(sub.user_id, sub.plan)
        return sub

    @staticmethod
    def credit_period(
        *,
        charge_id: str,
        invoice_payload: str,
        telegram_id: int,
        total_amount: int,
        currency: str,
        expiration: datetime | None,
        is_first: bool,
        raw: dict | None = None,
    ) -> PeriodOutcome:
        """Credit one paid month of a subscription, once per charge id (see the module docstring)."""
        if not charge_id:
            raise PaymentError("A payment without a charge id cannot be credited.")
        with transaction.atomic():
            sub = (
                StarSubscription.objects.select_for_update()
                .select_related("user", "plan")
                .filter(invoice_payload=invoice_payload)
                .first()
            )
            if sub is None or sub.user.telegram_id != telegram_id:
                raise UnknownSubscription()
            done = Payment.objects.filter(provider=PROVIDER, provider_charge_id=charge_id).first()
            if done is not None:
                if done.subscription_id != sub.pk:
                    raise PaymentError("This charge was credited on another payment.")
                month = (done.raw.get("subscription") or {}).get("month")
                return PeriodOutcome(subscription=sub, payment=done, credited=False, first=month == 1)
            if currency != STARS or Decimal(total_amount) != Decimal(sub.price_stars):
                raise PaymentError(f"The paid amount {total_amount} {currency} does not match the subscription.")
            now = timezone.now()
            months = sub.payments.count()
            tokens, bonus = _terms(sub)
            is_first_topup = not Payment.objects.filter(user_id=sub.user_id, status=Payment.Status.SUCCEEDED).exists()
            end = expiration or max(sub.period_end or now, now) + PERIOD
            payment = Payment.objects.create(
                user_id=sub.user_id,
                provider=PROVIDER,
                status=Payment.Status.SUCCEEDED,
                amount=Decimal(total_amount),
                currency=STARS,
                tokens=tokens,
                bonus_tokens=bonus,
                invoice_payload=f"{sub.invoice_payload}:{months + 1}",
                provider_charge_id=charge_id,
                paid_at=now,
                subscription=sub,
                period_end=end,
                raw={"success": raw or {}, "subscription": {"month": months + 1, "first_recurring": is_first}},
            )
            BalanceService.deposit(
                user_id=sub.user_id,
                amount=tokens,
                bonus_amount=bonus,
                key=f"payment:{PROVIDER}:{charge_id}",
                payment=payment,
                description=f"Subscription #{sub.pk}, month {months + 1}",
            )
            ReferralService.reward_for_topup(payment=payment, is_first_topup=is_first_topup)
            second_start = is_first and sub.charge_id is not None and sub.charge_id != charge_id
            if sub.status != Status.ACTIVE and sub.status != Status.PENDING:
                log.warning("subscription #%s was %s, Telegram charged %s: active again", sub.pk, sub.status, charge_id)
            sub.status = Status.ACTIVE
            sub.cancelled_at = None
            sub.charge_id = sub.charge_id or charge_id
            sub.last_charge_id = charge_id
            if sub.period_end is None or end > sub.period_end:
                sub.period_start, sub.period_end = end - PERIOD, end
            sub.renewals = months + 1
            sub.save(
                update_fields=[
                    "status",
                    "cancelled_at",
                    "charge_id",
                    "last_charge_id",
                    "period_start",
                    "period_end",
                    "renewals",
                    "updated_at",
                ]
            )
            if second_start:  # the link paid twice (a race of two pre-checkouts): two Telegram subscriptions
                _alert_on_commit(
                    "subscription_duplicate",
                    subscription=sub.pk,
                    telegram_id=telegram_id,
                    charge_id=charge_id,
                    first_charge=sub.charge_id,
                )
        return PeriodOutcome(subscription=sub, payment=payment, credited=True, first=months == 0)

    # --- cancelling and re-enabling ----------------------------------------------------------------
    @staticmethod
    def edit_target(*, user_id: int, subscription_id: int, cancel: bool) -> EditTarget:
        """Check the user may cancel (an active subscription) or re-enable (a cancelled one still in
        its paid period) `subscription_id`; what the bot passes to editUserStarSubscription."""
        sub = StarSubscription.objects.select_related("user").filter(pk=subscription_id, user_id=user_id).first()
        if sub is None or not sub.charge_id:
            raise SubscriptionNotChangeable()
        if cancel and sub.status != Status.ACTIVE:
            raise SubscriptionNotChangeable()
        if not cancel and (sub.status != Status.CANCELLED or not sub.period_end or sub.period_end <= timezone.now()):
            raise SubscriptionNotChangeable()
        return EditTarget(subscription_id=sub.pk, telegram_id=sub.user.telegram_id, charge_id=sub.charge_id)

    @staticmethod
    def set_cancelled(*, user_id: int, subscription_id: int, cancelled: bool) -> StarSubscription:
        """Record what Telegram accepted (editUserStarSubscription): active -> cancelled (runs to the end
        of its period) or back. A conditional update: a repeat changes nothing."""
        now = timezone.now()
        subs = StarSubscription.objects.filter(pk=subscription_id, user_id=user_id)
        if cancelled:
            subs.filter(status=Status.ACTIVE).update(status=Status.CANCELLED, cancelled_at=now, updated_at=now)
        else:
            subs.filter(status=Status.CANCELLED).update(status=Status.ACTIVE, cancelled_at=None, updated_at=now)
        return StarSubscription.objects.select_related("plan").get(pk=subscription_id)

    @staticmethod
    def apply_update(*, telegram_id: int, invoice_payload: str, state: str) -> StarSubscription | None:
        """Telegram's `subscription` update: the user cancelled ("canceled") or re-enabled ("active") it in
        Telegram, or its renewal failed ("failed": lapsed now, the user told once). Returns the
        subscription when its status changed, else None (unknown, someone else's, nothing to change)."""
        sub = (
            StarSubscription.objects.select_related("plan")
            .filter(invoice_payload=invoice_payload, user__telegram_id=telegram_id)
            .first()
        )
        if sub is None:
            log.warning(
                "subscription update %r for an unknown payload %r (user %s)", state, invoice_payload, telegram_id
            )
            return None
        now = timezone.now()
        with transaction.atomic():
            subs = StarSubscription.objects.filter(pk=sub.pk)
            if state == "canceled":
                changed = subs.filter(status=Status.ACTIVE).update(
                    status=Status.CANCELLED, cancelled_at=now, updated_at=now
                )
            elif state == "active":
                changed = subs.filter(status=Status.CANCELLED).update(
                    status=Status.ACTIVE, cancelled_at=None, updated_at=now
                )
            elif state == "failed":
                changed = _lapse(sub.pk, (Status.ACTIVE, Status.CANCELLED), now)
            else:
                log.warning("subscription #%s: unknown update state %r", sub.pk, state)
                return None
        if not changed:
            return None
        return StarSubscription.objects.select_related("plan").get(pk=sub.pk)

    # --- the end of a subscription -----------------------------------------------------------------
    @staticmethod
    def lapse_overdue(*, now: datetime | None = None) -> int:
        """Beat: mark lapsed the subscriptions whose paid period is over without a renewal (active: after
        the grace; cancelled: at the end of the period). Each is lapsed (and its user told) once."""
        now = now or timezone.now()
        grace = timedelta(hours=float(getattr(settings, "SUBSCRIPTION_LAPSE_GRACE_HOURS", 24)))
        due = (
            StarSubscription.objects.filter(
                Q(status=Status.ACTIVE, period_end__lt=now - grace) | Q(status=Status.CANCELLED, period_end__lt=now)
            )
            .order_by("period_end")
            .values_list("pk", flat=True)[:LAPSE_BATCH]
        )
        lapsed = 0
        for pk in list(due):
            with transaction.atomic():
                lapsed += _lapse(pk, (Status.ACTIVE, Status.CANCELLED), now, before=now - grace, cancelled_before=now)
        if lapsed:
            log.info("subscriptions lapsed: %d", lapsed)
        return lapsed


def _refuse_if_running(user_id: int, plan: SubscriptionPlan) -> None:
    other = running(user_id).select_related("plan").order_by("-period_end").first()
    if other is None:
        return
    until = _date(other.period_end)
    if other.plan_id == plan.pk:
        raise SubscriptionExists(until=until)
    raise SubscriptionRunning(plan=other.plan.name_en or other.plan.name, until=until)


def _terms(sub: StarSubscription) -> tuple[Decimal, Decimal]:
    """(tokens, bonus tokens) of a month: what the subscription's first paid month credited, else the plan's."""
    first = sub.payments.order_by("pk").values_list("tokens", "bonus_tokens").first()
    if first is not None:
        return first[0], first[1] or ZERO
    return sub.plan.tokens, sub.plan.bonus_tokens or ZERO


def _lapse(
    pk: int,
    statuses: tuple[str, ...],
    now: datetime,
    *,
    before: datetime | None = None,
    cancelled_before: datetime | None = None,
) -> int:
    """Mark one subscription lapsed if it still is in `statuses` (and, for the beat, still overdue); the
    call that changed it queues the user's notice on commit."""
    subs = StarSubscription.objects.filter(pk=pk, status__in=statuses)
    if before is not None:
        subs = subs.filter(
            Q(status=Status.ACTIVE, period_end__lt=before) | Q(status=Status.CANCELLED, period_end__lt=cancelled_before)
        )
    changed = subs.update(status=Status.LAPSED, updated_at=now)
    if changed:
        transaction.on_commit(lambda: enqueue_lapse_notice(subscription_id=pk))
    return changed


def _alert_on_commit(key: str, **params: object) -> None:
    from botapp.services import alerts

    transaction.on_commit(lambda: alerts.alert_operators(key=key, **params))


# --- telling the user that the subscription ended -------------------------------------------------------
def enqueue_lapse_notice(*, subscription_id: int) -> None:
    """Hand the notice to the workers (call on commit). A broker failure never fails the caller."""
    notify.enqueue(
        "notify_subscription_lapsed", subscription_id, what=f"subscription #{subscription_id}: the lapse notice"
    )


def send_lapse_notice(*, subscription_id: int) -> float | None:
    """notify_subscription_lapsed: "your subscription has ended" in the user's language, once per
    subscription and period (a cache marker). Returns a retry delay when Telegram asks to wait."""
    sub = StarSubscription.objects.select_related("user", "plan").filter(pk=subscription_id).first()
    if sub is None or sub.status != Status.LAPSED or sub.user.bot_blocked:
        return None
    lang = notify.language_of(sub.user_id, default=users.language_from_code(sub.user.language_code))
    name = (sub.plan.name_en or sub.plan.name) if lang == "en" else sub.plan.name
    end = sub.period_end.timestamp() if sub.period_end else 0
    return notify.send_once(
        chat_id=sub.user.telegram_id,
        text=t("sub.lapsed_notice", lang, plan=html.escape(name, quote=False)),
        marker=f"starsub:{sub.pk}:{sub.created_at.timestamp():.6f}:{end:.0f}:lapse-notified",
        ttl=MARKER_TTL,
        what=f"subscription #{subscription_id}: the lapse notice",
    )


def credit_from_ledger(
    *, entry_id: str, invoice_payload: str, user_id: int | None, amount: int, date: datetime
) -> bool:
    """The Stars reconciliation found a charge of a subscription that was never credited (the update was
    lost): credit it the normal way (the period ends 30 days after the charge). True when credited now."""
    sub = StarSubscription.objects.select_related("user").filter(invoice_payload=invoice_payload).first()
    if sub is None:
        raise UnknownSubscription()
    outcome = SubscriptionService.credit_period(
        charge_id=entry_id,
        invoice_payload=invoice_payload,
        telegram_id=user_id if user_id is not None else sub.user.telegram_id,
        total_amount=amount,
        currency=STARS,
        expiration=date + PERIOD,
        is_first=sub.charge_id is None,
        raw={"by": "reconciliation", "telegram_date": date.isoformat()},
    )
    return outcome.credited
