"""Database engine, one session per request (created lazily), and migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app, g, has_request_context, request
from flask.cli import AppGroup
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str, pool_size: int = 5, pool_timeout: float = 2.0) -> Engine:
    """An engine tuned for each backend: SQLite waits for locks, PostgreSQL fails fast."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 15}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    options: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": pool_size,
        "pool_timeout": pool_timeout,
        "pool_pre_ping": True,
        # SQL errors in logs never show bound values (they can be request data).
        "hide_parameters": True,
    }
    if parsed.get_backend_name() == "postgresql":
        options["connect_args"] = {"connect_timeout": 3}
    return create_engine(url, **options)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets gunicorn workers read while one writes; foreign keys are off by default.
    # The driver's own transaction handling is turned off: see _sqlite_begin_immediate.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


# Execution option marking a transaction that will write (see begin_write).
WRITER = "glue_writer"


def _sqlite_begin(connection: Any) -> None:
    # SQLAlchemy's pysqlite recipe: we, not the driver, begin transactions, so
    # SAVEPOINTs and DDL behave. A writer takes the write lock at once: upgrading
    # a read transaction under WAL fails immediately ("database is locked")
    # instead of waiting for the other worker.
    writer = connection.get_execution_options().get(WRITER) or _in_unsafe_request()
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def _in_unsafe_request() -> bool:
    """A POST, PUT or DELETE is there to write: its transactions begin as writers,
    so a handler that reads before it writes never meets a failed lock upgrade."""
    return has_request_context() and request.method not in ("GET", "HEAD", "OPTIONS")


def begin_write(session: Session) -> None:
    """Begin the session's transaction as one that reads, then writes.

    On SQLite it waits for the write lock now; elsewhere it is a plain begin.
    Does nothing inside a transaction that has already begun.
    """
    if not session.in_transaction():
        session.connection(execution_options={WRITER: True})


def init_app(app: Flask) -> None:
    engine = make_engine(
        app.config["DATABASE_URL"], app.config["DB_POOL_SIZE"], app.config["DB_POOL_TIMEOUT"]
    )
    app.extensions["glue.engine"] = engine
    app.extensions["glue.sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)
    app.cli.add_command(db_cli)


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
    upgrade(get_engine(), revision)
    click.echo(f"database at {revision}")


@db_cli.command("downgrade")
@click.argument("revision")
def downgrade_command(revision: str) -> None:
    """Migrate the database back to REVISION."""
    command.downgrade(alembic_config(get_engine()), revision)
    click.echo(f"database at {revision}")
