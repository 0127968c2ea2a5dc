"""The rows one turn of a call reads and writes, as statements built once.

A turn runs on every step of every call. Measured (`make profile`), building
statements and the ORM's unit of work cost more than the database itself, so
the turn's own rows go through these Core statements: each is built once, only
its values change, and SQLAlchemy compiles it once per process.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Insert, Row, Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.models import Call, CallEvent, utcnow

CALLS = cast(Table, Call.__table__)
EVENTS = cast(Table, CallEvent.__table__)

STORE_EVENT = EVENTS.insert()
# The columns to change come from the values given (compiled once per set of columns).
UPDATE_CALL = update(CALLS).where(CALLS.c.id == bindparam("call_row"))
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


UPSERT_CALL = {"postgresql": _upsert_call(pg_insert), "sqlite": _upsert_call(sqlite_insert)}
# PostgreSQL takes a sequence value for every upsert, conflict or not: an existing
# call is looked up first, so only a call's first request uses up an id.
FIND_CALL = (
    select(CALLS)
    .where(
        CALLS.c.platform == bindparam("platform"),
        CALLS.c.platform_call_id == bindparam("platform_call_id"),
    )
    .with_for_update()
)


def lock_call(
    connection: Connection,
    platform: str,
    platform_call_id: str,
    caller_number: str | None,
    flow: str,
    now: datetime,
) -> Row[Any]:
    """The call's row, created on its first turn, locked until the turn commits
    (turns of one call run one at a time; SQLite's write lock does it there)."""
    key: dict[str, Any] = {"platform": platform, "platform_call_id": platform_call_id}
    dialect = connection.dialect.name
    if dialect == "postgresql":
        found = connection.execute(FIND_CALL, key).one_or_none()
        if found is not None:
            return found
    # A call's first request (or, on PostgreSQL, one racing another request of
    # the same new call: the upsert then waits for it and locks its row).
    first: dict[str, Any] = {"caller_number": caller_number, "flow": flow, "state": {}, "now": now}
    return connection.execute(UPSERT_CALL[dialect], key | first).one()


def update_call(connection: Connection, call_id: int, changes: Mapping[str, Any]) -> None:
    connection.execute(UPDATE_CALL, {"call_row": call_id, **changes})


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
) -> None:
    """Insert one event, received now; a delivery already stored raises IntegrityError."""
    connection.execute(
        STORE_EVENT,
        {
            "call_id": call_id,
            "platform": platform,
            "kind": kind,
            "dedupe_key": dedupe_key,
            "request_id": request_id,
            "payload": dict(payload),
            "outcome": outcome,
            "reply": reply,
            "received_at": utcnow(),
        },
    )


def last_reply(connection: Connection, call_id: int) -> str | None:
    reply: str | None = connection.execute(LAST_REPLY, {"call_row": call_id}).scalar()
    return reply


def stored_reply(connection: Connection, key: str) -> str | None:
    reply: str | None = connection.execute(STORED_REPLY, {"key": key}).scalar()
    return reply
