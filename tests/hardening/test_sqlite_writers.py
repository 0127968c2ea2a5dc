"""Glue's SQLite writers take turns (app/db/sqlite_writers.py): a writer waits for the
turn, not in SQLite's busy handler; the turn is free once the holder's
transaction ends, however it ends; the turn and the database lock together keep
a request within its bound; and the log is checkpointed outside the turns.
How much sooner a writer gets to write is measured by `make bench`."""

from __future__ import annotations

import itertools
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from app.db import WRITER, Bounds, make_engine, sqlite_writers
from app.db.sqlite_writers import WriterTurns, WriterTurnTimeout

BOUNDS = Bounds(busy=0.5)
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
def test_the_turn_is_given_back_when_the_transaction_ends(
    url: str, holder: Engine, ending: str
) -> None:
    conn = hold_turn(holder)
    probe = WriterTurns(url.removeprefix("sqlite:///") + "-writers")
    try:
        with pytest.raises(WriterTurnTimeout):
            probe.take(0)
        getattr(conn, ending)()
        probe.take(0)  # free at once
    finally:
        probe.close()
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
    assert waited < BOUNDS.busy * 1.5  # not the turn's wait and SQLite's full bound after
    write(waiter)  # and all is free again


@pytest.fixture
def checkpoints(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[bool, bool]]]:
    """Every checkpoint Glue runs, one per five commits that wrote: whether the
    writers' turn was free at that moment, and whether a thread of its own ran
    it (no request waits for it)."""
    monkeypatch.setattr(sqlite_writers, "CHECKPOINT_EVERY", 5)
    monkeypatch.setattr(sqlite_writers, "_commits_that_wrote", itertools.count(1))
    probe = WriterTurns(url.removeprefix("sqlite:///") + "-writers")
    seen: list[tuple[bool, bool]] = []
    checkpoint = sqlite_writers.checkpoint

    def probed(connection: sqlite3.Connection) -> None:
        apart = threading.current_thread().name == "glue-sqlite-checkpoints"
        try:
            probe.take(0)
        except WriterTurnTimeout:
            seen.append((False, apart))
        else:
            probe.give_back()
            seen.append((True, apart))
        checkpoint(connection)

    monkeypatch.setattr(sqlite_writers, "checkpoint", probed)
    yield seen
    probe.close()


def test_glue_checkpoints_the_log_itself_outside_the_turns(
    url: str, holder: Engine, checkpoints: list[tuple[bool, bool]]
) -> None:
    """SQLite would checkpoint inside a COMMIT, turn held; Glue does it after,
    on a thread of its own."""
    wal = Path(url.removeprefix("sqlite:///") + "-wal")
    with holder.connect() as conn:
        assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
    background = sqlite_writers.background_checkpoints(
        os.path.realpath(url.removeprefix("sqlite:///"))
    )
    sizes = []
    for _ in range(40):
        write(holder)
        assert background.wait(5)  # a test reads the log's size after each copy
        sizes.append(wal.stat().st_size)
    assert checkpoints == [(True, True)] * 8
    # Checkpointed, the log starts again from its beginning: it stops growing.
    assert sizes[-1] <= sizes[9] < sizes[-1] * 2


def test_writes_without_a_turn_count_too_and_a_closing_connection_checkpoints(
    holder: Engine, checkpoints: list[tuple[bool, bool]]
) -> None:
    """An API token's last use, an import, a migration: they write outside
    requests' writer turns, and a command's engine closes while a server's
    connections keep the database open."""
    for _ in range(7):
        with holder.begin() as conn:  # a plain BEGIN: no turn
            conn.execute(text("INSERT INTO t VALUES (2)"))
    path = holder.url.database
    assert path is not None
    assert sqlite_writers.background_checkpoints(os.path.realpath(path)).wait(5)
    with holder.begin() as conn:
        conn.execute(text("SELECT count(*) FROM t")).scalar()  # read only: not counted
    assert len(checkpoints) == 1
    holder.dispose()
    assert len(checkpoints) == 2
    assert checkpoints[-1] == (True, False)  # the closing connection's own


def test_a_checkpoint_thread_that_could_not_open_the_database_tries_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of file handles for a moment, say: the next ask opens it again, and
    the thread lives on."""
    path = str(tmp_path / "glue.db")
    sqlite3.connect(path).execute("PRAGMA journal_mode=WAL").fetchall()
    opened: list[str] = []
    copied: list[sqlite3.Connection] = []
    real_connect = sqlite3.connect

    def connect(database: str, **kwargs: object) -> sqlite3.Connection:
        opened.append(database)
        if len(opened) == 1:
            raise sqlite3.OperationalError("unable to open database file")
        return real_connect(database, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite_writers.sqlite3, "connect", connect)
    monkeypatch.setattr(sqlite_writers, "checkpoint", copied.append)
    background = sqlite_writers.BackgroundCheckpoints(path)
    background.ask()
    assert background.wait(5)
    assert (len(opened), copied) == (1, [])
    background.ask()
    assert background.wait(5)
    assert len(opened) == 2 and len(copied) == 1
