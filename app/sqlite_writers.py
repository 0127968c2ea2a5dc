"""Glue's SQLite writers take turns through a lock file, not SQLite's busy handler.

SQLite lets one transaction write at a time. A writer that finds the write lock
taken is put to sleep by SQLite's busy handler for 1, 2, 5, 10, ... up to 100 ms
between tries, however soon the lock is free. Two gunicorn workers writing turns
of about a millisecond each kept running into each other that way, and spent a
third of their time asleep (bench/). Glue's writers first take an exclusive
flock on `<database>-writers` and then begin: the one waiting gets its turn
within a millisecond of the other's commit. SQLite's own locking is unchanged
and still decides; other programs writing the file are waited for as before.

SQLite copies the write-ahead log into the database (a checkpoint) inside the
COMMIT that fills it, after the write lock is let go: other writers need not
wait for it, so it must not happen inside a turn either. Glue's connections
turn automatic checkpoints off and run one themselves every CHECKPOINT_EVERY
writes, once the turn is given back.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import time

log = logging.getLogger(__name__)

# How soon a waiting writer looks again: a turn lasts about a millisecond.
FIRST_PAUSE = 0.0001
LONGEST_PAUSE = 0.001
# A verification turn writes about 10 pages: a checkpoint every 1,000 pages or
# so per connection, as SQLite's own default does.
CHECKPOINT_EVERY = 100


class WriterTurnTimeout(Exception):
    """Another writer kept its turn for longer than this one could wait."""


class WriterTurns:
    """An exclusive flock on a file next to the database, taken for one transaction.

    flock, as it is released when its holder dies; polled, as it has no timeout
    of its own. The file stays open for the connection's life: one syscall a turn
    (the `filelock` package opens it each time, 60 µs a turn here).
    """

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
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
        os.close(self._fd)


class TurnTakingConnection(sqlite3.Connection):
    """A sqlite3 connection that gives its writer turn back once its transaction
    has ended (SQLAlchemy's commit and rollback events come before it ends)."""

    turns: WriterTurns | None = None
    writes = 0

    def commit(self) -> None:
        wrote = self.turns is not None and self.turns.held
        try:
            super().commit()
        finally:
            self._give_back()
        if wrote:
            self.writes += 1
            if self.writes % CHECKPOINT_EVERY == 0:
                self._checkpoint()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._give_back()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.turns is not None:
                self.turns.close()
                self.turns = None

    def _give_back(self) -> None:
        if self.turns is not None:
            self.turns.give_back()

    def _checkpoint(self) -> None:
        """Copy what the log holds into the database, without waiting for anyone
        (PASSIVE): what readers still use is left for the next time."""
        try:
            self.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            # The commit stands; the next checkpoint copies what this one did not.
            log.warning("WAL checkpoint failed", exc_info=True)
