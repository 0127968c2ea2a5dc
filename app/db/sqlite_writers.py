"""Glue's SQLite writers take turns through a lock file, not SQLite's busy handler.

SQLite lets one transaction write at a time. A writer that finds the write lock
taken is put to sleep by SQLite's busy handler for 1, 2, 5, 10, ... up to 100 ms
between tries, however soon the lock is free. Two gunicorn workers writing turns
of about a millisecond each would keep running into each other that way, and
sleep up to 100 ms for a turn of one. Glue's writers first take an exclusive
flock on `<database>-writers` and then begin: the one waiting gets its turn
within a millisecond of the other's commit. SQLite's own locking is unchanged
and still decides; other programs writing the file are waited for by it.

SQLite copies the write-ahead log into the database (a checkpoint) inside the
COMMIT that fills it, after the write lock is let go: other writers need not
wait for it, so it must not happen inside a turn either, nor before the
worker's next request (one request in CHECKPOINT_EVERY would wait for it: the
slowest percent). Glue's connections turn automatic checkpoints off; every
CHECKPOINT_EVERY commits that wrote (in this process, by any connection) a
thread of the process runs one on a connection of its own, and a connection
that closes runs one itself.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import sqlite3
import threading
import time
import weakref
from typing import Any

log = logging.getLogger(__name__)

# How soon a waiting writer looks again: a turn lasts about a millisecond.
FIRST_PAUSE = 0.0001
LONGEST_PAUSE = 0.001
# A verification turn writes about 10 pages: a checkpoint every 1,000 pages or
# so, SQLite's own default, counted per process rather than per database.
CHECKPOINT_EVERY = 100
_commits_that_wrote = itertools.count(1)


class WriterTurnTimeout(Exception):
    """Another writer kept its turn for longer than this one could wait."""


class WriterTurns:
    """An exclusive flock on a file next to the database, taken for one transaction.

    flock, as it is released when its holder dies; polled, as it has no timeout
    of its own. The file stays open for the connection's life: a turn costs a
    lock and an unlock, not also the open and close the `filelock` package makes
    each time.
    """

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        # A connection dropped without close() (SQLAlchemy's dispose() leaves
        # checked-out ones to the collector) still closes its file.
        self._closed = weakref.finalize(self, os.close, self._fd)
        self.held = False

    def take(self, wait: float) -> float:
        """Wait up to `wait` seconds for the turn; the seconds waited."""
        start = time.monotonic()
        pause = FIRST_PAUSE
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                waited = time.monotonic() - start
                if waited >= wait:
                    raise WriterTurnTimeout(f"no turn to write within {wait:g} s") from None
                time.sleep(min(pause, wait - waited))
                pause = min(pause * 2, LONGEST_PAUSE)
            else:
                self.held = True
                return time.monotonic() - start

    def give_back(self) -> None:
        if self.held:
            self.held = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self.give_back()
        self._closed()


class TurnTakingConnection(sqlite3.Connection):
    """A sqlite3 connection to a database file whose writers take turns.

    The turn is given back once the transaction has ended: SQLAlchemy's commit
    and rollback events come before it ends, so the driver's calls do it.
    """

    def __init__(self, database: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        # Next to the file itself, however its path is spelled.
        self.path = os.path.realpath(database)
        self.turns = WriterTurns(self.path + "-writers")
        self.execute("PRAGMA wal_autocheckpoint=0")  # see the module's docstring
        self._changes = 0
        self._open = True

    def take_turn(self, wait: float) -> float:
        """Wait up to `wait` seconds for the writers' turn; the seconds waited."""
        return self.turns.take(wait)

    def give_back_turn(self) -> None:
        self.turns.give_back()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.give_back_turn()
        # Any commit that wrote counts, turn or not: an API token's last use, an
        # import, a migration.
        if self.total_changes != self._changes:
            self._changes = self.total_changes
            if next(_commits_that_wrote) % CHECKPOINT_EVERY == 0:
                try:
                    background_checkpoints(self.path).ask()
                except Exception:
                    # The commit stands; a later one asks again.
                    log.warning("could not ask for a WAL checkpoint", exc_info=True)

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.give_back_turn()

    def close(self) -> None:
        # SQLite checkpoints when the last connection closes; with a server's
        # connections open, a command's writes would otherwise stay in the log.
        if not self._open:
            return
        self._open = False
        if self.total_changes and not self.in_transaction:
            checkpoint(self)
        try:
            super().close()
        finally:
            self.turns.close()


def checkpoint(connection: sqlite3.Connection) -> None:
    """Copy what the log holds into the database, without waiting for anyone
    (PASSIVE): what readers still use is left for the next time."""
    try:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error:
        # The commits stand; the next checkpoint copies what this one did not.
        log.warning("WAL checkpoint failed", exc_info=True)


class BackgroundCheckpoints:
    """Checkpoints of one database file, run on a thread of this process with
    a connection of its own (SQLite lets go of the GIL while it copies), so
    the worker that asked goes on to its next request. Asks made while one
    runs make one more run, not one each. A thread that has died (it cannot
    have: every error is caught, but a process may run out of threads) is
    started again by the next ask."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._changed = threading.Condition()
        self._asked = False
        self._running = False
        self._thread: threading.Thread | None = None

    def ask(self) -> None:
        with self._changed:
            self._asked = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="glue-sqlite-checkpoints", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def wait(self, timeout: float) -> bool:
        """Whether, within `timeout` seconds, no checkpoint is asked for or running."""
        with self._changed:
            return self._changed.wait_for(lambda: not (self._asked or self._running), timeout)

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._asked)
                self._asked, self._running = False, True
            try:
                if connection is None:
                    connection = sqlite3.connect(self.path, isolation_level=None)
                checkpoint(connection)
            except Exception:
                # Opened anew for the next ask (too many open files, say).
                log.warning("WAL checkpoint failed", exc_info=True)
                if connection is not None:
                    connection.close()
                connection = None
            finally:
                with self._changed:
                    self._running = False
                    self._changed.notify_all()


_background: dict[tuple[int, str], BackgroundCheckpoints] = {}
_background_lock = threading.Lock()


def background_checkpoints(path: str) -> BackgroundCheckpoints:
    """This process's checkpoint thread for the database at `path` (a forked
    worker starts its own: threads do not survive a fork). A process that
    forks after it has asked for one (gunicorn's master never writes, and its
    workers do not fork) could fork while SQLite holds a lock in the thread."""
    key = (os.getpid(), path)
    with _background_lock:
        found = _background.get(key)
        if found is None:
            found = _background[key] = BackgroundCheckpoints(path)
        return found
