"""A worker keeps its platform requests' connection between requests, on SQLite
and PostgreSQL: reused while fresh, never with anything left begun, and given
up when idle, invalid, of another engine, disposed, or held by another thread."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, Engine, event, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.db import Bounds, _writer_connection, begin_write, get_connection, make_engine
from app.db.kept_connection import NOT_TO_KEEP, KeptConnection
from app.db.sqlite_writers import TurnTakingConnection, WriterTurns
from app.models import Call
from tests.helpers.directory import add_user
from tests.helpers.ifbyphone import answers, message, send


def _open(engine: Engine) -> Connection:
    return engine.connect()


@pytest.fixture
def engine(database_url: str) -> Any:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def test_a_connection_given_back_serves_the_next_request(engine: Engine) -> None:
    kept = KeptConnection(_open, fresh_for=60)
    first = kept.take(engine)
    kept.give_back(first)
    assert kept.take(engine) is first
    assert engine.pool.checkedout() == 1  # never back in the pool meanwhile


def _driver_in_transaction(connection: Connection) -> bool:
    driver = connection.connection.dbapi_connection
    if isinstance(driver, sqlite3.Connection):
        return driver.in_transaction
    return driver.info.transaction_status != TransactionStatus.IDLE  # type: ignore[union-attr]


def test_what_a_request_left_begun_is_rolled_back_before_it_is_kept(engine: Engine) -> None:
    kept = KeptConnection(_writer_connection, fresh_for=60)
    connection = kept.take(engine)
    begin_write(connection)
    connection.execute(select(func.count()).select_from(Call))
    kept.give_back(connection)

    again = kept.take(engine)
    assert again is connection
    assert not again.in_transaction() and not _driver_in_transaction(again)
    driver = again.connection.dbapi_connection
    if isinstance(driver, TurnTakingConnection):
        assert not driver.turns.held  # the other workers' writers may go
    kept.give_back(again)


def test_what_the_driver_began_unknown_to_sqlalchemy_is_rolled_back_too(engine: Engine) -> None:
    """As after a COMMIT that failed: SQLAlchemy's transaction is over, the
    driver's (and SQLite's write lock) is not."""
    kept = KeptConnection(_writer_connection, fresh_for=60)
    connection = kept.take(engine)
    driver = connection.connection.dbapi_connection
    if isinstance(driver, sqlite3.Connection):
        driver.execute("BEGIN IMMEDIATE")
    else:
        driver.cursor().execute("SELECT 1")  # psycopg begins a transaction of its own
    assert _driver_in_transaction(connection) and not connection.in_transaction()
    kept.give_back(connection)
    assert kept.take(engine) is connection and not _driver_in_transaction(connection)
    kept.give_back(connection)


def test_a_connection_whose_begin_failed_half_way_is_not_kept(engine: Engine) -> None:
    kept = KeptConnection(_writer_connection, fresh_for=60)
    connection = kept.take(engine)
    connection.info[NOT_TO_KEEP] = True  # what the SQLite begin listener marks
    kept.give_back(connection)
    assert connection.closed and kept.take(engine) is not connection


def test_a_mark_a_session_left_on_the_pooled_connection_does_not_stop_keeping(
    engine: Engine,
) -> None:
    with Session(engine) as session:  # its begin failed half-way; it was closed
        session.connection().info[NOT_TO_KEEP] = True
    kept = KeptConnection(_open, fresh_for=60)
    connection = kept.take(engine)  # the same pooled connection, a new Connection
    kept.give_back(connection)
    assert kept.take(engine) is connection


def test_a_writer_that_found_no_turn_is_not_kept(tmp_path: Path) -> None:
    """The SQLite begin listener raised: SQLAlchemy's Connection is left half-begun."""
    engine = make_engine(f"sqlite:///{tmp_path}/turns.db", bounds=Bounds(busy=0.05))
    other = WriterTurns(f"{tmp_path}/turns.db-writers")
    try:
        kept = KeptConnection(_writer_connection, fresh_for=60)
        with Flask(__name__).test_request_context(method="POST"):
            connection = kept.take(engine)
            other.take(1)  # another worker's turn
            with pytest.raises(OperationalError):
                begin_write(connection)
            kept.give_back(connection)
            other.give_back()
            assert connection.closed
            again = kept.take(engine)
            assert again is not connection
            assert again.execute(text("SELECT 1")).scalar() == 1 and again.in_transaction()
            kept.give_back(again)
    finally:
        other.close()
        engine.dispose()


def test_a_connection_idle_past_its_freshness_goes_back_to_the_pool(engine: Engine) -> None:
    checkouts: list[object] = []
    event.listen(engine, "checkout", lambda *_: checkouts.append(1))
    kept = KeptConnection(_open, fresh_for=0)
    first = kept.take(engine)
    kept.give_back(first)
    second = kept.take(engine)
    assert second is not first and first.closed
    assert len(checkouts) == 2 and engine.pool.checkedout() == 1
    kept.give_back(second)


def test_a_connection_whose_server_went_away_while_kept_is_pinged_and_replaced(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool pings a connection idle for PING_AFTER_IDLE on checkout: one
    that was kept idle counts as idle since it was kept, not since the moment
    it went back to the pool."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a server to go away")
    monkeypatch.setattr("app.db.PING_AFTER_IDLE", 0.05)
    bounds = Bounds(connect=5, statement=5, lock=5, ping=5)  # only the idle spell is short
    engine = make_engine(database_url, pool_size=1, bounds=bounds)
    admin = make_engine(database_url)
    try:
        kept = KeptConnection(_open, fresh_for=0.05)
        connection = kept.take(engine)
        pid = _backend_pid(connection)
        kept.give_back(connection)
        with admin.connect() as session:
            # Waits (up to 5 s) for the server process to have ended.
            session.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
        time.sleep(0.1)
        fresh = kept.take(engine)
        assert _backend_pid(fresh) != pid
        assert fresh.execute(text("SELECT 1")).scalar() == 1
        kept.give_back(fresh)
    finally:
        engine.dispose()
        admin.dispose()


def _backend_pid(connection: Connection) -> int:
    return connection.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr,no-any-return]


def test_a_connection_closed_during_the_request_is_not_kept(engine: Engine) -> None:
    kept = KeptConnection(_open, fresh_for=60)
    first = kept.take(engine)
    first.close()
    kept.give_back(first)
    second = kept.take(engine)
    assert second is not first and not second.closed
    kept.give_back(second)


def test_an_invalidated_connection_is_not_kept(engine: Engine) -> None:
    kept = KeptConnection(_open, fresh_for=60)
    first = kept.take(engine)
    first.invalidate()
    kept.give_back(first)
    assert first.closed
    assert kept.take(engine) is not first


def test_another_engine_or_a_disposed_one_gets_a_connection_of_its_own(
    engine: Engine, database_url: str
) -> None:
    kept = KeptConnection(_open, fresh_for=60)
    event.listen(engine, "engine_disposed", kept.disposed)
    first = kept.take(engine)
    kept.give_back(first)
    other = make_engine(database_url)
    try:
        second = kept.take(other)
        assert second.engine is other and first.closed
        kept.give_back(second)
    finally:
        other.dispose()

    third = kept.take(engine)
    kept.give_back(third)
    dbapi = third.connection.dbapi_connection
    engine.dispose()
    assert third.closed
    # Closed outright, not put back in the pool the engine no longer has.
    with pytest.raises(Exception, match=r"(?i)closed"):
        dbapi.cursor().execute("SELECT 1")


def test_a_thread_other_than_the_main_one_keeps_nothing(engine: Engine) -> None:
    kept = KeptConnection(_open, fresh_for=60)
    taken: list[Connection] = []

    def request() -> None:
        connection = kept.take(engine)
        taken.append(connection)
        kept.give_back(connection)

    for _ in range(2):
        thread = threading.Thread(target=request)
        thread.start()
        thread.join()
    assert taken[0] is not taken[1] and all(c.closed for c in taken)
    assert engine.pool.checkedout() == 0


def test_consecutive_turns_run_on_one_connection_and_an_idle_one_is_checked_out_again(
    app: Flask, client: FlaskClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    checkouts: list[object] = []
    event.listen(app.extensions["glue.engine"], "checkout", lambda *_: checkouts.append(1))
    used: list[Connection] = []
    turn_connection = get_connection

    def noted() -> Connection:
        connection = turn_connection()
        used.append(connection)
        return connection

    monkeypatch.setattr("app.hooks.platform.get_connection", noted)
    monkeypatch.setattr("app.db._KEPT._fresh_for", 60)  # however slow the machine
    for n in range(3):
        assert message(send(client, answers(f"kept-{n}", "1001", "2468"))) == (
            "Thank you, Ada Lovelace."
        )
    assert len(set(map(id, used))) == 1 and len(checkouts) == 1

    monkeypatch.setattr("app.db._KEPT._fresh_for", 0)  # as if idle past PING_AFTER_IDLE
    send(client, answers("kept-idle", "1001", "2468"))
    assert used[-1] is not used[0] and used[0].closed
    assert session.scalar(select(func.count()).select_from(Call)) == 4
