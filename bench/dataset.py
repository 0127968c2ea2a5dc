"""Bench databases: made fresh, migrated, and filled by bulk insert.

Users are written straight into the tables (PostgreSQL COPY, SQLite
executemany in one transaction), not through the directory service: a million
users load in seconds rather than hours. The PIN hashes are the app's own
(PinHasher.hash): one per distinct PIN, shared by the users with that PIN.
A stored hash carries its salt, so verification cannot tell; a 4-digit PIN has
10,000 values, so 10,000 hashes serve any number of users.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, Table, create_engine, func, select, text
from sqlalchemy.engine import make_url

from bench.common import POSTGRES_ADMIN_URL, PROJECT_ROOT, SECRETS, account_of, phone_of, pin_of

BATCH = 50_000


@dataclass
class Database:
    kind: str  # sqlite | postgres
    url: str
    users: int
    label: str  # e.g. "sqlite 1k"


def sqlite_database(directory: Path, users: int, label: str) -> Database:
    path = directory / f"glue-{users}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return Database("sqlite", f"sqlite:///{path}", users, label)


def postgres_database(name: str, users: int, label: str) -> Database:
    """Drop and create database `name` (the bench's own) on the admin URL's server."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    url = make_url(POSTGRES_ADMIN_URL).set(database=name)
    return Database("postgres", url.render_as_string(hide_password=False), users, label)


def drop_postgres(name: str) -> None:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def postgres_reachable() -> str | None:
    """None if the PostgreSQL server answers, else why not."""
    try:
        engine = create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure means: skip PostgreSQL
        return str(exc).splitlines()[0]


def engine_for(db: Database) -> Engine:
    from app.db import make_engine  # the app's engine: SQLite pragmas (WAL) included

    return make_engine(db.url)


def prepare(db: Database, log: Callable[[str], None]) -> float:
    """Migrate, then load `db.users` users with one phone each; seconds spent loading."""
    migrate(db)
    return load(db, log)


def migrate(db: Database) -> None:
    """app.db.upgrade, then the flow files published, as `make migrate` does: Glue
    serves published versions only. Alembic's context is global: one database at a time."""
    from sqlalchemy.orm import Session

    from app.db import upgrade
    from app.flows import versions

    engine = engine_for(db)
    try:
        upgrade(engine)
        with Session(engine) as session:
            for path in sorted((PROJECT_ROOT / "survo_forms").glob("*.yaml")):
                versions.publish(session, path.stem, path.read_text(), by="bench", file=str(path))
            session.commit()
    finally:
        engine.dispose()


def load(db: Database, log: Callable[[str], None]) -> float:
    """Load `db.users` users with one phone each (by bulk insert); seconds spent."""
    engine = engine_for(db)
    try:
        started = time.perf_counter()
        load_users(engine, db.users)
        seconds = time.perf_counter() - started
        log(f"  {db.label}: {db.users:,} users loaded in {seconds:.1f} s")
        return seconds
    finally:
        engine.dispose()


def pin_hashes() -> dict[str, str]:
    """The stored hash of every 4-digit PIN, made by the app's PinHasher."""
    from app.directory.pins import PinHasher

    hasher = PinHasher(SECRETS["PIN_SECRET"])
    return {f"{pin:04d}": hasher.hash(f"{pin:04d}") for pin in range(10_000)}


def load_users(engine: Engine, count: int) -> None:
    hashes = pin_hashes()
    now = datetime.now(UTC).replace(tzinfo=None)
    users = _table(engine, "users")
    phones = _table(engine, "phone_numbers")

    def user_rows() -> Iterator[dict[str, Any]]:
        for i in range(count):
            yield {
                "id": i + 1,
                "account_number": account_of(i),
                "name": f"Bench User {i}",
                "pin_hash": hashes[pin_of(i)],
                "active": True,
                "created_at": now,
                "failed_attempts": 0,
                "lockouts": 0,
                "is_admin": False,
            }

    def phone_rows() -> Iterator[dict[str, Any]]:
        for i in range(count):
            yield {"id": i + 1, "e164": phone_of(i), "user_id": i + 1}

    bulk_insert(engine, users, user_rows())
    bulk_insert(engine, phones, phone_rows())
    analyze(engine, ["users", "phone_numbers"])


def prepare_calls(
    engine: Engine, prefix: str, count: int, state: dict[str, Any], caller: str
) -> None:
    """`count` didML calls named PREFIX-0.. waiting at the same point as a real one
    (its `state`), so each request of a run answers the account question of its own call."""
    calls = _table(engine, "calls")
    now = datetime.now(UTC).replace(tzinfo=None)
    state_json = json.dumps(state)

    def rows() -> Iterator[dict[str, Any]]:
        # No ids: the server may still be writing calls of its own.
        for k in range(count):
            yield {
                "platform": "didml",
                "platform_call_id": f"{prefix}-{k}",
                "caller_number": caller,
                "flow": "verify_caller",
                "status": "active",
                "state": state_json,
                "started_at": now,
                "updated_at": now,
            }

    bulk_insert(engine, calls, rows())
    analyze(engine, ["calls"])


def call_state(engine: Engine, platform: str, call_id: str) -> dict[str, Any]:
    calls = _table(engine, "calls")
    with engine.connect() as conn:
        raw = conn.scalar(
            select(calls.c.state).where(
                calls.c.platform == platform, calls.c.platform_call_id == call_id
            )
        )
    if raw is None:
        raise RuntimeError(f"no {platform} call {call_id} was stored")
    return raw if isinstance(raw, dict) else json.loads(raw)


def max_event_id(engine: Engine) -> int:
    events = _table(engine, "call_events")
    with engine.connect() as conn:
        return int(conn.scalar(select(func.coalesce(func.max(events.c.id), 0))) or 0)


def events_since(engine: Engine, after_id: int) -> dict[tuple[str, str | None], int]:
    """How many call_events rows each (kind, outcome) gained after row `after_id`."""
    events = _table(engine, "call_events")
    with engine.connect() as conn:
        rows = conn.execute(
            select(events.c.kind, events.c.outcome, func.count())
            .where(events.c.id > after_id)
            .group_by(events.c.kind, events.c.outcome)
        ).all()
    return {(kind, outcome): n for kind, outcome, n in rows}


def calls_with_events_since(engine: Engine, after_id: int) -> int:
    """How many distinct calls the call_events rows after row `after_id` belong to."""
    events = _table(engine, "call_events")
    with engine.connect() as conn:
        count = conn.scalar(
            select(func.count(events.c.call_id.distinct())).where(events.c.id > after_id)
        )
    return int(count or 0)


def attempts_by_outcome(engine: Engine) -> dict[str, int]:
    attempts = _table(engine, "verification_attempts")
    with engine.connect() as conn:
        rows = conn.execute(
            select(attempts.c.outcome, func.count()).group_by(attempts.c.outcome)
        ).all()
    return {outcome: n for outcome, n in rows}


# --- bulk insert --------------------------------------------------------------------


def _table(engine: Engine, name: str) -> Table:
    return Table(name, MetaData(), autoload_with=engine)


def _columns(table: Table, given: Iterable[str]) -> list[str]:
    """The columns to write: those given, after checking that every other NOT
    NULL column has a server default (a new column would otherwise fail here,
    loudly, instead of somewhere in the middle of a load)."""
    names = list(given)
    for column in table.columns:
        if column.name in names or column.nullable or column.server_default is not None:
            continue
        if column.primary_key:
            continue  # the database numbers the rows
        raise RuntimeError(f"bench loader does not fill {table.name}.{column.name}")
    return [name for name in names if name in table.columns]


def bulk_insert(engine: Engine, table: Table, rows: Iterator[dict[str, Any]]) -> None:
    first = next(rows, None)
    if first is None:
        return
    columns = _columns(table, first)

    def all_rows() -> Iterator[dict[str, Any]]:
        yield first
        yield from rows

    if engine.dialect.name == "postgresql":
        _copy_postgres(engine, table.name, columns, all_rows())
    else:
        _executemany(engine, table.name, columns, all_rows())


def _copy_postgres(
    engine: Engine, table: str, columns: list[str], rows: Iterable[dict[str, Any]]
) -> None:
    def field(value: Any) -> str:
        if value is None:
            return "\\N"
        if value is True:
            return "t"
        if value is False:
            return "f"
        text_value = value.isoformat(sep=" ") if isinstance(value, datetime) else str(value)
        return text_value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")

    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        names = ", ".join(f'"{c}"' for c in columns)
        with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:  # type: ignore[attr-defined]
            buffer = io.StringIO()
            for n, row in enumerate(rows, start=1):
                buffer.write("\t".join(field(row[c]) for c in columns))
                buffer.write("\n")
                if n % BATCH == 0:
                    copy.write(buffer.getvalue())
                    buffer = io.StringIO()
            copy.write(buffer.getvalue())
        if "id" in columns:
            # Explicit ids were written (into a table nothing else writes): move
            # the id sequence past them.
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f'(SELECT coalesce(max(id), 1) FROM "{table}"))'
            )
        raw.commit()
    finally:
        raw.close()


def _executemany(
    engine: Engine, table: str, columns: list[str], rows: Iterable[dict[str, Any]]
) -> None:
    def value(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite DATETIME format
        if isinstance(v, bool):
            return int(v)
        return v

    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    sql = f'INSERT INTO "{table}" ({names}) VALUES ({marks})'
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        batch: list[tuple[Any, ...]] = []
        for row in rows:
            batch.append(tuple(value(row[c]) for c in columns))
            if len(batch) >= BATCH:
                cursor.executemany(sql, batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)
        cursor.execute("COMMIT")
    finally:
        raw.close()


def analyze(engine: Engine, tables: list[str]) -> None:
    if engine.dialect.name == "postgresql":
        # VACUUM also sets the visibility map and hint bits, so the first
        # measured reads do not pay for writing them.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in tables:
                conn.execute(text(f'VACUUM ANALYZE "{table}"'))
    else:
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
