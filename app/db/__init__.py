"""Database engine, one session per request (created lazily), and migrations.

A platform's turn runs on a Core connection of its own (`get_connection`)
rather than a session: it writes through statements compiled once
(app/db/driver.py), and a session's unit of work around them would cost more
than the statements themselves on every step of every call.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import psycopg
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.util import CommandError
from flask import Flask, current_app, g, has_app_context, has_request_context, request
from flask.cli import AppGroup
from psycopg.abc import RV, PQGen
from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.orm import Session, sessionmaker

from app.db.kept_connection import IDLE_SINCE, NOT_TO_KEEP, KeptConnection
from app.db.sqlite_writers import TurnTakingConnection, WriterTurnTimeout
from app.metrics import instruments as metrics

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


@dataclass(frozen=True)
class Bounds:
    """How long a request waits on the database before it answers without it.

    A caller is on the line: the platform must hear the flow's fallback within
    a second, whether the database is down, unreachable or slow. Seconds; a
    connect, statement or lock bound of 0 is no bound.
    """

    connect: float = 0.5  # to open a connection
    statement: float = 0.5  # PostgreSQL statement_timeout
    lock: float = 0.4  # PostgreSQL lock_timeout
    busy: float = 0.6  # SQLite: waiting for another writer, in a request
    # To check that a pooled connection still answers: a live server does at
    # once, and a failed check costs only a new connection.
    ping: float = 0.15

    @property
    def answer(self) -> float | None:
        """How long to wait for any answer: the server cancels a slow statement
        itself; this catches a server (or network) that does not answer at all."""
        return self.statement + 0.1 if self.statement else None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Bounds:
        return cls(
            connect=float(config["DB_CONNECT_TIMEOUT"]),
            statement=float(config["DB_STATEMENT_TIMEOUT"]),
            lock=float(config["DB_LOCK_TIMEOUT"]),
            busy=float(config["DB_BUSY_TIMEOUT"]),
        )


def make_engine(
    url: str, pool_size: int = 5, pool_timeout: float = 2.0, bounds: Bounds | None = None
) -> Engine:
    """An engine tuned for each backend. With `bounds` (the app's engine), every
    wait on the database is short; without (migrations, tests' setup), as before."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        in_file = bool(parsed.database) and parsed.database != ":memory:"
        if in_file:
            Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)
        # A file gets a queue pool (bounded wait); memory a single connection (none).
        pool = {"pool_timeout": pool_timeout} if in_file else {}
        sqlite_args: dict[str, Any] = {"timeout": SQLITE_BUSY_MS / 1000}
        if in_file and not parsed.query.get("uri"):
            sqlite_args["factory"] = TurnTakingConnection  # writers take turns
        engine = create_engine(url, connect_args=sqlite_args, hide_parameters=True, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin(bounds.busy if bounds else None))
        return engine
    options: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": pool_size,
        "pool_timeout": pool_timeout,
        "pool_pre_ping": bounds is None,  # bounded engines ping on checkout themselves
        # SQL errors in logs never show bound values (they can be request data).
        "hide_parameters": True,
    }
    if parsed.get_backend_name() != "postgresql":
        return create_engine(url, **options)
    if bounds is None:
        return create_engine(url, connect_args={"connect_timeout": 3}, **options)
    # psycopg waits at least 2 s for a connection; _connect_within cuts that short.
    connect_args: dict[str, Any] = {"connect_timeout": 2}
    timeouts = {"statement_timeout": bounds.statement, "lock_timeout": bounds.lock}
    settings = [f"-c {name}={int(s * 1000)}" for name, s in timeouts.items() if s]
    if settings:
        # Keep the URL's own options (a search_path, say): connect_args replace them.
        given = parsed.query.get("options", "")
        given = " ".join(given) if isinstance(given, tuple) else given
        connect_args["options"] = " ".join([given, *settings]).strip()
    engine = create_engine(url, connect_args=connect_args, **options)
    event.listen(engine, "do_connect", _bounded_connect(bounds))
    event.listen(engine, "checkout", _ping_on_checkout(bounds))
    event.listen(engine, "checkin", _note_checkin)
    return engine


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection that waits at most `answer_timeout` for the server.

    statement_timeout is the server's to enforce; a server that has stopped
    answering (hung, or cut off by the network) never enforces it.
    """

    answer_timeout: float | None = None

    def wait(self, gen: PQGen[RV], interval: float = 0.1, timeout: float | None = None) -> RV:
        limit = self.answer_timeout if timeout is None else timeout
        try:
            return super().wait(gen, interval, limit)
        except psycopg.OperationalError as error:
            if error.sqlstate is not None:
                raise  # the server's own error (a statement or lock timeout, say)
            # No answer in time, or the link broke: the connection is of no
            # further use. Closed, SQLAlchemy sees a disconnect and drops it.
            silent = not self.broken
            self.close()
            if silent:
                raise psycopg.OperationalError(
                    f"no answer from the database in {limit} s"
                ) from error
            raise


def _bounded_connect(bounds: Bounds) -> Callable[..., BoundedConnection]:
    def connect(
        _dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]
    ) -> BoundedConnection:
        connection = _connect_within(
            bounds.connect, lambda: BoundedConnection.connect(*cargs, **cparams)
        )
        connection.answer_timeout = bounds.answer
        return connection

    return connect


def _connect_within(seconds: float, connect: Callable[[], BoundedConnection]) -> BoundedConnection:
    """`connect()`, or a ConnectionTimeout after `seconds`.

    psycopg (like libpq) never gives up on a connection in under 2 s, so the
    attempt runs in a thread of its own; one that succeeds too late is closed.
    """
    if not seconds:
        return connect()
    lock = threading.Lock()
    done = threading.Event()
    outcome: list[BoundedConnection | Exception] = []
    abandoned = False

    def attempt() -> None:
        try:
            result: BoundedConnection | Exception = connect()
        except Exception as error:
            result = error
        with lock:
            if abandoned:
                if isinstance(result, BoundedConnection):
                    result.close()
                return
            outcome.append(result)
        done.set()

    threading.Thread(target=attempt, name="glue-db-connect", daemon=True).start()
    done.wait(seconds)
    with lock:
        if not outcome:
            abandoned = True
            raise psycopg.errors.ConnectionTimeout(f"no database connection within {seconds} s")
    result = outcome[0]
    if isinstance(result, Exception):
        raise result
    return result


CHECKED_IN = "glue_checked_in"  # when a pooled connection was last given back
PING_AFTER_IDLE = 0.5  # seconds: given back this recently, a connection is taken as alive


def _ping_on_checkout(bounds: Bounds) -> Callable[..., None]:
    """SQLAlchemy's pre-ping, within its own short bound rather than the
    statement one: a silent server must not cost a request that bound and then
    a new connection's on top. A connection given back less than
    PING_AFTER_IDLE ago is taken as alive: under load no request pays a round
    trip for it, and a server lost since then costs one request its answer
    from the database (it gets the fallback) before the pool starts afresh."""

    def ping(connection: Any, record: Any, _proxy: Any) -> None:
        if not isinstance(connection, BoundedConnection):
            return
        if time.monotonic() - record.info.get(CHECKED_IN, 0.0) < PING_AFTER_IDLE:
            return
        connection.answer_timeout = bounds.ping
        try:
            connection.execute(";")
        except psycopg.Error as error:
            # Every pooled connection is likely as dead: the pool starts afresh.
            raise exc.InvalidatePoolError(str(error)) from error
        finally:
            connection.answer_timeout = bounds.answer

    return ping


def _note_checkin(_connection: Any, record: Any) -> None:
    # A request connection a worker kept idle was last used when it was kept.
    record.info[CHECKED_IN] = record.info.pop(IDLE_SINCE, None) or time.monotonic()


SQLITE_BUSY_MS = 15000  # jobs and commands wait this long for another writer


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    # WAL lets gunicorn workers read while one writes; foreign keys are off by default.
    # The driver's own transaction handling is turned off: see _sqlite_begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # Under WAL, NORMAL syncs at checkpoints rather than on every commit: a
    # crash of Glue loses nothing and the file cannot be corrupted; a power cut
    # may lose the last commits, and no turn waits for a disk flush of its own.
    # PostgreSQL is the production database.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cursor.close()
    record.info[BUSY_MS] = SQLITE_BUSY_MS


# Execution option marking a transaction that will write (see begin_write).
WRITER = "glue_writer"
BUSY_MS = "glue_busy_ms"  # the connection's busy_timeout, in its info


def _sqlite_begin(request_wait: float | None) -> Callable[[Any], None]:
    """SQLAlchemy's pysqlite recipe: we, not the driver, begin transactions, so
    SAVEPOINTs and DDL behave. A writer takes the write lock at once: upgrading
    a read transaction under WAL fails immediately ("database is locked")
    instead of waiting for the other worker. Before that it takes its turn among
    Glue's writers (app/db/sqlite_writers.py).

    How long it waits for another writer: `request_wait` in a request (a caller
    is on the line), as long as it takes elsewhere. The turn and SQLite's busy
    timeout together wait no longer than that, give or take a tenth: after a
    long wait for the turn the busy timeout is cut to what is left, and set back
    on the next begin. One pooled connection serves requests, jobs and commands
    alike; the busy timeout is sent only when it changes.
    """

    def begin(connection: Any) -> None:
        try:
            _begin(connection)
        except BaseException:
            # SQLAlchemy leaves this connection half-begun: a session closes it,
            # and a request's own connection is not kept for the next request.
            connection.info[NOT_TO_KEEP] = True
            raise

    def _begin(connection: Any) -> None:
        if request_wait is not None and has_request_context():
            wait = request_wait
        else:
            wait = SQLITE_BUSY_MS / 1000
        options = connection.get_execution_options()
        writer = options[WRITER] if WRITER in options else _in_unsafe_request()
        driver = connection.connection.dbapi_connection
        turns = driver if writer and isinstance(driver, TurnTakingConnection) else None
        busy = wait
        if turns is not None:
            try:
                waited = turns.take_turn(wait)
            except WriterTurnTimeout as error:
                raise exc.OperationalError("BEGIN IMMEDIATE", None, error) from error
            if waited > wait / 10:
                busy = wait - waited
        # On the driver itself: this runs before every turn, and SQLAlchemy's
        # execution costs more than the statement. SQLite's own errors (the
        # database locked past the busy timeout) are raised as SQLAlchemy's
        # class for them, and counted, as from any statement.
        try:
            busy_ms = max(1, int(busy * 1000))
            if connection.info.get(BUSY_MS) != busy_ms:
                driver.execute(f"PRAGMA busy_timeout={busy_ms}")
                connection.info[BUSY_MS] = busy_ms
            driver.execute("BEGIN IMMEDIATE" if writer else "BEGIN")
        except sqlite3.Error as error:
            if turns is not None:
                turns.give_back_turn()
            statement = "BEGIN IMMEDIATE" if writer else "BEGIN"
            wrapped = exc.DBAPIError.instance(statement, None, error, sqlite3.Error)
            metrics.database_error(_snake(type(wrapped).__name__))
            raise wrapped from error
        except BaseException:
            if turns is not None:
                turns.give_back_turn()
            raise

    return begin


def _in_unsafe_request() -> bool:
    """A POST, PUT or DELETE is there to write: its transactions begin as writers,
    so a handler that reads before it writes never meets a failed lock upgrade."""
    return has_request_context() and request.method not in ("GET", "HEAD", "OPTIONS")


def begin_write(bind: Session | Connection) -> None:
    """Begin the transaction of a session or connection as one that reads, then writes.

    On SQLite it waits for the write lock now; elsewhere it is a plain begin.
    Does nothing inside a transaction that has already begun.
    """
    if bind.in_transaction():
        return
    if isinstance(bind, Connection):
        # A turn's connection is a writer's for all its transactions (get_connection).
        bind.begin()
    else:
        # A POST's transactions begin as writers already (_in_unsafe_request).
        bind.connection(execution_options=None if _in_unsafe_request() else {WRITER: True})


def init_app(app: Flask) -> None:
    engine = make_engine(
        app.config["DATABASE_URL"],
        app.config["DB_POOL_SIZE"],
        app.config["DB_POOL_TIMEOUT"],
        Bounds.from_config(app.config),
    )
    event.listen(engine, "handle_error", _count_error)
    event.listen(engine, "engine_disposed", _KEPT.disposed)
    app.extensions["glue.engine"] = engine
    app.extensions["glue.sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)
    app.teardown_appcontext(_close_connection)
    app.cli.add_command(db_cli)


def _count_error(context: ExceptionContext) -> None:
    """Count an error of the app's database, by kind (operational_error, ...); not a
    unique key's refusal, which is how a copy of a delivery is recognised."""
    error = context.sqlalchemy_exception or context.original_exception
    if not isinstance(error, exc.IntegrityError):
        metrics.database_error(_snake(type(error).__name__))


def _snake(name: str) -> str:
    """OperationalError -> operational_error: a label value, not a class name."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def get_engine() -> Engine:
    engine: Engine = current_app.extensions["glue.engine"]
    return engine


def get_session() -> Session:
    """The session of the current app context, opened on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["glue.sessionmaker"]()
    session: Session = g.db_session
    return session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def get_connection() -> Connection:
    """The Core connection of the current app context, opened on first use: a
    writer's (on SQLite each of its transactions takes the write lock at once),
    for code that writes through the driver and needs no session's unit of work."""
    if "db_connection" not in g:
        g.db_connection = _KEPT.take(get_engine())
    connection: Connection = g.db_connection
    return connection


def _writer_connection(engine: Engine) -> Connection:
    return engine.connect().execution_options(**{WRITER: True})


# A worker's request connection, kept between its requests while it is in use
# more often than the pool would ping it.
_KEPT = KeptConnection(_writer_connection, fresh_for=PING_AFTER_IDLE)


def request_transaction_open() -> bool:
    """Whether the app context's connection has a transaction open: a turn
    under way, which on SQLite holds the writers' turn and the write lock."""
    connection = g.get("db_connection") if has_app_context() else None
    return connection is not None and connection.in_transaction()


def begin_read(session: Session) -> None:
    """Begin the session's transaction as a reader's, even in a POST: a read made
    while the request's turn holds SQLite's write lock on another connection (a
    flow version read in the middle of a turn) must not wait for that lock."""
    if not session.in_transaction():
        session.connection(execution_options={WRITER: False})


def rollback_connection() -> None:
    """End what the app context's connection began, if it was opened (a failed
    request gives SQLite's writers' turn back now, not when the request ends)."""
    connection = g.get("db_connection")
    if connection is not None:
        connection.rollback()


def session_on(connection: Connection) -> Session:
    """A session of the app's on `connection`, in charge of its transaction: the
    session's commit commits it, with what the app's session listeners write
    (the webhook events of a changed action); its close rolls back what is left.
    For the rare turn that changes an ORM object."""
    sessions: sessionmaker[Session] = current_app.extensions["glue.sessionmaker"]
    return sessions(bind=connection, join_transaction_mode="control_fully")


def _close_connection(_exc: BaseException | None) -> None:
    # What a failed request left begun is rolled back (on SQLite, with the
    # writers' turn), and the connection kept for the next request if it may be.
    connection = g.pop("db_connection", None)
    if connection is not None:
        _KEPT.give_back(connection)


def alembic_config(engine: Engine) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


@click.group("db", cls=AppGroup)
def db_cli() -> None:
    """Database migrations."""


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def upgrade_command(revision: str) -> None:
    """Migrate the database to REVISION (default: the newest)."""
    if not revision.strip():
        raise click.BadParameter("name a revision, or leave it out for the newest")
    engine = _migration_engine()
    try:
        upgrade(engine, revision)
    except CommandError as error:  # an unknown revision: a message, not a traceback
        raise click.ClickException(str(error)) from None
    finally:
        engine.dispose()
    click.echo(f"database at {revision}")


@db_cli.command("downgrade")
@click.argument("revision")
def downgrade_command(revision: str) -> None:
    """Migrate the database back to REVISION."""
    if not revision.strip():
        raise click.BadParameter("name the revision to go back to")
    engine = _migration_engine()
    try:
        command.downgrade(alembic_config(engine), revision)
    except CommandError as error:
        raise click.ClickException(str(error)) from None
    finally:
        engine.dispose()
    click.echo(f"database at {revision}")


def _migration_engine() -> Engine:
    """An engine without the app's bounds: a migration may rightly take minutes
    and wait for the locks of running requests."""
    return make_engine(current_app.config["DATABASE_URL"])
