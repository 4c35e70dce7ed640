"""The lifecycle of a catalogue model: no model dies on our users.

Google announces a model id's shutdown date, then answers 404 "not found" for it. Each AIModel has a
`status` (preview, GA, deprecated, retired), a `shutdown_date` and a `successor` (the same kind, never
itself, no cycle: `check_successor`).

- `switch_to_successor` retires a model in favour of its successor, ONCE (a conditional UPDATE on
  "not switched yet"): the model becomes retired and inactive (`switched_at` set), the successor
  active, the users whose default it was get the successor, the bots' cached catalogue is told
  (`control.catalogue_changed`), and the model's waiting requests (not sent to Google yet) move:
  `move_waiting`. One operator alert per switch (deduplicated by model and switch time). A successor
  that is retired, paused by the bot or invalid is refused: the model is paused instead (as a model
  without a successor would be) and the operators are told why.
- Moving a waiting request: its options are normalised for the successor (`normalize_params`), checked
  against its capabilities (`validate_request`) and priced (`successor.quote`). At the same price or
  less it moves (ai_model, the legacy `model` slug, params) and is queued again. The user is NOT charged
  again and NOT refunded the difference when the successor is cheaper: the request keeps the price that
  was charged (`GenRequest.price`), which is what any later refund returns, so the ledger stays exact.
  Dearer (`model_switched`) or not accepted as it is (`model_switched_options`: more photos, a longer
  description, an option it lacks): failed and refunded exactly once (GenerationService.fail, a
  conditional UPDATE on "still waiting for this model"), and the user is told the new model and its
  price (botapp/locales/*/lifecycle.toml, botapp.engine.failures.failure_text).
- `take_over`: the worker's request that got Google's 404 is treated like a waiting one (moved and
  queued again, or refunded), guarded by its lease (`next_poll_at` = the worker's token).
- `lifecycle_daily` (beat, every LIFECYCLE_CHECK_SECONDS): active models on or past their shutdown date
  switch (or, without a successor, are NOT paused, since Google may still serve them, but the operators
  are alerted once a day); a warning 14 and 3 days before a shutdown, each once per (model, shutdown
  date, threshold) (`warn_once`); a model first seen inside 3 days gets only the 3-day one.
- `shutdown_banner`: the admin dashboard's banner (active models within BANNER_DAYS of their shutdown).
- `check_with_google`: which of the catalogue's model ids Google lists for our keys (`models.list()`).

The warnings' "once" lives in Django's cache (Redis in production) with no expiry before the shutdown
date: the schema has no table for it. Should Redis be flushed, a pending warning may be sent once more
(at most once per model and flush), never more often, and never the 14-day one after the 3-day one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from botapp.capabilities import REFERENCE, image_role, normalize_params
from botapp.engine import dispatch
from botapp.i18n import fmt_tokens, t
from botapp.models import AIModel, GenRequest, UserSettings
from botapp.redaction import error_text, redact
from botapp.services import alerts, control
from botapp.services.exceptions import DomainError
from botapp.services.generation import NOT_SENT, GenerationService
from botapp.services.generation_checks import check_extendable, validate_request
from botapp.services.queue import dispatch as queue_dispatch

log = logging.getLogger(__name__)

Status = GenRequest.Status
Lifecycle = AIModel.Lifecycle

SWITCHED = "model_switched"  # refunded: dearer on the successor
SWITCHED_OPTIONS = "model_switched_options"  # refunded: the successor does not take it as it is
WARN_DAYS = (3, 14)  # the operators are warned this many days before a shutdown (the nearest applies)
BANNER_DAYS = 30  # the dashboard names the active models this close to their shutdown
BATCH = 1000  # waiting requests moved at once; the sweep takes the rest
WARNED_PREFIX = "lifecycle:warned"


# --------------------------------------------------------------------------------------------------
# The successor
# --------------------------------------------------------------------------------------------------
class SuccessorError(ValueError):
    """The successor cannot be used; `code`: self | kind | cycle | retired | paused."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(code)


def check_successor(model: AIModel, successor: AIModel | None) -> None:
    """Refuse (SuccessorError) a successor that is the model itself, of another kind, or that closes a
    cycle (A -> B -> A, or longer: the successor's own chain leads back to the model)."""
    if successor is None:
        return
    if model.pk is not None and successor.pk == model.pk:
        raise SuccessorError("self")
    if successor.kind != model.kind:
        raise SuccessorError("kind")
    if model.pk is None:
        return  # a new model: nothing can point at it yet
    seen: set[int] = set()
    current = successor.successor_id
    while current is not None and current not in seen:
        if current == model.pk:
            raise SuccessorError("cycle")
        seen.add(current)
        current = AIModel.objects.filter(pk=current).values_list("successor_id", flat=True).first()


def successor_problem(model: AIModel) -> str | None:
    """Why the model cannot switch to its successor now (a SuccessorError code), None when it can."""
    successor = model.successor
    if successor is None:
        return "missing"
    try:
        check_successor(model, successor)
    except SuccessorError as exc:
        return exc.code
    if successor.status == Lifecycle.RETIRED:
        return "retired"
    if successor.paused_at is not None:
        return "paused"
    return None


# --------------------------------------------------------------------------------------------------
# A waiting request on the successor
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """What a request becomes on the successor: its options and price; `refusal` (an error code) when
    it cannot move."""

    params: dict[str, Any]
    price: Decimal | None
    refusal: str | None = None


def plan_for(request: GenRequest, successor: AIModel) -> Plan:
    """The request's options normalised for the successor, checked and priced."""
    references = sum(1 for image in request.input_images or [] if image_role(successor.kind, image) == REFERENCE)
    merged = {**(successor.default_params or {}), **(request.params or {})}
    params = normalize_params(successor.caps, merged, kind=successor.kind, references=references)
    try:
        _, cleaned = validate_request(
            ai_model=successor,
            prompt=request.prompt,
            params=params,
            input_images=list(request.input_images or []),
            variants=request.variants,
        )
        if "extend_from" in cleaned:
            check_extendable(user_id=request.user_id, ai_model=successor, source_id=cleaned["extend_from"])
        if request.negative_prompt and len(request.negative_prompt) > successor.caps.max_prompt_length:
            raise DomainError("the negative prompt is too long for the successor")
    except DomainError:
        return Plan(params=params, price=_price_or_none(successor, params, request.variants), refusal=SWITCHED_OPTIONS)
    price = successor.quote(cleaned, request.variants).total
    if price > Decimal(request.price or 0):
        return Plan(params=cleaned, price=price, refusal=SWITCHED)
    return Plan(params=cleaned, price=price)


def _price_or_none(successor: AIModel, params: dict, variants: int) -> Decimal | None:
    try:
        return successor.quote(params, max(1, min(int(variants), successor.caps.max_variants))).total
    except Exception:  # a rule the options do not fit
        return None


def notice_params(request: GenRequest) -> dict[str, str] | None:
    """The placeholders of the refunded user's message (`successor`, `price`), None without a successor."""
    ai_model = request.ai_model
    successor = ai_model.successor if ai_model is not None else None
    if successor is None:
        return None
    price = plan_for(request, successor).price
    if price is None:
        price = successor.price
    return {"successor": str(successor), "price": fmt_tokens(price)}


def _move_fields(plan: Plan, successor: AIModel, request: GenRequest) -> dict[str, Any]:
    fields: dict[str, Any] = {"ai_model": successor, "model": successor.slug, "params": plan.params}
    if request.negative_prompt and not successor.caps.negative_prompt:
        fields["negative_prompt"] = ""
    return fields


def _requeue_fields(now: datetime) -> dict[str, Any]:
    """Back to the queue: nothing of a worker's claim or of Google is kept."""
    return {
        "status": Status.QUEUED,
        "queued_at": now,
        "started_at": None,
        "submitted_at": None,
        "next_poll_at": None,
        "provider_operation_id": "",
        "error_code": "",
        "error_message": "",
    }


def _refund(request: GenRequest, code: str, message: str, only_if: Q) -> bool:
    """Fail + refund once (a conditional UPDATE), the user told after commit."""
    with transaction.atomic():
        failed = GenerationService.fail(
            request_id=request.pk, error_code=code, error_message=redact(message), only_if=only_if
        )
        if failed and request.chat_id:
            transaction.on_commit(partial(dispatch.notify_failure, request.pk, None))
    if failed:
        log.info("generation #%s refunded: %s (%s)", request.pk, code, message[:200])
    return failed


def _why(plan: Plan, request: GenRequest, successor: AIModel) -> str:
    if plan.refusal == SWITCHED:
        return f"{successor.slug} would cost {plan.price} (paid {request.price})"
    return f"{successor.slug} does not take this request as it is"


@dataclass(frozen=True)
class MoveReport:
    moved: int = 0
    refunded: int = 0


def move_waiting(*, ai_model_id: int, limit: int = BATCH) -> MoveReport:
    """Move (or refund) the requests of a switched model that have not reached Google. Each in its own
    conditional UPDATE; queued ones are dispatched again on commit. The sweep calls it for stragglers."""
    model = AIModel.objects.select_related("successor").filter(pk=ai_model_id).first()
    if model is None or model.switched_at is None or model.successor is None:
        return MoveReport()
    successor = model.successor
    moved = refunded = 0
    waiting = GenRequest.objects.filter(NOT_SENT, status__in=GenRequest.IN_FLIGHT, ai_model_id=ai_model_id)
    for request in waiting.select_related("ai_model").order_by("pk")[:limit]:
        plan = plan_for(request, successor)
        mine = NOT_SENT & Q(ai_model_id=ai_model_id)
        if plan.refusal:
            refunded += _refund(request, plan.refusal, _why(plan, request, successor), mine)
            continue
        fields = _move_fields(plan, successor, request)
        with transaction.atomic():
            if request.status == Status.CREATED:  # its enqueue (on commit of its creation, or the sweep) follows
                done = GenRequest.objects.filter(pk=request.pk, status=Status.CREATED, ai_model_id=ai_model_id).update(
                    **fields
                )
            else:
                done = (
                    GenRequest.objects.filter(mine, pk=request.pk)
                    .exclude(status=Status.CREATED)
                    .update(**fields, **_requeue_fields(timezone.now()))
                )
                if done:
                    transaction.on_commit(partial(queue_dispatch, request.pk))
        moved += done
    if moved or refunded:
        log.info(
            "AI model #%s -> #%s: %d waiting request(s) moved, %d refunded", model.pk, successor.pk, moved, refunded
        )
    return MoveReport(moved=moved, refunded=refunded)


def take_over(request: GenRequest, token: datetime | None, message: str = "") -> str | None:
    """The worker's request whose model Google does not know: if the model has switched, move it to the
    successor and queue it again ("moved"), or refund it ("failed"); None when the model has not switched
    (the caller pauses it). Only while the worker still holds it (its lease) and no operation exists."""
    model = AIModel.objects.select_related("successor").filter(pk=request.ai_model_id).first()
    if model is None or model.switched_at is None or model.successor is None:
        return None
    successor = model.successor
    held = Q(status=Status.RUNNING, next_poll_at=token, provider_operation_id="", ai_model_id=model.pk)
    plan = plan_for(request, successor)
    if plan.refusal:
        why = _why(plan, request, successor) + (f"; Google: {message}" if message else "")
        return "failed" if _refund(request, plan.refusal, why, held) else "not-failed"
    with transaction.atomic():
        fields = {**_move_fields(plan, successor, request), **_requeue_fields(timezone.now()), "results": []}
        done = GenRequest.objects.filter(held, pk=request.pk).update(**fields)
        if done:
            transaction.on_commit(partial(queue_dispatch, request.pk))
    if not done:
        return "lost"
    log.info("generation #%s moved from %s to %s after Google's not found", request.pk, model.slug, successor.slug)
    return "moved"


# --------------------------------------------------------------------------------------------------
# The switch
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SwitchOutcome:
    ai_model_id: int
    successor_id: int
    switched_at: datetime
    moved: int  # waiting requests now on the successor (no new charge, no partial refund)
    refunded: int  # waiting requests failed and refunded (dearer there, or not accepted as they are)


def switch_to_successor(*, ai_model_id: int, reason: str, provider_model_id: str | None = None) -> SwitchOutcome | None:
    """Retire the model in favour of its successor, once (see the module docstring). None when this call
    did not switch it: no successor, already switched (by another call), the operator changed its id
    meanwhile (`provider_model_id`: the id that failed), or the successor was refused (then the model
    is paused instead and the operators told)."""
    model = AIModel.objects.select_related("successor").filter(pk=ai_model_id).first()
    if model is None or model.successor_id is None or model.switched_at is not None:
        return None
    now = timezone.now()
    with transaction.atomic():
        successor = AIModel.objects.select_for_update().filter(pk=model.successor_id).first()
        model.successor = successor
        problem = successor_problem(model)
        if problem is None:
            mine = AIModel.objects.filter(pk=model.pk, switched_at__isnull=True, successor_id=successor.pk)
            if provider_model_id is not None:
                mine = mine.filter(provider_model_id=provider_model_id)
            switched = mine.update(
                status=Lifecycle.RETIRED,
                is_active=False,
                switched_at=now,
                updated_at=now,
                paused_at=None,
                paused_reason="",
            )
            if not switched:
                return None
            if not successor.is_active:
                AIModel.objects.filter(pk=successor.pk).update(is_active=True, updated_at=now)
            UserSettings.objects.filter(default_image_model_id=model.pk).update(default_image_model_id=successor.pk)
            UserSettings.objects.filter(default_video_model_id=model.pk).update(default_video_model_id=successor.pk)
            control.catalogue_changed()
    if problem is not None:
        _refuse(model, problem, reason)
        return None
    log.warning(
        "AI model #%s (%s) switched to #%s (%s): %s", model.pk, model.slug, successor.pk, successor.slug, reason
    )
    report = move_waiting(ai_model_id=model.pk)
    alerts.model_switched(
        ai_model=model,
        successor=successor,
        switched_at=now,
        reason=reason,
        moved=report.moved,
        refunded=report.refunded,
    )
    return SwitchOutcome(
        ai_model_id=model.pk, successor_id=successor.pk, switched_at=now, moved=report.moved, refunded=report.refunded
    )


def _refuse(model: AIModel, problem: str, reason: str) -> None:
    """The successor cannot take over: pause the model (once) and tell the operators why."""
    paused_at = control.pause_model(
        ai_model_id=model.pk,
        provider_model_id=model.provider_model_id,
        reason=redact(f"{reason}; its successor cannot take over ({problem})"),
    )
    log.error("AI model #%s: the switch to its successor was refused (%s)", model.pk, problem)
    if paused_at is not None:
        alerts.model_switch_refused(ai_model=model, problem=problem, paused_at=paused_at)


# --------------------------------------------------------------------------------------------------
# The daily check
# --------------------------------------------------------------------------------------------------
@dataclass
class DailyReport:
    switched: list[int]
    refused: list[int]
    past_without_successor: list[int]
    warned: list[tuple[int, int]]  # (model id, days threshold)


def lifecycle_daily(*, today: date | None = None) -> DailyReport:
    """The daily beat task's body (see the module docstring)."""
    today = today or timezone.localdate()
    report = DailyReport(switched=[], refused=[], past_without_successor=[], warned=[])
    active = AIModel.objects.filter(is_active=True, shutdown_date__isnull=False).select_related("successor")
    for model in active.order_by("shutdown_date", "pk"):
        days = (model.shutdown_date - today).days
        if days <= 0:
            if model.successor_id is None:
                report.past_without_successor.append(model.pk)
                alerts.model_past_shutdown(ai_model=model, today=today)
                continue
            reason = f"its shutdown date {model.shutdown_date.isoformat()} has come"
            outcome = switch_to_successor(ai_model_id=model.pk, reason=reason)
            (report.switched if outcome is not None else report.refused).append(model.pk)
            continue
        threshold = next((limit for limit in sorted(WARN_DAYS) if days <= limit), None)
        if threshold is not None and warn_once(model, days=days, threshold=threshold, today=today):
            report.warned.append((model.pk, threshold))
    if any((report.switched, report.refused, report.past_without_successor, report.warned)):
        log.info("lifecycle check %s: %s", today, report)
    return report


def warn_once(model: AIModel, *, days: int, threshold: int, today: date) -> bool:
    """The `threshold`-day warning of this model's shutdown date, once (the cache marker is kept until
    after the shutdown). True when it was sent now."""
    marker = f"{WARNED_PREFIX}:{model.pk}:{model.shutdown_date.isoformat()}:{threshold}"
    ttl = int(timedelta(days=days + 7).total_seconds())
    try:
        if not cache.add(marker, today.isoformat(), timeout=ttl):
            return False
    except Exception:  # no cache: better a warning twice than none
        log.exception("lifecycle: the warning marker could not be stored")
    alerts.model_shutdown_soon(ai_model=model, days=days, threshold=threshold)
    return True


# --------------------------------------------------------------------------------------------------
# The dashboard's banner
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShutdownNotice:
    ai_model_id: int
    name: str
    provider_model_id: str
    shutdown_date: date
    days: int  # until the shutdown; 0 or less: on or past it
    successor: str  # its name, "" without one

    @property
    def past(self) -> bool:
        return self.days <= 0

    @property
    def danger(self) -> bool:
        """Past its shutdown date without a successor: nothing will take over."""
        return self.past and not self.successor


def shutdown_banner(*, today: date | None = None, days: int = BANNER_DAYS) -> list[ShutdownNotice]:
    """Active models within `days` of their shutdown date, or past it (one query)."""
    today = today or timezone.localdate()
    models = AIModel.objects.filter(
        is_active=True, shutdown_date__isnull=False, shutdown_date__lte=today + timedelta(days=days)
    ).select_related("successor")
    return [
        ShutdownNotice(
            ai_model_id=m.pk,
            name=str(m),
            provider_model_id=m.provider_model_id,
            shutdown_date=m.shutdown_date,
            days=(m.shutdown_date - today).days,
            successor=str(m.successor) if m.successor_id else "",
        )
        for m in models.order_by("shutdown_date", "pk")
    ]


# --------------------------------------------------------------------------------------------------
# Asking Google which ids it knows
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelCheck:
    ai_model_id: int
    name: str
    provider_model_id: str
    status: str
    is_active: bool
    listed: bool | None  # None: Google could not be asked for this backend

    @property
    def status_label(self) -> str:
        return str(Lifecycle(self.status).label) if self.status in Lifecycle.values else self.status


@dataclass(frozen=True)
class BackendCheck:
    backend: str  # "gemini" | "vertex"
    visible: tuple[str, ...]  # the model ids Google lists for our key
    error: str  # why Google could not be asked (redacted), "" when it answered
    models: tuple[ModelCheck, ...]  # the catalogue's models on this backend

    @property
    def missing(self) -> list[ModelCheck]:
        return [m for m in self.models if m.listed is False]


def _short_id(name: str) -> str:
    """ "models/x", "publishers/google/models/x", "projects/p/.../models/x" -> "x"."""
    return (name or "").rsplit("models/", 1)[-1].strip("/")


def list_google_models(backend: str) -> list[str]:
    """The base model ids Google lists for our key on `backend` (google-genai `client.models.list()`)."""
    from botapp.engine.backends import google_config
    from botapp.providers.google.client import get_client

    client = get_client(google_config(), backend)
    return sorted({_short_id(getattr(item, "name", "") or "") for item in client.models.list()} - {""})


def check_with_google(*, backend: str | None = None) -> list[BackendCheck]:
    """For each backend the catalogue's Google models use (only `backend` if given) and that has
    credentials: the ids Google lists, and each catalogue model with whether its id is among them."""
    from botapp.engine.backends import google_backend, google_ready

    by_backend: dict[str, list[AIModel]] = {}
    for model in AIModel.objects.exclude(provider=AIModel.Provider.DEMO).order_by("kind", "sort_order", "pk"):
        name = google_backend(model)
        if (backend is None or name == backend) and google_ready(model):
            by_backend.setdefault(name, []).append(model)
    checks = []
    for name, models in sorted(by_backend.items()):
        try:
            visible, error = tuple(list_google_models(name)), ""
        except Exception as exc:
            log.warning("lifecycle: Google's model list (%s) failed: %s", name, error_text(exc))
            visible, error = (), error_text(exc, limit=500)
        known = set(visible)
        checks.append(
            BackendCheck(
                backend=name,
                visible=visible,
                error=error,
                models=tuple(
                    _model_check(m, None if error else _short_id(m.provider_model_id) in known) for m in models
                ),
            )
        )
    return checks


def _model_check(model: AIModel, listed: bool | None) -> ModelCheck:
    return ModelCheck(
        ai_model_id=model.pk,
        name=str(model),
        provider_model_id=model.provider_model_id,
        status=model.status,
        is_active=model.is_active,
        listed=listed,
    )


def problem_text(problem: str, lang: str) -> str:
    """A SuccessorError code in words (the operators' alert)."""
    return t(f"ops.lifecycle_problems.{problem}", lang)


def switched_models_waiting() -> Iterable[int]:
    """Switched models that still have requests waiting for them (the sweep moves those)."""
    return (
        GenRequest.objects.filter(status__in=(Status.CREATED, Status.QUEUED), ai_model__switched_at__isnull=False)
        .order_by()
        .values_list("ai_model_id", flat=True)
        .distinct()
    )
