"""The one async bridge between the bot (asyncio) and Django (sync ORM, services).

Handlers never touch the ORM: they await the functions below, each a thin `sync_to_async` wrapper
(thread-sensitive: when polling, all database work of the bot runs in one thread with one
connection; in the webhook view, in Django's thread for the request) around a service call or a
small read. What crosses the bridge is either a frozen snapshot (`UserContext`, `ModelInfo`,
`BalanceView`, ...: botapp/snapshots.py, re-exported here with the catalogue's reads as `name as name`
imports) or a model instance whose needed relations are already loaded, so no lazy query
can fire inside the event loop. No DJANGO_ALLOW_ASYNC_UNSAFE anywhere.

The active model catalogue is cached for a few seconds (`CATALOGUE_TTL`, botapp/selectors/catalogue.py):
a menu click costs the user-upsert SELECT plus what its screen shows (at most 4 queries in all; see bench/updates.py).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections
from django.utils import timezone

from botapp.engine import delivery, results
from botapp.models import (
    ZERO,
    GenRequest,
    Payment,
    TgUser,
    TopUpPackage,
    Transaction,
    UserBalance,
    UserSettings,
)
from botapp.selectors import dashboard as dashboard_selectors
from botapp.selectors import payments as payment_selectors
from botapp.selectors import queue as queue_selectors
from botapp.selectors import texts as text_selectors
from botapp.selectors.catalogue import ResultOptions as ResultOptions
from botapp.selectors.catalogue import (
    animation_model,
    editing_model,
    find_model,
    models_of_kind,
    result_actions,
    result_options,
    upscale_target,
)
from botapp.selectors.catalogue import catalogue as catalogue
from botapp.selectors.catalogue import clear_caches as clear_caches
from botapp.selectors.daily import Period
from botapp.selectors.payments import PaymentPage
from botapp.services import control, levels, paysupport, prompt_help, styles, users
from botapp.services.card import CardCheckout
from botapp.services.generation import GenerationService
from botapp.services.payments import PaymentOutcome, PaymentService, TopUpQuote
from botapp.services.promo import PromoService, RedeemResult
from botapp.services.referral import ReferralService
from botapp.snapshots import BalanceView as BalanceView
from botapp.snapshots import LedgerLine as LedgerLine
from botapp.snapshots import ModelInfo as ModelInfo
from botapp.snapshots import PendingPromo as PendingPromo
from botapp.snapshots import ProfileView as ProfileView
from botapp.snapshots import ReferrerInfo as ReferrerInfo
from botapp.snapshots import UserContext as UserContext

P = ParamSpec("P")
R = TypeVar("R")

CONNECTION_CHECK_INTERVAL = 30.0  # seconds between checks of the bot thread's database connection

_conn_state = threading.local()


def _with_fresh_connection(func: Callable[P, R]) -> Callable[P, R]:
    """Long-running processes get no request signals: check the connection now and then (and at once
    after a database error), so a restarted database or an expired connection heals itself."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        now = time.monotonic()
        if getattr(_conn_state, "failed", False) or now - getattr(_conn_state, "checked", 0.0) > (
            CONNECTION_CHECK_INTERVAL
        ):
            close_old_connections()
            _conn_state.checked = now
            _conn_state.failed = False
        try:
            return func(*args, **kwargs)
        except DatabaseError:
            _conn_state.failed = True
            raise

    return wrapper


def bridged(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """Make a sync ORM/service function awaitable from handlers (one DB thread, thread-sensitive)."""
    return sync_to_async(_with_fresh_connection(func), thread_sensitive=True)


# --- the model catalogue (cached: botapp.selectors.catalogue) ----------------------------------------
active_models = bridged(models_of_kind)
active_model = bridged(find_model)

# --- help with the prompt (services/styles.py, services/prompt_help.py) ------------------------------------
prompt_styles = bridged(styles.active_styles)  # the active styles of a kind (cached for a few seconds)
prompt_style = bridged(styles.find_style)  # one of them by id, or None
style_example = bridged(styles.example_to_send)
remember_style_example = bridged(styles.remember_example)
reserve_improvement = bridged(prompt_help.reserve)  # counts one rewrite; False over the hourly limit
get_editing_model = bridged(editing_model)
get_animation_model = bridged(animation_model)


# --- users -------------------------------------------------------------------------------------------
@bridged
def upsert_user(profile: users.TelegramProfile) -> UserContext:
    row, created = users.refresh_user(profile)
    return UserContext.from_row(row, is_new=created)


@bridged
def known_user(telegram_id: int) -> tuple[str, bool] | None:
    """(language, is_banned) of a registered user, or None; a read without the upsert, for an update
    refused before the user middleware (the text guard)."""
    row = TgUser.objects.filter(telegram_id=telegram_id).values_list("settings__language", "is_banned").first()
    if row is None:
        return None
    language, is_banned = row
    return language or users.language_from_code(None), bool(is_banned)


@bridged
def mark_bot_blocked(telegram_id: int) -> None:
    users.mark_bot_blocked(telegram_id=telegram_id)


SETTINGS_FIELDS = frozenset(
    {
        "language",
        "default_image_model_id",
        "default_video_model_id",
        "aspect_ratio",
        "video_duration",
        "video_resolution",
        "send_as_file",
        "notifications",
    }
)


@bridged
def update_settings(user_id: int, **changes: Any) -> UserContext:
    """Save some of the user's preferences and return the refreshed context.

    A plain field update with no business rule (no service owns UserSettings yet)."""
    unknown = set(changes) - SETTINGS_FIELDS
    if unknown:
        raise ValueError(f"unknown settings: {sorted(unknown)}")
    UserSettings.objects.update_or_create(user_id=user_id, defaults=changes)
    user = TgUser.objects.select_related("settings").get(pk=user_id)
    return UserContext.from_user(user, is_new=False)


@bridged
def toggle_setting(user_id: int, name: str) -> UserContext:
    if name not in ("send_as_file", "notifications"):
        raise ValueError(name)
    prefs, _ = UserSettings.objects.get_or_create(user_id=user_id)
    setattr(prefs, name, not getattr(prefs, name))
    prefs.save(update_fields=[name, "updated_at"])
    user = TgUser.objects.select_related("settings").get(pk=user_id)
    return UserContext.from_user(user, is_new=False)


# --- balance, ledger, profile, history --------------------------------------------------------------
def _balance_view(user_id: int) -> BalanceView:
    row = UserBalance.objects.filter(user_id=user_id).values_list("balance", "bonus_balance").first()
    return BalanceView(*row) if row else BalanceView(ZERO, ZERO)


get_balance = bridged(_balance_view)


LEDGER_COLUMNS = (
    "kind",
    "amount",
    "created_at",
    "operation_key",
    "gen_request_id",
    "gen_request__model",
    "gen_request__ai_model__emoji",
    "gen_request__ai_model__name",
    "promocode__code",
)


@bridged
def balance_with_ledger(user_id: int, operations: int = 5) -> tuple[BalanceView, list[LedgerLine]]:
    """The balance and the last `operations` operations (their main and bonus rows summed): only the
    columns shown are read (the rows of four tables in full cost more to compile than to fetch)."""
    rows = (
        Transaction.objects.filter(user_id=user_id)
        .order_by("-created_at", "-id")
        .values_list(*LEDGER_COLUMNS)[: operations * 2]
    )
    lines: list[LedgerLine] = []
    by_key: dict[str, int] = {}
    for kind, amount, created_at, operation_key, request_id, model, emoji, name, promocode in rows:
        if operation_key in by_key:
            index = by_key[operation_key]
            lines[index] = dataclasses.replace(lines[index], amount=lines[index].amount + amount)
            continue
        by_key[operation_key] = len(lines)
        lines.append(
            LedgerLine(
                kind=kind,
                amount=amount,
                created_at=created_at,
                model_label=_model_label(request_id, model, emoji, name),
                request_id=request_id,
                promocode=promocode or "",
            )
        )
    return _balance_view(user_id), lines[:operations]


def _model_label(request_id: int | None, model: str, emoji: str | None, name: str | None) -> str:
    """A ledger line's model: the catalogue's name as AIModel.__str__ gives it, else the model id the
    request was made with; nothing for a line without a request."""
    if request_id is None:
        return ""
    return f"{emoji} {name}".strip() if name is not None else model


@bridged
def stored_result(path: str) -> bytes:
    return results.stored_result(path=path)


@bridged
def record_resent(request_id: int, index: int, file_id: str, file_unique_id: str | None, sent_as: str) -> bool:
    return delivery.record_resent(
        request_id=request_id, index=index, file_id=file_id, file_unique_id=file_unique_id, sent_as=sent_as
    )


@bridged
def profile(user: UserContext) -> ProfileView:
    """Level progress and statistics in 3 queries (the levels, the requests, the money+referrals)."""
    progress = levels.progress(user=TgUser(pk=user.id, xp=user.xp, level=user.level))
    stats = GenerationService.user_stats(user_id=user.id)
    return ProfileView(progress=progress, stats=stats, created_at=user.created_at or timezone.now())


@bridged
def history(user_id: int, limit: int = 8) -> list[GenRequest]:
    return GenerationService.recent(user_id=user_id, limit=limit)


@bridged
def get_request(user_id: int, request_id: int) -> GenRequest | None:
    """The user's own request (with its model), or None: never someone else's."""
    return GenRequest.objects.select_related("ai_model").filter(pk=request_id, user_id=user_id).first()


# --- generation -----------------------------------------------------------------------------------
# Charge and create the request in one transaction (the service enqueues it on commit), and the error
# that would refuse these options (checked before the confirm card, charging nothing), or None.
create_generation = bridged(GenerationService.create_request)
check_generation = bridged(GenerationService.check_request)


# --- control while it runs: the queue, cancel (botapp.selectors.queue, botapp.services.control) --------
@bridged
def queue_estimate(ai_model_id: int, kind: str) -> queue_selectors.QueueEstimate:
    """The place in the queue and the wait of a request of this model about to be created."""
    return queue_selectors.estimate(ai_model_id=ai_model_id, kind=kind)


@bridged
def generation_status(user_id: int, key: str) -> queue_selectors.RequestView | None:
    """The user's request created with this idempotency key (never someone else's), with its queue estimate."""
    return queue_selectors.request_view(user_id=user_id, idempotency_key=key)


@bridged
def cancel_generation(user_id: int, key: str) -> control.CancelOutcome | None:
    """Cancel the user's request created with this idempotency key (refunded once), or say why not."""
    request_id = GenRequest.objects.filter(idempotency_key=key, user_id=user_id).values_list("pk", flat=True).first()
    return control.cancel(user_id=user_id, request_id=request_id) if request_id else None


# --- promocodes and referrals ----------------------------------------------------------------------
@bridged
def redeem_promo(user_id: int, code: str) -> tuple[RedeemResult, BalanceView]:
    result = PromoService.redeem(user_id=user_id, code=code)
    return result, _balance_view(user_id)


@bridged
def attach_referral(user_id: int, code: str, *, is_new_user: bool) -> ReferrerInfo:
    referrer = ReferralService.attach(user_id=user_id, code=code, is_new_user=is_new_user)
    prefs = UserSettings.objects.filter(user_id=referrer.pk).values_list("language", "notifications").first()
    language, notifications = prefs or (users.language_from_code(referrer.language_code), True)
    return ReferrerInfo(
        telegram_id=referrer.telegram_id,
        name=referrer.first_name or referrer.username or str(referrer.telegram_id),
        language=language,
        notifications=notifications,
    )


@bridged
def referral_stats(user_id: int) -> dict[str, Any]:
    return ReferralService.stats(user_id=user_id)


# --- payments --------------------------------------------------------------------------------------
@bridged
def topup_packages(user_id: int) -> tuple[list[TopUpPackage], PendingPromo | None]:
    activation = PromoService.pending_topup_activation(user_id=user_id)
    pending = None
    if activation is not None:
        promo = activation.promocode
        pending = PendingPromo(code=promo.code, kind=promo.kind, value=promo.value)
    return PaymentService.packages(), pending


@bridged
def suggest_package(shortfall: Decimal) -> TopUpPackage | None:
    """The smallest active package that covers `shortfall` (else the largest one)."""
    active = TopUpPackage.objects.filter(is_active=True)
    return active.filter(tokens__gte=shortfall).order_by("tokens", "sort_order").first() or (
        active.order_by("-tokens").first()
    )


@bridged
def quote(user_id: int, package_id: int) -> tuple[TopUpPackage, TopUpQuote]:
    result = PaymentService.quote(user_id=user_id, package_id=package_id)
    return TopUpPackage.objects.get(pk=package_id), result


@bridged
def create_invoice(user_id: int, package_id: int) -> Payment:
    return PaymentService.create_invoice(user_id=user_id, package_id=package_id)


@sync_to_async(thread_sensitive=False)
def start_card_payment(user_id: int, package_id: int, *, lang: str, bot_username: str) -> CardCheckout:
    """A card payment (botapp.services.card). Not on the bot's database thread: it waits for YooKassa
    (up to twice YOOKASSA_TIMEOUT_SECONDS), so it runs in a worker thread with its own connection."""
    from botapp.services.card import CardService

    close_old_connections()
    try:
        return CardService.start(user_id=user_id, package_id=package_id, lang=lang, bot_username=bot_username)
    finally:
        connections.close_all()  # this worker thread's connection only


@bridged
def validate_precheckout(*, invoice_payload: str, telegram_id: int, total_amount: int, currency: str) -> Payment:
    return PaymentService.validate_precheckout(
        invoice_payload=invoice_payload, telegram_id=telegram_id, total_amount=total_amount, currency=currency
    )


@bridged
def complete_payment(
    *, invoice_payload: str, provider_charge_id: str, total_amount: int, currency: str, raw: dict[str, Any]
) -> tuple[PaymentOutcome, BalanceView]:
    outcome = PaymentService.complete(
        invoice_payload=invoice_payload,
        provider_charge_id=provider_charge_id,
        total_amount=total_amount,
        currency=currency,
        raw=raw,
    )
    return outcome, _balance_view(outcome.payment.user_id)


# --- the payment list, payment support, the editable texts -----------------------------------------
@bridged
def user_payments(user_id: int, page: int = 1, per_page: int = 5) -> PaymentPage:
    return payment_selectors.user_payments(user_id=user_id, page=page, per_page=per_page)


@bridged
def bot_text(key: str, lang: str) -> str:
    return text_selectors.bot_text(key=key, lang=lang)


@bridged
def support_limit_reached(user_id: int) -> bool:
    return paysupport.limit_reached(user_id=user_id)


@bridged
def submit_support_request(user_id: int, text: str) -> int:
    """Store the user's /paysupport request and pass it to the operators; returns its id."""
    return paysupport.submit_request(user_id=user_id, text=text).pk


# --- the operator's numbers (/admin) --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OpsToday:
    """Today's key numbers (since local midnight in TIME_ZONE), as the admin's dashboard counts them
    (`botapp.selectors.dashboard`: the definitions are there)."""

    day: date
    as_of: datetime
    new_users: int
    active_users: int
    payments: int  # succeeded, paid today
    stars_payments: int
    stars: Decimal  # paid in Telegram Stars
    card_payments: int
    card_rub: Decimal  # paid by card, in roubles
    revenue_rub: Decimal  # all of it in roubles (Stars at STARS_RUB_RATE)
    tokens_sold: Decimal
    tokens_spent: Decimal
    tokens_refunded: Decimal
    generations: int  # requests made today, any status
    succeeded: int
    failed: int
    in_flight: int  # now: created, queued or running
    queue_depth: int  # now: waiting for a worker


@bridged
def ops_today() -> OpsToday:
    """Today's numbers for an operator, from the dashboard's selectors (today is always computed live)."""
    now = timezone.now()
    today = timezone.localdate(now)
    period = Period(start=today, end=today)
    people = dashboard_selectors.user_stats(period=period, today=today)
    money = dashboard_selectors.revenue(period=period, stars_rub_rate=settings.STARS_RUB_RATE)
    tokens = dashboard_selectors.token_flow(period=period)
    generations = dashboard_selectors.generation_stats(period=period)
    queue = dashboard_selectors.queue_now(now=now)
    methods = {row.method: row for row in money.by_method}
    stars = methods.get(Payment.Provider.TELEGRAM_STARS)
    card = methods.get(Payment.Provider.YOOKASSA)
    return OpsToday(
        day=today,
        as_of=now,
        new_users=people.new,
        active_users=people.active,
        payments=money.payments,
        stars_payments=stars.payments if stars else 0,
        stars=stars.stars if stars else ZERO,
        card_payments=card.payments if card else 0,
        card_rub=card.rub if card else ZERO,
        revenue_rub=money.rub,
        tokens_sold=tokens.sold,
        tokens_spent=tokens.spent,
        tokens_refunded=tokens.refunded,
        generations=generations.total,
        succeeded=generations.succeeded,
        failed=generations.failed,
        in_flight=queue.in_flight,
        queue_depth=queue.depth,
    )


# --- the buttons under a result (botapp.selectors.catalogue) -------------------------------------------
get_result_actions = bridged(result_actions)
get_result_options = bridged(result_options)
get_upscale_target = bridged(upscale_target)


@bridged
def close_db() -> None:
    """Close the bot thread's database connections (at shutdown; tests before dropping the DB)."""
    connections.close_all()


@sync_to_async(thread_sensitive=False)
def alert_operators(*, key: str, **params: Any) -> bool:
    """Queue an operator alert (botapp.services.alerts; never raises). Not on the bot's database
    thread: it only touches the cache and the task queue."""
    from botapp.services import alerts

    return alerts.alert_operators(key=key, **params)


@bridged
def record_external_refund(
    *, charge_id: str, telegram_id: int, total_amount: int, currency: str, invoice_payload: str
) -> Any:
    """A `refunded_payment` (Telegram refunded a Stars payment): botapp.services.refunds takes back what
    the payment credited, once per charge id, and alerts the operators. Returns its `ExternalRefund`."""
    from botapp.services import refunds

    return refunds.record_external_refund(
        charge_id=charge_id,
        telegram_id=telegram_id,
        total_amount=total_amount,
        currency=currency,
        invoice_payload=invoice_payload,
    )


# --- Star subscriptions (botapp.services.subscriptions) ------------------------------------------------
# Types only: the functions import the service when called (the models and service are typed here).
if TYPE_CHECKING:
    from botapp.models import StarSubscription, SubscriptionPlan
    from botapp.services.subscriptions import EditTarget, PeriodOutcome


@bridged
def subscription_plans() -> list[SubscriptionPlan]:
    from botapp.services.subscriptions import SubscriptionService

    return SubscriptionService.plans()


@bridged
def has_subscription_plans() -> bool:
    from botapp.models import SubscriptionPlan

    return SubscriptionPlan.objects.filter(is_active=True).exists()


@bridged
def subscription_plan(user_id: int, plan_id: int) -> tuple[SubscriptionPlan | None, StarSubscription | None]:
    """(the active plan or None, the user's running subscription or None), its plan loaded."""
    from botapp.models import SubscriptionPlan
    from botapp.services.subscriptions import running

    plan = SubscriptionPlan.objects.filter(pk=plan_id, is_active=True).first()
    return plan, running(user_id).select_related("plan").order_by("-period_end").first()


@bridged
def subscribe(user_id: int, plan_id: int) -> StarSubscription:
    from botapp.services.subscriptions import SubscriptionService

    return SubscriptionService.subscribe(user_id=user_id, plan_id=plan_id)


@bridged
def attach_subscription_link(subscription_id: int, link: str) -> str:
    from botapp.services.subscriptions import SubscriptionService

    return SubscriptionService.attach_link(subscription_id=subscription_id, link=link)


@bridged
def validate_subscription_precheckout(
    *, invoice_payload: str, telegram_id: int, total_amount: int, currency: str
) -> StarSubscription:
    from botapp.services.subscriptions import SubscriptionService

    return SubscriptionService.validate_precheckout(
        invoice_payload=invoice_payload, telegram_id=telegram_id, total_amount=total_amount, currency=currency
    )


@bridged
def credit_subscription_period(**charge: Any) -> tuple[PeriodOutcome, BalanceView]:
    """SubscriptionService.credit_period(**charge) -> (its PeriodOutcome, the user's balance)."""
    from botapp.services.subscriptions import SubscriptionService

    outcome = SubscriptionService.credit_period(**charge)
    return outcome, _balance_view(outcome.payment.user_id)


@bridged
def current_subscription(user_id: int) -> StarSubscription | None:
    from botapp.services.subscriptions import SubscriptionService

    return SubscriptionService.current(user_id=user_id)


@bridged
def subscription_edit_target(user_id: int, subscription_id: int, *, cancel: bool) -> EditTarget:
    from botapp.services.subscriptions import SubscriptionService

    return SubscriptionService.edit_target(user_id=user_id, subscription_id=subscription_id, cancel=cancel)


@bridged
def set_subscription_cancelled(user_id: int, subscription_id: int, *, cancelled: bool) -> StarSubscription:
    from botapp.services.subscriptions import SubscriptionService

    return SubscriptionService.set_cancelled(user_id=user_id, subscription_id=subscription_id, cancelled=cancelled)


@bridged
def apply_subscription_update(*, telegram_id: int, invoice_payload: str, state: str) -> StarSubscription | None:
    from botapp.services.subscriptions import SubscriptionService

    return SubscriptionService.apply_update(telegram_id=telegram_id, invoice_payload=invoice_payload, state=state)
