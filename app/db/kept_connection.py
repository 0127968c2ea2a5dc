"""A platform request's connection, kept open by its worker for the next request.

Checking a connection out of SQLAlchemy's pool and back in costs a platform
turn about as much as one of its statements. A worker's main thread (where
gunicorn's sync workers serve every request) keeps its request connection
between requests instead, out of the pool. The next request takes it back
while it is of the same engine, valid, and was given back less than
`fresh_for` seconds ago; otherwise it goes back to the pool, stamped with
when it was kept (IDLE_SINCE), and the request checks one out as before: the
pool's own checks (PostgreSQL's ping after an idle spell) still guard a
connection that sat idle. A connection is kept with nothing begun, in
SQLAlchemy or in the driver (which on SQLite gives the writers' turn back
too). Other threads (a development server's) check out and give back every
time: a connection kept per thread would outlive threads that end.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine

log = logging.getLogger(__name__)

# In a connection's info: since when it was kept idle (time.monotonic()), for
# the pool's checkin to note as its last use; and a mark that it must not be
# kept (a begin that failed half-way leaves SQLAlchemy's Connection unfit to
# begin on its own again).
IDLE_SINCE = "glue_idle_since"
NOT_TO_KEEP = "glue_not_to_keep"


class KeptConnection:
    """At most one connection kept open, by the process's main thread."""

    def __init__(self, open_connection: Callable[[Engine], Connection], fresh_for: float) -> None:
        self._open = open_connection
        self._fresh_for = fresh_for
        self._connection: Connection | None = None

    def take(self, engine: Engine) -> Connection:
        """The kept connection if it may serve this request, else a new one."""
        if not _main_thread():
            return self._open(engine)
        kept, self._connection = self._connection, None
        if kept is not None:
            # (An invalidated Connection would reconnect to read its info.)
            if (
                kept.engine is engine
                and not kept.invalidated
                and time.monotonic() - kept.info[IDLE_SINCE] < self._fresh_for
            ):
                del kept.info[IDLE_SINCE]
                return kept
            kept.close()  # the pool's checkin notes IDLE_SINCE as its last use
        connection = self._open(engine)
        # A mark a session's failed begin left on this pooled connection is
        # not this new Connection's: it has not begun anything yet.
        connection.info.pop(NOT_TO_KEEP, None)
        return connection

    def give_back(self, connection: Connection) -> None:
        """Keep `connection` for the next request, with what it began rolled back."""
        if (
            not _main_thread()
            or connection.closed
            or connection.invalidated
            or connection.info.pop(NOT_TO_KEEP, False)
        ):
            connection.close()
            return
        try:
            connection.rollback()
            # What the driver began that SQLAlchemy no longer counts as begun
            # (a COMMIT that failed) too, as the pool's reset would.
            connection.connection.dbapi_connection.rollback()  # type: ignore[union-attr]
        except Exception:
            # The request has its answer: a connection that cannot even roll
            # back is dropped, and the next request opens another.
            log.warning("request connection dropped: its rollback failed", exc_info=True)
            connection.invalidate()
            connection.close()
            return
        if self._connection is not None:  # a nested app context's, given back first
            self._connection.close()
        connection.info[IDLE_SINCE] = time.monotonic()
        self._connection = connection

    def disposed(self, engine: Engine) -> None:
        """`engine` was disposed: a connection kept of it is closed, not given
        back to the pool the engine no longer has."""
        kept = self._connection
        if kept is not None and kept.engine is engine:
            self._connection = None
            kept.detach()
            kept.close()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
