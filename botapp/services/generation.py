"""GenerationService: paid generation requests and their life cycle.

created -> queued -> running -> succeeded | failed | cancelled

A request is created and charged in one transaction, after a locked balance check; it is handed to
the queue on commit. Every transition is a conditional UPDATE on the current status, so a duplicate
task, a retry or the recovery sweep can never move a request twice. Failing or cancelling refunds
exactly once (the refund's idempotency key is derived from the request), and a request that was
delivered is never refunded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from botapp.models import ZERO, AIModel, GenRequest, TgUser, Transaction, UserBalance
from botapp.selectors import users as user_selectors
from botapp.services import levels, prompt_help, styles
from botapp.services.balance import BalanceService, LedgerResult
from botapp.services.exceptions import (
    DomainError,
    InsufficientFunds,
    InvalidTransition,
    ModelUnavailable,
    PriceChanged,
    PromptTooLong,
    TooManyInFlight,
    UserBanned,
)
from botapp.services.generation_checks import check_sources, validate_request

Status = GenRequest.Status


@dataclass(frozen=True)
class UserStats:
    total: int
    succeeded: int
    failed: int
    in_flight: int
    images: int
    videos: int
    tokens_spent: Decimal
    referrals: int


@dataclass(frozen=True)
class GlobalStats:
    users: int
    requests_by_status: dict[str, int]
    requests_by_model: dict[str, int]
    tokens_spent: Decimal
    tokens_refunded: Decimal
    tokens_deposited: Decimal
    failure_rate: float
    extra: dict[str, object] = field(default_factory=dict)


def timeout_for(kind: str) -> timedelta:
    seconds = settings.VIDEO_TIMEOUT_SECONDS if kind == AIModel.Kind.VIDEO else settings.IMAGE_TIMEOUT_SECONDS
    return timedelta(seconds=seconds)


def variant_share(request: GenRequest, variants: int) -> Decimal:
    """The price of `variants` of a request's variants: price / variants x n (exact: the price is the
    unit price times the variants, see botapp.pricing), never more than the price."""
    total = max(1, int(request.variants or 1))
    count = max(0, min(int(variants), total))
    return (Decimal(request.price) * count / total).quantize(Decimal("0.01"), rounding=ROUND_DOWN)


# Not sent to the provider yet: waiting in the queue, or claimed by a worker that has not called it (its
# `mark_submitted` then finds the request moved or failed and stops). What a retired model's switch moves.
NOT_SENT = Q(status__in=(Status.CREATED, Status.QUEUED)) | Q(status=Status.RUNNING, submitted_at__isnull=True)


class GenerationService:
    # --- creation --------------------------------------------------------------------------------
    @classmethod
    def create_request(
        cls,
        *,
        user_id: int,
        ai_model_id: int,
        prompt: str,
        params: dict | None = None,
        input_images: list[dict] | None = None,
        negative_prompt: str = "",
        variants: int = 1,
        user_prompt: str = "",
        style_id: int | None = None,
        chat_id: int | None = None,
        status_message_id: int | None = None,
        idempotency_key: str | None = None,
        expected_price: Decimal | None = None,
        improve_price: Decimal | None = None,
    ) -> GenRequest:
        """Validate, check the in-flight cap, charge and create the request in one transaction.

        The price is the model's pricing rule applied to the options (`AIModel.quote`); with
        `expected_price` (what the confirm card showed) a different price refuses the request
        (PriceChanged) instead of charging what the user did not see.
        With an `idempotency_key` (e.g. the confirmation button's nonce) a repeated call returns
        the request created the first time and charges nothing.
        A `style_id` must still be active for the model's kind (StyleUnavailable). `improve_price`:
        the prompt is a rewrite of "Improve my prompt" and the card showed this price for it: the
        current PROMPT_IMPROVE_PRICE (PriceChanged if it differs) is charged in the same transaction,
        as its own ledger row keyed `gen:<pk>:improve`, when above zero.
        """
        if idempotency_key:
            existing = GenRequest.objects.filter(idempotency_key=idempotency_key, user_id=user_id).first()
            if existing:
                return existing
        ai_model = AIModel.objects.filter(pk=ai_model_id, is_active=True).first()
        if ai_model is None:
            raise ModelUnavailable()
        if style_id is not None:
            styles.check_active(style_id=style_id, kind=ai_model.kind)
        input_images = list(input_images or [])
        prompt, cleaned = validate_request(
            ai_model=ai_model, prompt=prompt, params=params or {}, input_images=input_images, variants=variants
        )
        negative_prompt = (negative_prompt or "").strip() if ai_model.caps.negative_prompt else ""
        if len(negative_prompt) > ai_model.caps.max_prompt_length:
            raise PromptTooLong(length=len(negative_prompt), limit=ai_model.caps.max_prompt_length)
        check_sources(user_id=user_id, ai_model=ai_model, cleaned=cleaned)
        price = ai_model.quote(cleaned, variants).total
        if expected_price is not None and Decimal(expected_price) != price:
            raise PriceChanged(price=price)
        fee = prompt_help.price() if improve_price is not None else ZERO
        if improve_price is not None and Decimal(improve_price) != fee:
            raise PriceChanged(price=price + fee)
        with transaction.atomic():
            # The balance row lock serialises this user's requests: the cap and the charge agree.
            balance = UserBalance.objects.select_for_update().select_related("user").get(user_id=user_id)
            if balance.user.is_banned:
                raise UserBanned()
            if idempotency_key:
                existing = GenRequest.objects.filter(idempotency_key=idempotency_key).first()
                if existing:
                    return existing
            in_flight = GenRequest.objects.filter(user_id=user_id, status__in=GenRequest.IN_FLIGHT).count()
            if in_flight >= settings.MAX_INFLIGHT_PER_USER:
                raise TooManyInFlight(limit=settings.MAX_INFLIGHT_PER_USER)
            if fee and balance.total < price + fee:
                raise InsufficientFunds(required=price + fee, available=balance.total)
            now = timezone.now()
            request = GenRequest.objects.create(
                user_id=user_id,
                ai_model=ai_model,
                model=ai_model.slug,
                kind=ai_model.kind,
                prompt=prompt,
                negative_prompt=negative_prompt,
                user_prompt=(user_prompt or "").strip() or prompt,
                style_id=style_id,
                variants=variants,
                input_images=input_images,
                params=cleaned,
                price=price,
                status=Status.CREATED,
                chat_id=chat_id,
                status_message_id=status_message_id,
                idempotency_key=idempotency_key or None,
                deadline_at=now + timeout_for(ai_model.kind),
            )
            BalanceService.charge(
                user_id=user_id,
                amount=price,
                key=request.charge_key,
                gen_request=request,
                description=f"{ai_model.name} #{request.pk}",
            )
            if fee:
                BalanceService.charge(
                    user_id=user_id,
                    amount=fee,
                    key=prompt_help.charge_key(request.pk),
                    gen_request=request,
                    description=f"Prompt improvement #{request.pk}",
                )
            transaction.on_commit(lambda: _enqueue(request.pk))
        return request

    @classmethod
    def check_request(
        cls,
        *,
        user_id: int,
        ai_model_id: int,
        prompt: str,
        params: dict,
        input_images: list[dict],
        variants: int = 1,
    ) -> DomainError | None:
        """What `create_request` would refuse these options for (charging nothing), or None."""
        ai_model = AIModel.objects.filter(pk=ai_model_id, is_active=True).first()
        if ai_model is None:
            return ModelUnavailable()
        try:
            _, cleaned = validate_request(
                ai_model=ai_model, prompt=prompt, params=params, input_images=input_images, variants=variants
            )
            check_sources(user_id=user_id, ai_model=ai_model, cleaned=cleaned)
        except DomainError as exc:
            return exc
        return None

    # --- transitions (each returns True only for the caller that made it) ---------------------
    @staticmethod
    def _move(request_id: int, from_statuses: tuple[str, ...], **changes) -> bool:
        return bool(GenRequest.objects.filter(pk=request_id, status__in=from_statuses).update(**changes))

    @classmethod
    def mark_queued(cls, *, request_id: int) -> bool:
        return cls._move(request_id, (Status.CREATED,), status=Status.QUEUED, queued_at=timezone.now())

    @classmethod
    def mark_running(cls, *, request_id: int) -> bool:
        """Claim a request for execution (the worker's claim: a duplicate task gets False)."""
        return cls._move(
            request_id,
            (Status.CREATED, Status.QUEUED),
            status=Status.RUNNING,
            started_at=timezone.now(),
            attempts=F("attempts") + 1,
        )

    @classmethod
    def mark_submitted(cls, *, request_id: int) -> bool:
        """Record that the request is being sent to the provider (kept from the first attempt);
        False when it is no longer running (the user cancelled it after the worker's claim)."""
        return cls._move(request_id, (Status.RUNNING,), submitted_at=Coalesce(F("submitted_at"), timezone.now()))

    @classmethod
    def set_operation(cls, *, request_id: int, operation_id: str, next_poll_at=None) -> bool:
        return cls._move(
            request_id,
            (Status.RUNNING,),
            provider_operation_id=operation_id,
            next_poll_at=next_poll_at,
        )

    @classmethod
    def mark_succeeded(
        cls, *, request_id: int, results: list[dict], paid_variants: int | None = None
    ) -> levels.LevelUp | bool:
        """RUNNING -> SUCCEEDED with the stored results, the lease released (a free delivery claim, see
        botapp.engine.delivery); awards XP. Returns False if not the claimant,
        a LevelUp when the user reached a new level, True otherwise. `paid_variants`: how many of the
        request's variants succeeded (the others are refunded later): XP for their share only."""
        with transaction.atomic():
            request = GenRequest.objects.only("user_id", "price", "variants").filter(pk=request_id).first()
            if request is None:
                return False
            spent = request.price if paid_variants is None else variant_share(request, paid_variants)
            moved = cls._move(
                request_id,
                (Status.RUNNING,),
                status=Status.SUCCEEDED,
                results=results,
                finished_at=timezone.now(),
                error_code="",
                error_message="",
                xp_awarded=levels.xp_for_tokens(spent),  # what a refund takes back
                next_poll_at=None,  # the running step's lease becomes a free delivery claim
            )
            if not moved:
                return False
            level_up = levels.award_xp(user_id=request.user_id, tokens=spent)
        return level_up or True

    @classmethod
    def refund_variants(cls, *, request_id: int, failed: int) -> LedgerResult | None:
        """The one partial refund of a request with several variants, some of which failed, were
        blocked or never reached the user: `failed` variants' share (price / variants x failed) goes
        back in one ledger row (`partial_refund_key`), and the XP of that share is taken back.

        Exactly once: `refunded_variants` moves from 0 by a conditional UPDATE under the request's row
        lock; a replay (a retried task, a duplicate) returns None and writes nothing. Only for a
        succeeded request with at least one variant kept (a request none of whose variants counts is
        failed and refunded whole by `fail`)."""
        with transaction.atomic():
            request = GenRequest.objects.select_for_update().get(pk=request_id)
            failed = int(failed)
            if request.status != Status.SUCCEEDED or not 0 < failed < request.variants:
                return None
            if not GenRequest.objects.filter(pk=request_id, refunded_variants=0).update(refunded_variants=failed):
                return None
            kept_xp = levels.xp_for_tokens(variant_share(request, request.variants - failed))
            if request.xp_awarded > kept_xp and GenRequest.objects.filter(
                pk=request_id, xp_awarded=request.xp_awarded
            ).update(xp_awarded=kept_xp):
                levels.revoke_xp(user_id=request.user_id, xp=request.xp_awarded - kept_xp)
            if not Transaction.objects.filter(operation_key=request.charge_key).exists():
                return None  # nothing was charged (a free request)
            return BalanceService.refund_part(
                charge_key=request.charge_key,
                amount=variant_share(request, failed),
                key=request.partial_refund_key,
                description=f"Refund of {failed} of {request.variants} variants: {request.model} #{request.pk}",
            )

    @classmethod
    def mark_delivered_variants(
        cls, *, request_id: int, results: list[dict], failed: int
    ) -> tuple[bool, LedgerResult | None]:
        """Delivery of a request with several variants is settled: it is marked delivered and its
        `failed` variants (failed, blocked, or refused by Telegram) refunded, in one transaction, so
        that a crash between the two can neither lose the refund nor make it twice."""
        with transaction.atomic():
            moved = cls.mark_delivered(request_id=request_id, results=results)
            refund = cls.refund_variants(request_id=request_id, failed=failed) if moved and failed else None
        return moved, refund

    @classmethod
    def mark_delivered(cls, *, request_id: int, results: list[dict] | None = None) -> bool:
        changes: dict = {"delivered_at": timezone.now(), "next_poll_at": None}  # the delivery claim is released
        if results is not None:
            changes["results"] = results
        return bool(
            GenRequest.objects.filter(pk=request_id, status=Status.SUCCEEDED, delivered_at__isnull=True).update(
                **changes
            )
        )

    @classmethod
    def fail(
        cls,
        *,
        request_id: int,
        error_code: str,
        error_message: str = "",
        from_statuses: tuple[str, ...] = GenRequest.IN_FLIGHT,
        only_if: Q | None = None,
    ) -> bool:
        """Move the request to FAILED and refund it, exactly once. A delivered request never fails."""
        with transaction.atomic():
            moved = bool(
                GenRequest.objects.filter(pk=request_id, status__in=from_statuses, delivered_at__isnull=True)
                .filter(only_if or Q())
                .update(
                    status=Status.FAILED,
                    error_code=error_code[:64],
                    error_message=error_message[:2000],
                    finished_at=timezone.now(),
                )
            )
            if moved:
                cls.refund(request_id=request_id)
        return moved

    @classmethod
    def fail_undelivered(cls, *, request_id: int, error_code: str, error_message: str = "") -> bool:
        """A result that could not be delivered (the user blocked the bot, Telegram refused the file)."""
        return cls.fail(
            request_id=request_id,
            error_code=error_code,
            error_message=error_message,
            from_statuses=(Status.SUCCEEDED,),
        )

    @classmethod
    def cancel(cls, *, request_id: int, user_id: int | None = None) -> bool:
        """Cancel a request that has not been sent to the provider yet (queued, or claimed by a worker
        that has not called the provider), with a refund, once. After submission the provider
        charges for the work, so cancelling is refused (False)."""
        with transaction.atomic():
            not_sent = Q(status__in=(Status.CREATED, Status.QUEUED))
            not_sent |= Q(status=Status.RUNNING, submitted_at__isnull=True)
            qs = GenRequest.objects.filter(not_sent, pk=request_id)
            if user_id is not None:
                qs = qs.filter(user_id=user_id)
            moved = bool(qs.update(status=Status.CANCELLED, finished_at=timezone.now(), error_code="cancelled"))
            if moved:
                cls.refund(request_id=request_id)
        return moved

    @classmethod
    def refund(cls, *, request_id: int) -> LedgerResult | None:
        """Refund a failed or cancelled request (idempotent). Never for a succeeded one.

        A request that had succeeded (its result then undelivered, or refunded by an operator) gave
        XP: it is taken back here, in the refund's transaction, exactly once (`xp_awarded` is zeroed
        under the request's row lock)."""
        with transaction.atomic():
            request = GenRequest.objects.select_for_update().get(pk=request_id)
            if request.status not in (Status.FAILED, Status.CANCELLED):
                raise InvalidTransition()
            if request.xp_awarded and GenRequest.objects.filter(pk=request_id, xp_awarded__gt=0).update(xp_awarded=0):
                levels.revoke_xp(user_id=request.user_id, xp=request.xp_awarded)
            if not Transaction.objects.filter(operation_key=request.charge_key).exists():
                return None  # nothing was charged (a free request)
            result = BalanceService.refund(
                charge_key=request.charge_key,
                key=request.refund_key,
                description=f"Refund: {request.model} #{request.pk}",
                after=(request.partial_refund_key,) if request.refunded_variants else (),
            )
            if request.refunded_at is None:
                GenRequest.objects.filter(pk=request_id).update(refunded_at=timezone.now())
        return result

    @classmethod
    def admin_refund(
        cls, *, request_id: int, reason: str = "refunded by an operator", notify: bool = True
    ) -> LedgerResult | None:
        """The operator's refund: fails an in-flight request first; refuses a delivered one.

        The call that actually refunds (not a replay) tells the user, after commit, through the
        `notify_refund` task (`notify=False`: say nothing)."""
        with transaction.atomic():
            request = GenRequest.objects.select_for_update().get(pk=request_id)
            moved = False
            if request.status in GenRequest.IN_FLIGHT:
                moved = cls.fail(request_id=request_id, error_code="admin", error_message=reason)
            elif request.status == Status.SUCCEEDED:
                if request.delivered_at is not None:
                    raise InvalidTransition("A delivered generation cannot be refunded.")
                # A worker sending the result holds a delivery claim (a future next_poll_at): refusing
                # then is what keeps "refunded" and "delivered" exclusive.
                not_being_sent = Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=timezone.now())
                moved = cls.fail(
                    request_id=request_id,
                    error_code="admin",
                    error_message=reason,
                    from_statuses=(Status.SUCCEEDED,),
                    only_if=not_being_sent,
                )
                if not moved:
                    raise InvalidTransition("The result is being sent right now; try again in a minute.")
            result = cls.refund(request_id=request_id)
            if notify and result is not None and (moved or not result.replayed):
                transaction.on_commit(lambda: _notify_refund(request_id))
        return result

    # --- queries ---------------------------------------------------------------------------------
    @staticmethod
    def in_flight_count(*, user_id: int) -> int:
        return GenRequest.objects.filter(user_id=user_id, status__in=GenRequest.IN_FLIGHT).count()

    @staticmethod
    def recent(*, user_id: int, limit: int = 10) -> list[GenRequest]:
        return list(
            GenRequest.objects.filter(user_id=user_id).select_related("ai_model").order_by("-created_at")[:limit]
        )

    @staticmethod
    def user_stats(*, user_id: int) -> UserStats:
        """Counts by status and kind, net tokens spent and referrals, in two prepared SELECTs (a menu click)."""
        counts = user_selectors.request_counts(user_id=user_id)
        spent, refunded, invited = user_selectors.money_and_referrals(user_id=user_id)
        return UserStats(tokens_spent=spent - refunded, referrals=invited, **counts)

    @staticmethod
    def global_stats(*, since=None) -> GlobalStats:
        requests = GenRequest.objects.all()
        users = TgUser.objects.all()
        if since is not None:
            requests = requests.filter(created_at__gte=since)
            users = users.filter(created_at__gte=since)
        by_status = dict(requests.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
        by_model = dict(requests.values_list("model").annotate(n=Count("id")).values_list("model", "n"))
        ledger = Transaction.objects.all() if since is None else Transaction.objects.filter(created_at__gte=since)
        sums = ledger.aggregate(
            spent=Sum("amount", filter=Q(kind=Transaction.Kind.CHARGE)),
            refunded=Sum("amount", filter=Q(kind=Transaction.Kind.REFUND)),
            deposited=Sum("amount", filter=Q(kind=Transaction.Kind.DEPOSIT, bucket=Transaction.Bucket.MAIN)),
        )
        finished = sum(by_status.get(s, 0) for s in (Status.SUCCEEDED, Status.FAILED))
        return GlobalStats(
            users=users.count(),
            requests_by_status=by_status,
            requests_by_model=by_model,
            tokens_spent=-(sums["spent"] or ZERO),
            tokens_refunded=sums["refunded"] or ZERO,
            tokens_deposited=sums["deposited"] or ZERO,
            failure_rate=(by_status.get(Status.FAILED, 0) / finished) if finished else 0.0,
        )


def _notify_refund(request_id: int) -> None:
    from botapp.services.notices import enqueue_refund_notice

    enqueue_refund_notice(request_id=request_id)


def _enqueue(request_id: int) -> None:
    from botapp.services.queue import enqueue_generation

    enqueue_generation(request_id=request_id)
