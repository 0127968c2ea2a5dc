"""`flask db upgrade` / `downgrade` on an empty database, SQLite and PostgreSQL;
and the engine's SQL errors never carry bound parameters."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskCliRunner
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

from app.db import make_engine
from app.models import Base
from tests.helpers.database import POSTGRES_URL
from tests.helpers.services import require

MODEL_TABLES = set(Base.metadata.tables)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (overrides conftest's migrated one), so `app` and
    `runner` start from nothing."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/fresh.db"
        return
    schema = f"glue_cli_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        admin.dispose()
        require("postgres", False, f"unreachable at {POSTGRES_URL}: {exc}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def flask_db(runner: FlaskCliRunner, *args: str) -> str:
    result = runner.invoke(args=["db", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_upgrade_downgrade_upgrade(runner: FlaskCliRunner, database_url: str) -> None:
    assert tables(database_url) & MODEL_TABLES == set()

    assert "database at head" in flask_db(runner, "upgrade")
    assert tables(database_url) >= MODEL_TABLES
    assert "alembic_version" in tables(database_url)

    assert "database at base" in flask_db(runner, "downgrade", "base")
    assert tables(database_url) & MODEL_TABLES == set()

    flask_db(runner, "upgrade")
    assert tables(database_url) >= MODEL_TABLES


def test_downgrade_needs_a_revision(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["db", "downgrade"])
    assert result.exit_code != 0
    assert "REVISION" in result.output


def test_sql_errors_do_not_show_bound_parameters(database_url: str) -> None:
    # Bound values can be request data (answers, PINs before hashing): an error
    # that reaches the log shows the SQL but never the values.
    engine = make_engine(database_url)
    try:
        with pytest.raises(DBAPIError) as caught, engine.connect() as conn:
            conn.execute(text("SELECT * FROM no_such_table WHERE x = :v"), {"v": "p4ram-97531"})
    finally:
        engine.dispose()
    message = str(caught.value)
    assert "no_such_table" in message
    assert "p4ram-97531" not in message
    assert "hidden" in message
