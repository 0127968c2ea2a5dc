"""Glue's SQLite writers take turns (app/sqlite_writers.py): a writer waits for the
turn, not in SQLite's busy handler; it gets the turn as soon as the holder's
transaction ends, however it ends; and the turn and the database lock together
keep a request within its bound."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from app.db import WRITER, Bounds, make_engine
from app.sqlite_writers import WriterTurnTimeout

BOUNDS = Bounds(busy=0.3)
HOLD = 0.135  # seconds a transaction keeps the turn
REQUEST = Flask(__name__)


@pytest.fixture
def url(tmp_path: Path) -> str:
    path = tmp_path / "w.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (n INTEGER)")
    return f"sqlite:///{path}"


@pytest.fixture
def holder(url: str) -> Iterator[Engine]:
    engine = make_engine(url, bounds=BOUNDS)
    yield engine
    engine.dispose()


@pytest.fixture
def waiter(url: str) -> Iterator[Engine]:
    """Another process's engine, as far as the turns go: its own open file."""
    engine = make_engine(url, bounds=BOUNDS)
    yield engine
    engine.dispose()


def write(engine: Engine) -> float:
    """Seconds a writer in a request took to begin and write; raises if it could not."""
    start = time.monotonic()
    with (
        REQUEST.test_request_context("/ifbyphone/verify_caller", method="POST"),
        engine.begin() as conn,
    ):
        conn.execute(text("INSERT INTO t VALUES (1)"))
    return time.monotonic() - start


def hold_turn(engine: Engine) -> Connection:
    conn = engine.connect().execution_options(**{WRITER: True})
    conn.begin()
    conn.execute(text("INSERT INTO t VALUES (0)"))
    return conn


def test_a_writer_waits_for_the_turn_not_in_sqlite(holder: Engine, waiter: Engine) -> None:
    conn = hold_turn(holder)
    try:
        with pytest.raises(OperationalError) as refused:
            write(waiter)
        assert isinstance(refused.value.orig, WriterTurnTimeout)
    finally:
        conn.close()


@pytest.mark.parametrize("ending", ["commit", "rollback", "close", "invalidate"])
def test_the_turn_passes_on_as_soon_as_the_transaction_ends(
    holder: Engine, waiter: Engine, ending: str
) -> None:
    conn = hold_turn(holder)
    ended = threading.Event()

    def end_soon() -> None:
        time.sleep(HOLD)
        getattr(conn, ending)()
        ended.set()

    threading.Thread(target=end_soon).start()
    waited = write(waiter)
    assert ended.is_set()
    # SQLite's busy handler would look at 128 ms, then sleep 50 ms; the turn is
    # looked at every millisecond.
    assert HOLD <= waited < HOLD + 0.025
    conn.close()


def test_the_turn_and_the_database_lock_together_stay_within_the_bound(
    url: str, holder: Engine, waiter: Engine
) -> None:
    """The holder waits on a program that takes the write lock without a turn;
    the waiter gets the turn late and must not wait SQLite's full bound after."""
    outsider = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    outsider.execute("BEGIN IMMEDIATE")
    results: list[float | Exception] = []

    def holder_writes() -> None:
        try:
            results.append(write(holder))
        except OperationalError as error:
            results.append(error)

    first = threading.Thread(target=holder_writes)
    first.start()
    time.sleep(0.05)  # the holder has the turn and waits in SQLite
    start = time.monotonic()
    with pytest.raises(OperationalError):
        write(waiter)
    waited = time.monotonic() - start
    first.join()
    outsider.rollback()
    outsider.close()
    assert isinstance(results[0], OperationalError)  # the outsider kept the lock
    assert waited <= BOUNDS.busy * 1.1 + 0.05
    assert write(waiter) < 0.05  # and all is free again
