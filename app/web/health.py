"""/healthz (the process answers) and /readyz (it can do its work), for load balancers.

No sign-in: a load balancer calls them. /healthz touches nothing, so a database
outage does not get every worker restarted. /readyz checks, each within a short
bound, that the database answers at the newest migration and that the job
queue's storage answers; its body names each check and how it went, never a
host, a URL or an error text (those go to the log).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from functools import cache
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from flask import Blueprint, Flask, Response, jsonify
from sqlalchemy import Engine, text

from app.config import QueueSettings, queue_settings
from app.db import MIGRATIONS_DIR, get_engine

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

# Seconds the queue check may wait for Redis or the SQLite file's lock.
CHECK_SECONDS = 2


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up and serving."""
    return _no_store(jsonify(status="ok"))


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """The database and the job queue answer: 200, else 503 naming what failed."""
    checks = {"database": check_database(get_engine()), "queue": check_queue(queue_settings())}
    ready = all(result == "ok" for result in checks.values())
    body = jsonify(status="ready" if ready else "unavailable", checks=checks)
    return _no_store(body), 200 if ready else 503


def check_database(engine: Engine) -> str:
    """ok, unreachable, or not_migrated (its schema is not the newest migration)."""
    try:
        # Bounded by the engine's own timeouts (connect, pool, statement): the
        # same ones every request meets, so "ready" means requests get through.
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            try:
                versions = set(
                    connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
                )
            except Exception as exc:
                _log_failure("database migrations", exc)
                return "not_migrated"
    except Exception as exc:
        _log_failure("database", exc)
        return "unreachable"
    if versions != _migration_heads():
        log.warning("not ready: database at %s, not the newest migration", sorted(versions))
        return "not_migrated"
    return "ok"


def check_queue(settings: QueueSettings) -> str:
    """ok or unreachable: the storage the jobs are queued in (Redis or a SQLite file)."""
    try:
        if settings.redis_url:
            _redis_client(settings.redis_url).ping()
        else:
            _check_sqlite_queue(Path(settings.path))
    except Exception as exc:
        _log_failure("queue", exc)
        return "unreachable"
    return "ok"


def _check_sqlite_queue(path: Path) -> None:
    if not os.access(path, os.R_OK | os.W_OK):
        raise OSError("the queue file is missing or not writable")
    # mode=rw: never create a file where the queue should already be.
    uri = f"{path.resolve().as_uri()}?mode=rw"
    connection = sqlite3.connect(uri, uri=True, timeout=CHECK_SECONDS)
    try:
        connection.execute("SELECT count(*) FROM task").fetchone()  # huey's queue table
    finally:
        connection.close()


@cache
def _redis_client(url: str) -> Any:
    import redis  # only a Redis queue needs it

    return redis.Redis.from_url(
        url, socket_connect_timeout=CHECK_SECONDS, socket_timeout=CHECK_SECONDS
    )


@cache
def _migration_heads() -> frozenset[str]:
    """The newest revisions the code knows (read once: they change with a deploy)."""
    return frozenset(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())


def _log_failure(check: str, exc: Exception) -> None:
    # The exception's type and first line: enough to act on, without a traceback
    # every few seconds while the load balancer keeps asking.
    first_line = (str(exc).splitlines() or [""])[0][:200]
    log.warning("not ready: %s check failed: %s: %s", check, type(exc).__name__, first_line)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
