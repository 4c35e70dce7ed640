"""BalanceService: the only code that changes balances.

Every call runs in one database transaction, locks the user's balance row (`select_for_update`),
writes one ledger row per bucket it touches and updates the cached balance. The caller's
idempotency key (`key`) is stored as the rows' `operation_key`; each row's unique
`idempotency_key` is `<key>:<bucket>`. Replaying a call with the same key and the same data changes
nothing and returns the original result; the same key with other data raises DuplicateOperation.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.db.models import F

from botapp.models import ZERO, GenRequest, Payment, Promocode, TgUser, Transaction, UserBalance
from botapp.services.exceptions import (
    DuplicateOperation,
    InsufficientFunds,
    InvalidAmount,
    NothingToRefund,
    UserBanned,
    UserNotFound,
)

MAIN = Transaction.Bucket.MAIN
BONUS = Transaction.Bucket.BONUS
CENT = Decimal("0.01")


@dataclass(frozen=True)
class LedgerResult:
    operation_key: str
    kind: str
    user_id: int
    main_delta: Decimal
    bonus_delta: Decimal
    balance: Decimal
    bonus_balance: Decimal
    transaction_ids: tuple[int, ...]
    replayed: bool = False

    @property
    def amount(self) -> Decimal:
        return self.main_delta + self.bonus_delta

    @property
    def total(self) -> Decimal:
        return self.balance + self.bonus_balance


def to_amount(value: Decimal | int | str) -> Decimal:
    """A positive Decimal with at most two places; floats are refused (money is never float)."""
    if isinstance(value, float | bool):
        raise InvalidAmount()
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidAmount() from None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(CENT):
        raise InvalidAmount()
    return amount.quantize(CENT)


def _signed_amount(value: Decimal | int | str) -> Decimal:
    if isinstance(value, Decimal | int | str) and not isinstance(value, bool):
        try:
            amount = Decimal(value)
        except (InvalidOperation, ValueError):
            raise InvalidAmount() from None
        if amount < 0:
            return -to_amount(-amount)
    return to_amount(value)


class BalanceService:
    """Keyword-only class methods; no instance state."""

    # --- reads -----------------------------------------------------------------------------------
    @staticmethod
    def get_balance(*, user_id: int) -> UserBalance:
        balance, _ = UserBalance.objects.get_or_create(user_id=user_id)
        return balance

    @classmethod
    def can_afford(cls, *, user_id: int, amount: Decimal) -> bool:
        return cls.get_balance(user_id=user_id).total >= to_amount(amount)

    @classmethod
    def ensure_can_afford(cls, *, user_id: int, amount: Decimal) -> None:
        """Raise InsufficientFunds (with the shortfall) when the balance does not cover `amount`."""
        balance = cls.get_balance(user_id=user_id)
        required = to_amount(amount)
        if balance.total < required:
            raise InsufficientFunds(required=required, available=balance.total)

    # --- writes ----------------------------------------------------------------------------------
    @classmethod
    def charge(
        cls,
        *,
        user_id: int,
        amount: Decimal,
        key: str,
        gen_request: GenRequest | None = None,
        description: str = "",
    ) -> LedgerResult:
        """Spend tokens: the bonus bucket first, then the main one. Banned users cannot spend."""
        amount = to_amount(amount)

        def plan(bal: UserBalance) -> dict[str, Decimal]:
            if bal.user.is_banned:
                raise UserBanned()
            if bal.total < amount:
                raise InsufficientFunds(required=amount, available=bal.total)
            from_bonus = min(bal.bonus_balance, amount)
            return {BONUS: -from_bonus, MAIN: -(amount - from_bonus)}

        return cls._apply(
            user_id=user_id,
            kind=Transaction.Kind.CHARGE,
            key=key,
            plan=plan,
            expected_total=-amount,
            links={"gen_request": gen_request},
            description=description,
            totals={"total_spent": amount},
        )

    @classmethod
    def deposit(
        cls,
        *,
        user_id: int,
        amount: Decimal,
        key: str,
        bonus_amount: Decimal | int = 0,
        payment: Payment | None = None,
        promocode: Promocode | None = None,
        description: str = "",
    ) -> LedgerResult:
        """Credit purchased tokens (main bucket) and, in the same operation, any bonus on top."""
        amount = to_amount(amount)
        bonus = to_amount(bonus_amount) if bonus_amount else ZERO
        return cls._apply(
            user_id=user_id,
            kind=Transaction.Kind.DEPOSIT,
            key=key,
            plan=lambda bal: {MAIN: amount, BONUS: bonus},
            expected_total=amount + bonus,
            links={"payment": payment, "promocode": promocode},
            description=description,
            totals={"total_deposited": amount},
        )

    @classmethod
    def bonus(
        cls,
        *,
        user_id: int,
        amount: Decimal,
        key: str,
        kind: str = Transaction.Kind.BONUS,
        promocode: Promocode | None = None,
        payment: Payment | None = None,
        description: str = "",
    ) -> LedgerResult:
        """Credit bonus tokens (promocodes, gifts): the bonus bucket, spent before purchased tokens."""
        amount = to_amount(amount)
        if kind not in (Transaction.Kind.BONUS, Transaction.Kind.PROMO, Transaction.Kind.REFERRAL):
            raise ValueError(f"not a bonus kind: {kind}")
        return cls._apply(
            user_id=user_id,
            kind=kind,
            key=key,
            plan=lambda bal: {BONUS: amount},
            expected_total=amount,
            links={"promocode": promocode, "payment": payment},
            description=description,
        )

    @classmethod
    def referral_reward(
        cls, *, user_id: int, amount: Decimal, key: str, payment: Payment | None = None, description: str = ""
    ) -> LedgerResult:
        return cls.bonus(
            user_id=user_id,
            amount=amount,
            key=key,
            kind=Transaction.Kind.REFERRAL,
            payment=payment,
            description=description,
        )

    @classmethod
    def refund(cls, *, charge_key: str, key: str | None = None, description: str = "") -> LedgerResult:
        """Give back a whole charge, each bucket's part to the bucket it came from. Exactly once."""
        key = key or f"{charge_key}:refund"
        charges = list(Transaction.objects.filter(operation_key=charge_key, kind=Transaction.Kind.CHARGE))
        if not charges:
            raise NothingToRefund()
        user_id = charges[0].user_id
        back = {row.bucket: -row.amount for row in charges}
        total = sum(back.values(), ZERO)
        return cls._apply(
            user_id=user_id,
            kind=Transaction.Kind.REFUND,
            key=key,
            plan=lambda bal: back,
            expected_total=total,
            links={"gen_request": charges[0].gen_request},
            description=description or f"Refund of {charge_key}",
            totals={"total_refunded": total},
        )

    @classmethod
    def admin_adjust(
        cls,
        *,
        user_id: int,
        amount: Decimal,
        reason: str,
        key: str,
        bucket: str = MAIN,
    ) -> LedgerResult:
        """Grant (positive) or take (negative) tokens by an operator, with a reason for the ledger."""
        amount = _signed_amount(amount)
        if not reason.strip():
            raise InvalidAmount("A reason is required for a manual adjustment.")
        if bucket not in (MAIN, BONUS):
            raise ValueError(f"unknown bucket {bucket}")

        def plan(bal: UserBalance) -> dict[str, Decimal]:
            current = bal.balance if bucket == MAIN else bal.bonus_balance
            if current + amount < 0:
                raise InsufficientFunds(required=-amount, available=current)
            return {bucket: amount}

        return cls._apply(
            user_id=user_id,
            kind=Transaction.Kind.ADMIN_ADJUSTMENT,
            key=key,
            plan=plan,
            expected_total=amount,
            links={},
            description=reason.strip()[:255],
        )

    @classmethod
    def debit_refunded_payment(cls, *, payment: Payment, key: str) -> LedgerResult:
        """Take back what a refunded payment credited (its tokens and bonus), as far as they remain."""

        def plan(bal: UserBalance) -> dict[str, Decimal]:
            return {
                MAIN: -min(bal.balance, payment.tokens),
                BONUS: -min(bal.bonus_balance, payment.bonus_tokens),
            }

        return cls._apply(
            user_id=payment.user_id,
            kind=Transaction.Kind.PAYMENT_REFUND,
            key=key,
            plan=plan,
            expected_total=None,
            links={"payment": payment},
            description=f"Payment #{payment.pk} refunded",
        )

    # --- the one place that writes ------------------------------------------------------------
    @classmethod
    def _apply(
        cls,
        *,
        user_id: int,
        kind: str,
        key: str,
        plan,
        expected_total: Decimal | None,
        links: dict[str, object],
        description: str,
        totals: dict[str, Decimal] | None = None,
    ) -> LedgerResult:
        if not key or len(key) > 128:
            raise ValueError("an idempotency key of 1..128 characters is required")
        try:
            with transaction.atomic():
                bal = cls._lock(user_id)
                replay = cls._replay(key=key, user_id=user_id, kind=kind, bal=bal, expected=expected_total)
                if replay is not None:
                    return replay
                deltas = {bucket: delta for bucket, delta in plan(bal).items() if delta}
                rows = []
                for bucket, delta in sorted(deltas.items()):
                    field = "balance" if bucket == MAIN else "bonus_balance"
                    setattr(bal, field, getattr(bal, field) + delta)
                    if getattr(bal, field) < 0:  # plan() guards this; the CHECK constraint too
                        raise InsufficientFunds(required=-delta, available=getattr(bal, field) - delta)
                    rows.append(
                        Transaction(
                            user_id=user_id,
                            kind=kind,
                            bucket=bucket,
                            amount=delta,
                            balance_after=getattr(bal, field),
                            description=description[:255],
                            operation_key=key,
                            idempotency_key=f"{key}:{bucket}",
                            **{name: obj for name, obj in links.items() if obj is not None},
                        )
                    )
                Transaction.objects.bulk_create(rows)
                update_fields = ["balance", "bonus_balance", "updated_at"]
                for field, value in (totals or {}).items():
                    setattr(bal, field, F(field) + value)
                    update_fields.append(field)
                bal.save(update_fields=update_fields)
                return LedgerResult(
                    operation_key=key,
                    kind=kind,
                    user_id=user_id,
                    main_delta=deltas.get(MAIN, ZERO),
                    bonus_delta=deltas.get(BONUS, ZERO),
                    balance=bal.balance,
                    bonus_balance=bal.bonus_balance,
                    transaction_ids=tuple(r.pk for r in rows),
                )
        except IntegrityError:
            # The same key written concurrently for another user (a per-user lock does not order
            # those): the unique constraint is the last guard.
            with transaction.atomic():
                replay = cls._replay(
                    key=key, user_id=user_id, kind=kind, bal=cls._lock(user_id), expected=expected_total
                )
            if replay is None:
                raise
            return replay

    @staticmethod
    def _lock(user_id: int) -> UserBalance:
        locked = UserBalance.objects.select_for_update(of=("self",)).select_related("user")
        try:
            return locked.get(user_id=user_id)
        except UserBalance.DoesNotExist:
            if not TgUser.objects.filter(pk=user_id).exists():
                raise UserNotFound() from None
            UserBalance.objects.get_or_create(user_id=user_id)
            return locked.get(user_id=user_id)

    @staticmethod
    def _replay(
        *, key: str, user_id: int, kind: str, bal: UserBalance, expected: Decimal | None
    ) -> LedgerResult | None:
        done = list(Transaction.objects.filter(operation_key=key).order_by("id"))
        if not done:
            return None
        if any(row.user_id != user_id or row.kind != kind for row in done):
            raise DuplicateOperation()
        if expected is not None and sum((row.amount for row in done), ZERO) != expected:
            raise DuplicateOperation()
        deltas = {row.bucket: row.amount for row in done}
        return LedgerResult(
            operation_key=key,
            kind=kind,
            user_id=user_id,
            main_delta=deltas.get(MAIN, ZERO),
            bonus_delta=deltas.get(BONUS, ZERO),
            balance=bal.balance,
            bonus_balance=bal.bonus_balance,
            transaction_ids=tuple(row.pk for row in done),
            replayed=True,
        )
