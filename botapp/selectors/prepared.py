"""Reads on the hot path with their SQL compiled once.

Django compiles a queryset to SQL on every evaluation. For the user's row that every update reads
(about 30 columns over a join) that is 0.4-0.6 ms of CPU, twenty times the query itself on SQLite
(bench/updates.py; the compile is most of the bot's own time per update). `Prepared` compiles a
`values_list` read once per database alias (with stand-in arguments), remembers where each argument
sits among the SQL parameters and which converters its columns need, and afterwards executes that
SQL with the real arguments: the same SQL and the same converted values as the queryset, without
the compile. It goes through the connection's cursor wrapper, so query counting, execute wrappers
and Django's error translation all still apply.

Only `int` and `str` arguments: their values reach the SQL parameters unchanged (or in a subclass,
as psycopg's `Int8`, which the real argument then gets too), so a stand-in can be found among them.
A compile that does not find every stand-in raises.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet

_stand_ins = itertools.count(1)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[Any, ...]  # the compiled parameters, stand-ins included
    slots: tuple[tuple[int, str], ...]  # (position in params, argument name)
    converters: tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]  # (column, converters, expression)


class Prepared:
    """`Prepared(lambda telegram_id: Model.objects.filter(...).values_list(...)[:1], telegram_id=int)`,
    then `.rows(telegram_id=42)`: the rows as tuples, exactly as the queryset would give them."""

    def __init__(self, build: Callable[..., QuerySet[Any, Any]], **arguments: type) -> None:
        for name, kind in arguments.items():
            if kind not in (int, str):
                raise TypeError(f"{name}: only int and str arguments can be prepared, not {kind!r}")
        self.build = build
        self.arguments = arguments
        self._compiled: dict[tuple[str, str], _Compiled] = {}
        self._lock = threading.Lock()

    def _stand_in(self, kind: type) -> Any:
        number = next(_stand_ins)
        return -(7_000_000_000_000 + number) if kind is int else f"\x1fprepared-stand-in-{number}\x1f"

    def _compile(self, using: str) -> _Compiled:
        stand_ins = {name: self._stand_in(kind) for name, kind in self.arguments.items()}
        queryset = self.build(**stand_ins)
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        by_value = {value: name for name, value in stand_ins.items()}
        slots = tuple((index, by_value[value]) for index, value in enumerate(params) if _is_stand_in(value, by_value))
        missing = set(stand_ins) - {name for _, name in slots}
        if missing:
            raise ValueError(f"prepared read: arguments not found in the SQL parameters: {sorted(missing)}")
        columns = [selected[0] for selected in compiler.select[: compiler.col_count]]
        converters = tuple(
            (position, tuple(functions), expression)
            for position, (functions, expression) in compiler.get_converters(columns).items()
        )
        return _Compiled(sql=sql, params=tuple(params), slots=slots, converters=converters)

    def rows(self, *, using: str = DEFAULT_DB_ALIAS, **arguments: Any) -> list[tuple[Any, ...]]:
        connection = connections[using]
        key = (using, connection.vendor)
        compiled = self._compiled.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.setdefault(key, self._compile(using))
        params = list(compiled.params)
        for index, name in compiled.slots:
            value = arguments[name]
            if type(value) is not self.arguments[name]:
                raise TypeError(f"{name}: expected {self.arguments[name].__name__}, got {type(value).__name__}")
            params[index] = type(compiled.params[index])(value)  # the backend's wrapper (psycopg's Int8)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        if not compiled.converters:
            return [tuple(row) for row in rows]
        converted = []
        for row in rows:
            values = list(row)
            for position, functions, expression in compiled.converters:
                value = values[position]
                for function in functions:
                    value = function(value, expression, connection)
                values[position] = value
            converted.append(tuple(values))
        return converted


def _is_stand_in(value: Any, by_value: dict[Any, str]) -> bool:
    # isinstance: a backend may wrap an argument in a subclass (psycopg binds an int as Int8).
    return isinstance(value, (int, str)) and not isinstance(value, bool) and value in by_value
