"""Each bound on a wait for the database (app.db.Bounds), one at a time:
the settings a connection carries, a connect that gets no answer, a statement
that gets none, a pool with no free connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from lxml import etree
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from app import create_app
from app.db import PING_AFTER_IDLE, Bounds, make_engine
from tests.helpers.hardening.proxy import DbProxy
from tests.helpers.settings import TEST_SECRETS

BOUNDS = Bounds()  # the defaults, as config.DEFAULTS has them


def _ms(seconds: float) -> str:
    return f"{int(seconds * 1000)}ms"


@pytest.fixture
def proxy() -> Iterator[DbProxy]:
    proxy = DbProxy()
    yield proxy
    proxy.close()


@pytest.fixture
def proxied(proxy: DbProxy, shared_url: str) -> Iterator[Engine]:
    """A bounded engine that reaches PostgreSQL through the proxy."""
    url = make_url(shared_url).set(host="127.0.0.1", port=proxy.port)
    engine = make_engine(url.render_as_string(hide_password=False), bounds=BOUNDS)
    yield engine
    engine.dispose()


def test_postgresql_connections_carry_the_timeouts_and_keep_the_urls_options(
    shared_url: str,
) -> None:
    bounded = make_engine(shared_url, bounds=BOUNDS)
    plain = make_engine(shared_url)
    try:
        with bounded.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar() == _ms(BOUNDS.statement)
            assert conn.execute(text("SHOW lock_timeout")).scalar() == _ms(BOUNDS.lock)
            # The test schema's search_path comes from the URL's own options.
            assert conn.execute(text("SHOW search_path")).scalar().startswith("glue_test_")
        with plain.connect() as conn:  # migrations: nothing cut short
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "0"
    finally:
        bounded.dispose()
        plain.dispose()


def test_sqlite_waits_for_another_writer_briefly_in_requests_only(tmp_path: Path) -> None:
    """A caller is on the line in a request; jobs and commands can wait."""
    engine = make_engine(f"sqlite:///{tmp_path}/b.db", pool_size=1, bounds=BOUNDS)

    def busy_timeout() -> int:
        with engine.begin() as conn:
            return int(conn.execute(text("PRAGMA busy_timeout")).scalar() or 0)

    try:
        assert busy_timeout() == 15000
        with Flask(__name__).test_request_context("/didml/verify_caller", method="POST"):
            assert busy_timeout() == BOUNDS.busy * 1000
        assert busy_timeout() == 15000  # the same pooled connection, outside again
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_and_syncs_at_checkpoints(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/w.db", bounds=BOUNDS)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
    finally:
        engine.dispose()


def test_a_connect_that_gets_no_answer_gives_up_within_the_bound(
    proxy: DbProxy, proxied: Engine
) -> None:
    proxy.set_mode("stall")
    started = time.monotonic()
    with pytest.raises(OperationalError, match="no database connection within"):
        proxied.connect()
    # psycopg alone would wait 2 s at least (libpq's minimum connect_timeout).
    assert time.monotonic() - started < BOUNDS.connect + 0.2

    proxy.set_mode("pass")
    with proxied.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1


def test_a_statement_that_gets_no_answer_gives_up_and_drops_the_connection(
    proxy: DbProxy, proxied: Engine
) -> None:
    conn = proxied.connect()
    assert conn.execute(text("SELECT 1")).scalar() == 1
    proxy.set_mode("stall")
    outcome: list[BaseException | float] = []

    def query() -> None:
        started = time.monotonic()
        try:
            conn.execute(text("SELECT 2"))
        except BaseException as exc:
            outcome.extend([exc, time.monotonic() - started])

    thread = threading.Thread(target=query, daemon=True)  # hangs for good without the bound
    thread.start()
    thread.join(timeout=5)
    assert outcome, "the statement was still waiting after 5 s"
    error, seconds = outcome
    assert isinstance(error, OperationalError) and error.connection_invalidated
    assert isinstance(seconds, float) and seconds < (BOUNDS.answer or 0) + 0.2
    conn.close()

    proxy.set_mode("pass")
    with proxied.connect() as fresh:  # the pool starts afresh
        assert fresh.execute(text("SELECT 3")).scalar() == 3


def test_a_pooled_connection_to_a_silent_server_is_given_up_on_checkout(
    proxy: DbProxy, proxied: Engine
) -> None:
    with proxied.connect() as conn:  # leaves a connection in the pool
        conn.execute(text("SELECT 1"))
    time.sleep(PING_AFTER_IDLE + 0.05)  # idle long enough to be pinged
    proxy.set_mode("stall")
    started = time.monotonic()
    with pytest.raises(OperationalError):
        proxied.connect()
    # A ping within its own short bound, then a new connection within the connect
    # bound: not the statement bound first (as SQLAlchemy's own pre-ping would).
    assert time.monotonic() - started < BOUNDS.ping + BOUNDS.connect + 0.15


def test_a_connection_given_back_just_now_is_taken_without_a_ping(
    proxy: DbProxy, proxied: Engine
) -> None:
    with proxied.connect() as conn:
        conn.execute(text("SELECT 1"))
    proxy.set_mode("stall")  # a ping would now wait its whole bound
    started = time.monotonic()
    with proxied.connect():
        taken = time.monotonic() - started
    assert taken < BOUNDS.ping / 2


def test_a_statement_waiting_for_a_lock_gives_up_at_the_lock_timeout(shared_url: str) -> None:
    bounded = make_engine(shared_url, bounds=BOUNDS)
    holder = make_engine(shared_url)
    try:
        with holder.connect() as lock, bounded.connect() as conn:
            lock.execute(text("LOCK TABLE call_events IN ACCESS EXCLUSIVE MODE"))
            started = time.monotonic()
            with pytest.raises(OperationalError) as caught:
                conn.execute(text("SELECT count(*) FROM call_events"))
            seconds = time.monotonic() - started
            # The server's own refusal (lock_not_available): the connection lives on.
            assert getattr(caught.value.orig, "sqlstate", None) == "55P03"
            assert not caught.value.connection_invalidated
            assert seconds < BOUNDS.lock + 0.15
    finally:
        bounded.dispose()
        holder.dispose()


def test_a_slow_statement_is_cancelled_by_the_server(shared_url: str) -> None:
    bounded = make_engine(shared_url, bounds=BOUNDS)
    try:
        with bounded.connect() as conn:
            with pytest.raises(OperationalError) as caught:
                conn.execute(text("SELECT pg_sleep(5)"))
            assert getattr(caught.value.orig, "sqlstate", None) == "57014"  # query_canceled
            assert not caught.value.connection_invalidated
            conn.rollback()
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        bounded.dispose()


def test_a_request_finding_no_free_connection_answers_the_fallback_in_time(
    shared_url: str, tmp_path: Path, flows_dir: Path
) -> None:
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": shared_url,
            "FLOWS_DIR": str(flows_dir),
            "DB_POOL_SIZE": 1,  # one, and one overflow
            **TEST_SECRETS,
        },
        instance_path=str(tmp_path / "instance"),
    )
    engine: Engine = app.extensions["glue.engine"]
    held = [engine.connect(), engine.connect()]
    try:
        started = time.monotonic()
        response = app.test_client().post(
            f"/ifbyphone/verify_caller?key={TEST_SECRETS['IFBYPHONE_SECRET']}",
            data={
                "caller_id": "3125550199",
                "session_id": "pool-1",
                "account": "1001",
                "pin": "2468",
            },
        )
        seconds = time.monotonic() - started
    finally:
        for conn in held:
            conn.close()
        engine.dispose()
    assert seconds < 1.0
    action = etree.fromstring(response.data)
    assert action.findtext("parameters/user_parameters/message") == (
        "We are sorry, something went wrong. Please call again later."
    )
