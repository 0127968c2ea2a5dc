"""The rows one turn of a call reads and writes, as statements built once.

A turn runs on every step of every call, where building statements, the ORM's
unit of work and SQLAlchemy's execution cost more than the database itself
(`make profile`), so the turn's own rows go through these statements: each is
built once, compiled once per process, and run on the driver
(app/db/driver.py); only its values change.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    CompoundSelect,
    Connection,
    Insert,
    Table,
    bindparam,
    exists,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.db.driver import DriverStatement
from app.models import Call, CallEvent, utcnow

CALLS = cast(Table, Call.__table__)
EVENTS = cast(Table, CallEvent.__table__)

# Every column but the id, named after it.
STORE_EVENT = DriverStatement(
    EVENTS.insert()
    .values({c.name: bindparam(c.name, type_=c.type) for c in EVENTS.c if c.name != "id"})
    .inline()  # its id is not read back
)
LAST_REPLY = (
    select(EVENTS.c.reply)
    .where(EVENTS.c.call_id == bindparam("call_row"), EVENTS.c.reply.is_not(None))
    .order_by(EVENTS.c.id.desc())
    .limit(1)
)
STORED_REPLY = select(EVENTS.c.reply).where(EVENTS.c.dedupe_key == bindparam("key"))


def _upsert_call(insert: Any) -> Insert:
    statement = insert(CALLS).values(
        platform=bindparam("platform"),
        platform_call_id=bindparam("platform_call_id"),
        caller_number=bindparam("caller_number"),
        flow=bindparam("flow"),
        flow_version=bindparam("flow_version", type_=CALLS.c.flow_version.type),
        status="active",
        state=bindparam("state", type_=CALLS.c.state.type),
        started_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    # An existing call is "updated" to itself: one statement returns the row,
    # new or not, and locks it for the rest of the turn.
    upsert: Insert = statement.on_conflict_do_update(
        index_elements=[CALLS.c.platform, CALLS.c.platform_call_id],
        set_={"platform": statement.excluded.platform},
    ).returning(*CALLS.c)
    return upsert


UPSERT_CALL = DriverStatement(_upsert_call(sqlite_insert))


def _find_or_upsert_call() -> CompoundSelect[Any]:
    """PostgreSQL takes a sequence value for every upsert, conflict or not: the
    call is looked for first, in the same statement, and only when it is not
    there is it upserted (one request racing another of the same new call then
    waits for it and locks its row). One round trip, and only a call's first
    request uses up an id."""
    found = (
        select(CALLS)
        .where(
            CALLS.c.platform == bindparam("platform"),
            CALLS.c.platform_call_id == bindparam("platform_call_id"),
        )
        .with_for_update()
        .cte("found")
    )
    new = {
        "platform": bindparam("platform", type_=CALLS.c.platform.type),
        "platform_call_id": bindparam("platform_call_id", type_=CALLS.c.platform_call_id.type),
        "caller_number": bindparam("caller_number", type_=CALLS.c.caller_number.type),
        "flow": bindparam("flow", type_=CALLS.c.flow.type),
        "flow_version": bindparam("flow_version", type_=CALLS.c.flow_version.type),
        "status": literal("active", CALLS.c.status.type),
        "state": bindparam("state", type_=CALLS.c.state.type),
        "started_at": bindparam("now", type_=CALLS.c.started_at.type),
        "updated_at": bindparam("now", type_=CALLS.c.updated_at.type),
    }
    insert = pg_insert(CALLS).from_select(
        list(new), select(*new.values()).where(~exists(select(found.c.id)))
    )
    made = (
        insert.on_conflict_do_update(
            index_elements=[CALLS.c.platform, CALLS.c.platform_call_id],
            set_={"platform": insert.excluded.platform},
        )
        .returning(*CALLS.c)
        .cte("made")
    )
    return select(found).union_all(select(made))


FIND_OR_UPSERT_CALL = DriverStatement(_find_or_upsert_call())


def lock_call(
    connection: Connection,
    platform: str,
    platform_call_id: str,
    caller_number: str | None,
    flow: str,
    now: datetime,
    flow_version: int | None = None,
) -> Any:
    """The call's row, created on its first turn, locked until the turn commits
    (turns of one call run one at a time; SQLite's write lock does it there).
    A new call records `flow_version`, the version it starts on; an existing
    one keeps its own."""
    values: dict[str, Any] = {
        "platform": platform,
        "platform_call_id": platform_call_id,
        "caller_number": caller_number,
        "flow": flow,
        "flow_version": flow_version,
        "state": {},
        "now": now,
    }
    statement = FIND_OR_UPSERT_CALL if connection.dialect.name == "postgresql" else UPSERT_CALL
    (row,) = statement.rows(connection, values)
    return row


def store_event(
    connection: Connection,
    *,
    call_id: int | None,
    platform: str,
    kind: str,
    dedupe_key: str,
    request_id: str,
    payload: Mapping[str, str],
    outcome: str,
    reply: str | None,
    call_changes: Mapping[str, Any] | None = None,
    notes: Mapping[str, Any] | None = None,
    duration_ms: int | None = None,
) -> None:
    """Insert one event, received now, and first make `call_changes` to its call;
    a delivery already stored raises IntegrityError and changes nothing.

    On PostgreSQL both go in one statement (the update in a WITH): a round trip
    fewer on every turn and status report."""
    event = {
        "call_id": call_id,
        "platform": platform,
        "kind": kind,
        "dedupe_key": dedupe_key,
        "request_id": request_id,
        "payload": dict(payload),
        "outcome": outcome,
        "reply": reply,
        "received_at": utcnow(),
        "notes": dict(notes) if notes else None,
        "duration_ms": duration_ms,
    }
    if not call_changes:
        STORE_EVENT.rows(connection, event)
    elif connection.dialect.name == "postgresql":
        statement = _update_call_and_store_event(tuple(sorted(call_changes)))
        values = {f"event_{name}": value for name, value in event.items()}
        changes = {f"call_{name}": value for name, value in call_changes.items()}
        statement.rows(connection, {"call_row": call_id} | values | changes)
    else:
        _update_call(tuple(sorted(call_changes))).rows(
            connection, {"call_row": call_id, **call_changes}
        )
        STORE_EVENT.rows(connection, event)


@cache
def _update_call(columns: tuple[str, ...]) -> DriverStatement:
    """One per set of call columns changed: a handful in all."""
    changed = {name: bindparam(name, type_=CALLS.c[name].type) for name in columns}
    return DriverStatement(update(CALLS).where(CALLS.c.id == bindparam("call_row")).values(changed))


@cache
def _update_call_and_store_event(columns: tuple[str, ...]) -> DriverStatement:
    """One per set of call columns changed: a handful in all."""
    changed = {name: bindparam(f"call_{name}", type_=CALLS.c[name].type) for name in columns}
    call_update = (
        update(CALLS).where(CALLS.c.id == bindparam("call_row")).values(changed).cte("call_update")
    )
    stored = {
        column.name: bindparam(f"event_{column.name}", type_=column.type)
        for column in EVENTS.c
        if column.name != "id"
    }
    # PostgreSQL runs a data-modifying WITH to completion, read or not.
    return DriverStatement(EVENTS.insert().values(stored).add_cte(call_update).inline())


def last_reply(connection: Connection, call_id: int) -> str | None:
    reply: str | None = connection.execute(LAST_REPLY, {"call_row": call_id}).scalar()
    return reply


def stored_reply(connection: Connection, key: str) -> str | None:
    reply: str | None = connection.execute(STORED_REPLY, {"key": key}).scalar()
    return reply
