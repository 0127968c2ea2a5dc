"""A platform request's connection, kept open by its worker for the next request.

Checking a connection out of SQLAlchemy's pool and back in costs a platform
turn about as much as one of its statements. A worker's main thread (where
gunicorn's sync workers serve every request) keeps its request connection
between requests instead, out of the pool. The next request takes it back
while it is of the same engine and pool, valid, and was given back less than
`fresh_for` seconds ago; otherwise it goes back to the pool and the request
checks one out as before, so the pool's own checks (PostgreSQL's ping after
an idle spell) still guard a connection that sat idle. A connection is given
back with nothing begun (what a request left is rolled back, which on SQLite
gives the writers' turn back too). Other threads (a development server's)
check out and give back every time: a connection kept per thread would outlive
threads that end.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine

log = logging.getLogger(__name__)


class KeptConnection:
    """At most one connection kept open, by the process's main thread."""

    def __init__(self, open_connection: Callable[[Engine], Connection], fresh_for: float) -> None:
        self._open = open_connection
        self._fresh_for = fresh_for
        self._connection: Connection | None = None
        self._engine: Engine | None = None
        self._pool: object = None
        self._given_back = 0.0

    def take(self, engine: Engine) -> Connection:
        """The kept connection if it may serve this request, else a new one."""
        if not _main_thread():
            return self._open(engine)
        kept, self._connection = self._connection, None
        if kept is not None:
            if (
                self._engine is engine
                and self._pool is engine.pool
                and not kept.invalidated
                and time.monotonic() - self._given_back < self._fresh_for
            ):
                return kept
            kept.close()
        connection = self._open(engine)
        self._engine, self._pool = engine, engine.pool
        return connection

    def give_back(self, connection: Connection) -> None:
        """Keep `connection` for the next request, with what it began rolled back."""
        if not _main_thread() or connection.invalidated:
            connection.close()
            return
        try:
            connection.rollback()
        except Exception:
            # The request has its answer: a connection that cannot even roll
            # back is dropped, not kept, and the next request opens another.
            log.warning("request connection dropped: its rollback failed", exc_info=True)
            connection.invalidate()
            connection.close()
            return
        if self._connection is not None:  # a nested app context's, given back first
            self._connection.close()
        self._connection, self._given_back = connection, time.monotonic()

    def disposed(self, engine: Engine) -> None:
        """`engine` was disposed: a connection kept of it is closed, not given
        back to the pool the engine no longer has."""
        kept = self._connection
        if kept is not None and engine is self._engine:
            self._connection = None
            kept.detach()
            kept.close()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
