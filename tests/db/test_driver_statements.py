"""Statements run on the driver keep what SQLAlchemy's execution guarantees:
the same conversions both ways, the same exceptions, listeners told."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import bindparam, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.driver import DriverStatement
from app.flows import turn_store
from app.models import Call, CallEvent

CALLS = turn_store.CALLS

NEW_CALL = DriverStatement(
    CALLS.insert()
    .values(
        platform=bindparam("platform"),
        platform_call_id=bindparam("call"),
        flow="verify_caller",  # a value of the statement's own, not given at each run
        status="active",
        state=bindparam("state", type_=CALLS.c.state.type),
        started_at=bindparam("at", type_=CALLS.c.started_at.type),
        updated_at=bindparam("at", type_=CALLS.c.updated_at.type),
    )
    .returning(CALLS.c.id, CALLS.c.state, CALLS.c.started_at, CALLS.c.ended_at)
)
AT = datetime(2026, 12, 7, 12, 30, 15, 123456)


def test_values_and_rows_are_converted_as_sqlalchemy_converts_them(
    app: Flask, session: Session
) -> None:
    state = {"turn": 2, "answers": {"account": "1001"}, "pending": None}
    connection = session.connection()
    (row,) = NEW_CALL.rows(
        connection, {"platform": "ifbyphone", "call": "c-1", "state": state, "at": AT}
    )
    assert row.state == state  # JSON read back as it was given
    assert row.started_at == AT and row.ended_at is None  # a date, not SQLite's text
    session.commit()
    call = session.get(Call, row.id)
    assert call is not None
    assert (call.flow, call.status, call.state, call.started_at) == (
        "verify_caller",
        "active",
        state,
        AT,
    )


def test_a_duplicate_raises_sqlalchemys_integrity_error(app: Flask, session: Session) -> None:
    """The runner tells a copy of a delivery by this exception."""
    values = {"platform": "ifbyphone", "call": "c-2", "state": {}, "at": AT}
    NEW_CALL.rows(session.connection(), values)
    with pytest.raises(IntegrityError):
        NEW_CALL.rows(session.connection(), values)
    session.rollback()


def test_cursor_listeners_hear_each_statement(app: Flask, session: Session) -> None:
    heard: list[str] = []
    engine = app.extensions["glue.engine"]

    def note(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        heard.append(statement.split()[0])

    event.listen(engine, "before_cursor_execute", note)
    try:
        turn_store.store_event(
            session.connection(),
            call_id=None,
            platform="ifbyphone",
            kind="malformed",
            dedupe_key="k-1",
            request_id="r-1",
            payload={"pin": "***"},
            outcome="malformed",
            reply="<action/>",
        )
    finally:
        event.remove(engine, "before_cursor_execute", note)
    session.commit()
    assert heard[-1] == "INSERT"
    stored = session.scalars(select(CallEvent).where(CallEvent.dedupe_key == "k-1")).one()
    assert (stored.payload, stored.notes, stored.reply) == ({"pin": "***"}, None, "<action/>")


def test_a_missing_value_is_an_error_not_a_null(app: Flask, session: Session) -> None:
    with pytest.raises(KeyError):
        NEW_CALL.rows(session.connection(), {"platform": "ifbyphone", "call": "c-3", "at": AT})
    session.rollback()


def test_a_statement_sqlalchemy_would_complete_at_each_run_is_refused(
    app: Flask, session: Session
) -> None:
    """Left out, `updated_at` would be SQLAlchemy's to fill in (its onupdate):
    run on the driver it would be NULL, so the statement is refused instead."""
    leaves_out = DriverStatement(
        update(CALLS).values(state=bindparam("state", type_=CALLS.c.state.type))
    )
    with pytest.raises(ValueError, match="updated_at"):
        leaves_out.rows(session.connection(), {"state": {}})
    session.rollback()


def test_a_statement_runs_only_in_a_transaction_that_has_begun(app: Flask) -> None:
    """Where SQLite's writers take their turn, and what the pool rolls back."""
    values = {"platform": "ifbyphone", "call": "c-4", "state": {}, "at": AT}
    engine = app.extensions["glue.engine"]
    with engine.connect() as connection, pytest.raises(RuntimeError, match="transaction"):
        NEW_CALL.rows(connection, values)
