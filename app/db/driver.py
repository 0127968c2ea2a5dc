"""Statements compiled once and run on the database driver's own cursor.

A platform turn is a handful of small statements on every step of every call.
SQLAlchemy's work around each one (an execution context, parameter and result
objects, per-row processing set up anew) costs more than the database's own
(`make profile`). A `DriverStatement` is compiled once per dialect; its values
go through the conversions SQLAlchemy would make (JSON, dates on SQLite) and
straight to the driver's cursor.

What SQLAlchemy guarantees is kept: the statement runs in the connection's
transaction, which must have begun (SQLite's writers take their turn there);
`before_cursor_execute` listeners hear it; an error goes through the
connection's own error handling, so callers see the same exceptions (an
IntegrityError for a copy of a delivery), a lost connection is dropped from the
pool, and the app's error counts see it. A statement whose SQL SQLAlchemy would
complete at each execution (a column default to fill in, an expanding IN) is
refused when it is compiled.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ReturnsRows

Processor = Callable[[Any], Any] | None


class _Compiled(NamedTuple):
    sql: str
    names: tuple[str, ...]  # the binds, in the order a positional driver takes them
    positional: bool
    binds: tuple[Processor, ...]  # one per name
    fixed: dict[str, Any]  # the statement's own values (literals), by bind name
    results: tuple[Processor, ...]  # one per column returned
    row: type[tuple[Any, ...]]  # a named tuple of the columns returned


class DriverStatement:
    """`statement` run on the driver: every value it needs is a named bindparam,
    given at each run, or a value of the statement's own."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._by_dialect: dict[tuple[str, str], _Compiled] = {}

    def rows(self, connection: Connection, values: Mapping[str, Any]) -> list[Any]:
        """Run with `values` (by bind name) in the connection's transaction; the
        rows returned, as named tuples."""
        if not connection.in_transaction():
            raise RuntimeError("a driver statement runs in a transaction that has begun")
        compiled = self._compiled(connection.dialect)
        if compiled.fixed:
            values = compiled.fixed | dict(values)
        processed = [
            value if process is None else process(value)
            for value, process in zip(
                (values[name] for name in compiled.names), compiled.binds, strict=True
            )
        ]
        parameters: Sequence[Any] | dict[str, Any] = (
            processed if compiled.positional else dict(zip(compiled.names, processed, strict=True))
        )
        cursor = None
        try:
            cursor = connection.connection.cursor()
            for listener in connection.dispatch.before_cursor_execute:
                listener(connection, cursor, compiled.sql, parameters, None, False)
            cursor.execute(compiled.sql, parameters)
            fetched = cursor.fetchall() if compiled.results else []
            cursor.close()
        except BaseException as error:
            # SQLAlchemy's own handler, as its execute calls it: it closes the
            # cursor, wraps a driver's error, drops a lost connection, and raises.
            connection._handle_dbapi_exception(error, compiled.sql, parameters, cursor, None)
        return [compiled.row(*_processed(row, compiled.results)) for row in fetched]

    def _compiled(self, dialect: Dialect) -> _Compiled:
        key = (dialect.name, dialect.driver)
        compiled = self._by_dialect.get(key)
        if compiled is None:
            compiled = self._by_dialect[key] = _compile(self.statement, dialect)
        return compiled


def _compile(statement: ClauseElement, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)  # a statement, not DDL
    completed = [
        *(column.name for column in [*compiled.insert_prefetch, *compiled.update_prefetch]),
        *compiled.literal_execute_params,
        *compiled.post_compile_params,
    ]
    if completed:
        raise ValueError(f"SQLAlchemy would complete this statement at each execution: {completed}")
    positional = compiled.positiontup is not None
    names = tuple(compiled.positiontup or compiled.binds)
    binds = tuple(
        compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    fixed = {
        name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required
    }
    columns = list(statement.exported_columns) if isinstance(statement, ReturnsRows) else []
    results = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
    )
    row = namedtuple("Row", [column.name for column in columns])  # type: ignore[misc]
    return _Compiled(compiled.string, names, positional, binds, fixed, results, row)


def _processed(row: Sequence[Any], processors: tuple[Processor, ...]) -> list[Any]:
    return [
        value if process is None or value is None else process(value)
        for value, process in zip(row, processors, strict=True)
    ]
