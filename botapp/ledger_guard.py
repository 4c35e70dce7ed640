"""The ledger is append-only in the database, not only in the code.

Database triggers on the ledger table (`botapp_transaction`, model `Transaction`) refuse every
UPDATE and DELETE of a ledger row, whoever sends it (the ORM, a raw cursor, psql, a bad migration):
a wrong row is corrected by a new row through `BalanceService`, never by editing history. INSERT is
untouched. Migration `0004_ledger_append_only` installs the triggers and its reverse drops them.

- PostgreSQL: one PL/pgSQL function raising `restrict_violation` (SQLSTATE 23001, an
  IntegrityError in Django), a BEFORE UPDATE OR DELETE row trigger and a BEFORE TRUNCATE statement
  trigger, so TRUNCATE (and `TRUNCATE other_table CASCADE`) is refused too. Only a deliberate DBA
  act gets past them: dropping or disabling the triggers (`ALTER TABLE ... DISABLE TRIGGER`), which
  needs the table owner's rights, or `session_replication_role = replica`.
- SQLite: BEFORE UPDATE and BEFORE DELETE triggers that `RAISE(ABORT, ...)` (an IntegrityError).
  SQLite has no TRUNCATE; `DELETE FROM` without WHERE is refused like any DELETE.

Caveats:
- On SQLite, Django alters a table by re-creating it (`_remake_table`), which drops its triggers. A
  future migration that alters `botapp_transaction` must call `install()` again afterwards (a
  RunPython step); `tests/test_ledger_guard.py` fails if the fully migrated database lacks them.
- Tests: transactional tests end with a flush (TRUNCATE on PostgreSQL, DELETE on SQLite) that the
  triggers refuse; `tests/conftest.py` lifts the guard around that flush only, with `uninstall()`
  and `install()` from this module.
"""

from __future__ import annotations

from typing import Any

TABLE = "botapp_transaction"
FUNCTION = "botapp_ledger_append_only"
TRIGGER_ROWS = "botapp_transaction_append_only"  # PostgreSQL: UPDATE and DELETE
TRIGGER_TRUNCATE = "botapp_transaction_no_truncate"  # PostgreSQL: TRUNCATE
TRIGGER_NO_UPDATE = "botapp_transaction_no_update"  # SQLite
TRIGGER_NO_DELETE = "botapp_transaction_no_delete"  # SQLite

MESSAGE = "the ledger (botapp_transaction) is append-only: {op} is refused; correct it with a new ledger row"

# No "%" anywhere below: the statements are executed without parameters on both backends.
POSTGRESQL_CREATE = (
    f"""
    CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION USING
            ERRCODE = 'restrict_violation',
            MESSAGE = replace('{MESSAGE}', '{{op}}', TG_OP),
            HINT = 'Ledger rows are never changed or removed; BalanceService writes corrections.';
    END
    $$
    """,
    f"""
    CREATE TRIGGER {TRIGGER_ROWS} BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()
    """,
    f"""
    CREATE TRIGGER {TRIGGER_TRUNCATE} BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()
    """,
)
POSTGRESQL_DROP = (
    f"DROP TRIGGER IF EXISTS {TRIGGER_TRUNCATE} ON {TABLE}",
    f"DROP TRIGGER IF EXISTS {TRIGGER_ROWS} ON {TABLE}",
    f"DROP FUNCTION IF EXISTS {FUNCTION}()",
)

SQLITE_CREATE = (
    f"""
    CREATE TRIGGER {TRIGGER_NO_UPDATE} BEFORE UPDATE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{MESSAGE.format(op="UPDATE")}'); END
    """,
    f"""
    CREATE TRIGGER {TRIGGER_NO_DELETE} BEFORE DELETE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{MESSAGE.format(op="DELETE")}'); END
    """,
)
SQLITE_DROP = (
    f"DROP TRIGGER IF EXISTS {TRIGGER_NO_UPDATE}",
    f"DROP TRIGGER IF EXISTS {TRIGGER_NO_DELETE}",
)

CREATE = {"postgresql": POSTGRESQL_CREATE, "sqlite": SQLITE_CREATE}
DROP = {"postgresql": POSTGRESQL_DROP, "sqlite": SQLITE_DROP}
TRIGGERS = {"postgresql": (TRIGGER_ROWS, TRIGGER_TRUNCATE), "sqlite": (TRIGGER_NO_UPDATE, TRIGGER_NO_DELETE)}


def _run(connection: Any, statements: tuple[str, ...]) -> None:
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def install(connection: Any) -> None:
    """Create the triggers (no-op on a backend other than PostgreSQL and SQLite)."""
    _run(connection, DROP.get(connection.vendor, ()) + CREATE.get(connection.vendor, ()))


def uninstall(connection: Any) -> None:
    _run(connection, DROP.get(connection.vendor, ()))


def installed(connection: Any) -> bool:
    """Whether every trigger of the guard exists on this database."""
    names = TRIGGERS.get(connection.vendor)
    if not names:
        return False
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass(%s) AND tgname = ANY(%s)",
                [TABLE, list(names)],
            )
        else:
            marks = ", ".join("%s" for _ in names)
            cursor.execute(
                f"SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s AND name IN ({marks})",
                [TABLE, *names],
            )
        return cursor.fetchone()[0] == len(names)
