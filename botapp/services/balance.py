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
from functools import cache

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

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


@dataclass(frozen=True)
class _Locked:
    """The locked balance row, as the operations see it."""

    pk: int
    balance: Decimal
    bonus_balance: Decimal
    is_banned: bool
    key_used: bool

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

        def plan(bal: _Locked) -> dict[str, Decimal]:
            if bal.is_banned:
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
    def refund(
        cls, *, charge_key: str, key: str | None = None, description: str = "", after: tuple[str, ...] = ()
    ) -> LedgerResult:
        """Give back a whole charge, each bucket's part to the bucket it came from. Exactly once.

        `after`: the keys of earlier partial refunds of this charge (`refund_part`); only what they
        left is given back, so the charge is never refunded beyond what it took."""
        key = key or f"{charge_key}:refund"
        charges = list(Transaction.objects.filter(operation_key=charge_key, kind=Transaction.Kind.CHARGE))
        if not charges:
            raise NothingToRefund()
        user_id = charges[0].user_id
        back = {row.bucket: -row.amount for row in charges}
        if after:
            earlier = Transaction.objects.filter(operation_key__in=after, kind=Transaction.Kind.REFUND, user_id=user_id)
            for row in earlier:
                back[row.bucket] = back.get(row.bucket, ZERO) - row.amount
            back = {bucket: max(ZERO, amount) for bucket, amount in back.items()}
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
    def refund_part(cls, *, charge_key: str, amount: Decimal, key: str, description: str = "") -> LedgerResult:
        """Give back `amount` of a charge (the variants of a generation that failed), exactly once per
        `key`. The tokens the charge took last go back first: its main-bucket part, then its bonus
        part (a charge takes bonus tokens first), so what stays charged is what a charge of the
        smaller amount would have taken. Never more than the charge took (InvalidAmount)."""
        amount = to_amount(amount)
        charges = list(Transaction.objects.filter(operation_key=charge_key, kind=Transaction.Kind.CHARGE))
        if not charges:
            raise NothingToRefund()
        taken = {row.bucket: -row.amount for row in charges}
        if amount > sum(taken.values(), ZERO):
            raise InvalidAmount("A partial refund cannot exceed the charge.")
        from_main = min(taken.get(MAIN, ZERO), amount)
        back = {MAIN: from_main, BONUS: amount - from_main}
        return cls._apply(
            user_id=charges[0].user_id,
            kind=Transaction.Kind.REFUND,
            key=key,
            plan=lambda bal: back,
            expected_total=amount,
            links={"gen_request": charges[0].gen_request},
            description=description or f"Partial refund of {charge_key}",
            totals={"total_refunded": amount},
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
        notify: bool = True,
    ) -> LedgerResult:
        """Grant (positive) or take (negative) tokens by an operator, with a reason for the ledger.

        `notify` (default): the call that wrote (not a replay of `key`) tells the user, after commit,
        through the `notify_adjustment` task ("you received N tokens: <reason>" / "N tokens were
        deducted: <reason>"), keyed by the ledger row. `notify=False`: say nothing (test funds, tools).
        """
        amount = _signed_amount(amount)
        if not reason.strip():
            raise InvalidAmount("A reason is required for a manual adjustment.")
        if bucket not in (MAIN, BONUS):
            raise ValueError(f"unknown bucket {bucket}")

        def plan(bal: _Locked) -> dict[str, Decimal]:
            current = bal.balance if bucket == MAIN else bal.bonus_balance
            if current + amount < 0:
                raise InsufficientFunds(required=-amount, available=current)
            return {bucket: amount}

        result = cls._apply(
            user_id=user_id,
            kind=Transaction.Kind.ADMIN_ADJUSTMENT,
            key=key,
            plan=plan,
            expected_total=amount,
            links={},
            description=reason.strip()[:255],
        )
        if notify and not result.replayed and result.transaction_ids:
            row_id = result.transaction_ids[0]
            transaction.on_commit(lambda: _notify_adjustment(row_id))
        return result

    @classmethod
    def debit_refunded_payment(cls, *, payment: Payment, key: str, description: str = "") -> LedgerResult:
        """Take back what a refunded payment credited (its tokens and bonus), as far as they remain."""
        return cls.take_back(
            user_id=payment.user_id,
            main=payment.tokens,
            bonus=payment.bonus_tokens,
            key=key,
            payment=payment,
            description=description or f"Payment #{payment.pk} refunded",
        )

    @classmethod
    def take_back(
        cls,
        *,
        user_id: int,
        main: Decimal,
        bonus: Decimal,
        key: str,
        payment: Payment | None = None,
        description: str = "",
    ) -> LedgerResult:
        """Take back up to `main` purchased and `bonus` bonus tokens, each from its own bucket: what is
        left of it, never below zero (a refunded payment: its tokens from the payer, its referral reward
        from the referrer; see botapp.services.refunds). One ledger row per bucket that moves, kind
        `payment_refund`; nothing is written when nothing is left. Banned users are debited too."""

        def plan(bal: _Locked) -> dict[str, Decimal]:
            return {MAIN: -min(bal.balance, max(main, ZERO)), BONUS: -min(bal.bonus_balance, max(bonus, ZERO))}

        return cls._apply(
            user_id=user_id,
            kind=Transaction.Kind.PAYMENT_REFUND,
            key=key,
            plan=plan,
            expected_total=None,
            links={"payment": payment},
            description=description,
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
        """Lock, check for a replay, plan, then one INSERT of the ledger rows and one UPDATE of the
        balance (one statement on PostgreSQL: see `_Statements`): the hot path of every generation."""
        if not key or len(key) > 128:
            raise ValueError("an idempotency key of 1..128 characters is required")
        try:
            with transaction.atomic():
                bal = cls._lock(user_id, key)
                if bal.key_used:
                    return cls._replay(key=key, user_id=user_id, kind=kind, bal=bal, expected=expected_total)
                deltas = {bucket: delta for bucket, delta in plan(bal).items() if delta}
                after = {MAIN: bal.balance, BONUS: bal.bonus_balance}
                link_ids = {name: getattr(obj, "pk", None) for name, obj in links.items()}
                rows = []
                for bucket, delta in sorted(deltas.items()):
                    after[bucket] += delta
                    if after[bucket] < 0:  # plan() guards this; the CHECK constraint too
                        raise InsufficientFunds(required=-delta, available=after[bucket] - delta)
                    rows.append(
                        (
                            user_id,
                            kind,
                            bucket,
                            delta,
                            after[bucket],
                            link_ids.get("gen_request"),
                            link_ids.get("payment"),
                            link_ids.get("promocode"),
                            description[:255],
                            key,
                            f"{key}:{bucket}",
                        )
                    )
                ids = _write(bal.pk, rows, after, totals or {}) if rows else []
                return LedgerResult(
                    operation_key=key,
                    kind=kind,
                    user_id=user_id,
                    main_delta=deltas.get(MAIN, ZERO),
                    bonus_delta=deltas.get(BONUS, ZERO),
                    balance=after[MAIN],
                    bonus_balance=after[BONUS],
                    transaction_ids=tuple(ids),
                )
        except IntegrityError:
            # The same key written concurrently (a waiting statement's snapshot may not see rows
            # committed while it waited for the lock): the unique constraint is the last guard.
            with transaction.atomic():
                bal = cls._lock(user_id, key)
                if not bal.key_used:
                    raise
                return cls._replay(key=key, user_id=user_id, kind=kind, bal=bal, expected=expected_total)

    @staticmethod
    def _lock(user_id: int, key: str) -> _Locked:
        """SELECT ... FOR UPDATE of the balance row, with the ban flag and whether `key` was used."""
        sql = _statements()
        with connection.cursor() as cursor:
            cursor.execute(sql.lock, [key, user_id])
            row = cursor.fetchone()
            if row is None:
                if not TgUser.objects.filter(pk=user_id).exists():
                    raise UserNotFound() from None
                UserBalance.objects.get_or_create(user_id=user_id)
                cursor.execute(sql.lock, [key, user_id])
                row = cursor.fetchone()
        pk, balance, bonus, banned, used = row
        return _Locked(pk, _decimal(balance), _decimal(bonus), bool(banned), bool(used))

    @staticmethod
    def _replay(*, key: str, user_id: int, kind: str, bal: _Locked, expected: Decimal | None) -> LedgerResult:
        done = list(Transaction.objects.filter(operation_key=key).order_by("id"))
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


def _notify_adjustment(transaction_id: int) -> None:
    from botapp.services.notices import enqueue_adjustment_notice

    enqueue_adjustment_notice(transaction_id=transaction_id)


# --- SQL of the hot path -------------------------------------------------------------------------
# Every balance change runs these three statements (lock, insert, update). They are written in SQL
# because the ORM's query building cost several times the database's own time per charge (see
# bench/ledger.py); they are portable between PostgreSQL and SQLite and covered by the same tests.

_TX_COLUMNS = (
    "user_id",
    "kind",
    "bucket",
    "amount",
    "balance_after",
    "gen_request_id",
    "payment_id",
    "promocode_id",
    "description",
    "operation_key",
    "idempotency_key",
    "created_at",
)


@dataclass(frozen=True)
class _Statements:
    lock: str
    insert_one: str
    insert_two: str
    update: str
    # PostgreSQL: the balance UPDATE runs as a data-modifying WITH of the ledger INSERT, one round trip
    # for both while the row is locked (PostgreSQL runs such a WITH exactly once, to completion, read or
    # not); SQLite has no data-modifying WITH and sends the two statements.
    one_statement: bool


@cache
def _statements_for(vendor: str, for_update: bool) -> _Statements:
    q = connection.ops.quote_name
    tx, bal, user = (q(m._meta.db_table) for m in (Transaction, UserBalance, TgUser))
    lock = (
        f"SELECT b.id, b.balance, b.bonus_balance, u.is_banned, "
        f"EXISTS (SELECT 1 FROM {tx} t WHERE t.operation_key = %s) "
        f"FROM {bal} b INNER JOIN {user} u ON u.id = b.user_id WHERE b.user_id = %s"
        + (" FOR UPDATE OF b" if for_update else "")
    )
    row = "(" + ", ".join(["%s"] * len(_TX_COLUMNS)) + ")"
    insert = f"INSERT INTO {tx} ({', '.join(q(c) for c in _TX_COLUMNS)}) VALUES "
    update = f"UPDATE {bal} SET balance = %s, bonus_balance = %s, updated_at = %s{{totals}} WHERE id = %s"
    return _Statements(
        lock=lock,
        insert_one=f"{insert}{row} RETURNING id",
        insert_two=f"{insert}{row}, {row} RETURNING id",
        update=update,
        one_statement=vendor == "postgresql",
    )


def _statements() -> _Statements:
    return _statements_for(connection.vendor, connection.features.has_select_for_update_of)


def _decimal(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value)).quantize(CENT)


def _write(balance_pk: int, rows: list[tuple], after: dict[str, Decimal], totals: dict[str, Decimal]) -> list[int]:
    """Insert the ledger rows and update the locked balance row; return the new rows' ids."""
    sql = _statements()
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    params = [value for row in rows for value in (*row, now)]
    totals_sql = "".join(
        f", {connection.ops.quote_name(name)} = {connection.ops.quote_name(name)} + %s" for name in totals
    )
    update = sql.update.format(totals=totals_sql)
    update_params = [after[MAIN], after[BONUS], now, *totals.values(), balance_pk]
    insert = sql.insert_one if len(rows) == 1 else sql.insert_two
    with connection.cursor() as cursor:
        if sql.one_statement:
            cursor.execute(f"WITH moved AS ({update} RETURNING id) {insert}", [*update_params, *params])
            return [r[0] for r in cursor.fetchall()]
        cursor.execute(insert, params)
        ids = [r[0] for r in cursor.fetchall()]
        cursor.execute(update, update_params)
    return ids
