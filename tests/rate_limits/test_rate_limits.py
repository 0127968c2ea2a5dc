"""Rate limits on the PIN routes: per caller number and per source address,
counted only for authenticated requests, shared through Redis between hosts."""

from __future__ import annotations

import itertools
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import create_app
from app.models import CallEvent, VerificationAttempt
from tests.helpers.directory import add_user
from tests.helpers.services import require
from tests.helpers.settings import TEST_SECRETS

KEY = TEST_SECRETS["IFBYPHONE_SECRET"]
REDIS_URL = os.environ.get("GLUE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
_calls = itertools.count(1)


@pytest.fixture
def app_config(app_config: dict[str, object]) -> dict[str, object]:
    return {**app_config, "RATE_LIMIT_PER_CALLER": "3/minute", "RATE_LIMIT_PER_SOURCE": ""}


@pytest.fixture(autouse=True)
def ada(session: Session) -> None:
    add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")


def verify(
    client: FlaskClient,
    caller: str,
    key: str = KEY,
    headers: dict[str, str] | None = None,
    remote: str = "127.0.0.1",
) -> Any:
    """A new call from `caller` entering a wrong PIN for account 1001."""
    return client.post(
        "/ifbyphone/verify_caller",
        query_string={"key": key},
        data={
            "session_id": f"rl-{next(_calls)}",
            "caller_id": caller,
            "account": "1001",
            "pin": "0000",
        },
        headers=headers or {},
        environ_base={"REMOTE_ADDR": remote},
    )


def refused(response: Any) -> bool:
    """A refusal is a plain hang-up the platform can obey, with Retry-After."""
    root = etree.fromstring(response.data)
    assert response.status_code == 200 and root.tag == "action"
    if root.findtext("app") == "hangup" and "Retry-After" in response.headers:
        assert int(response.headers["Retry-After"]) >= 1
        return True
    return False


def attempts(session: Session) -> int:
    session.commit()
    return session.scalar(select(func.count()).select_from(VerificationAttempt)) or 0


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def glue_warnings() -> Iterator[list[str]]:
    """Warnings of Glue's loggers (which do not propagate to pytest's caplog).
    Entered after the app is made: making one resets the loggers' handlers."""
    handler = Lines()
    logger = logging.getLogger("app")
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


def test_caller_over_the_limit_is_refused_and_nothing_is_counted(
    client: FlaskClient, session: Session
) -> None:
    served = [verify(client, "3125550199") for _ in range(3)]
    assert not any(refused(r) for r in served)
    with glue_warnings() as warnings:
        assert refused(verify(client, "3125550199"))
    assert "over the per-caller limit 3 per 1 minute" in "\n".join(warnings)
    assert attempts(session) == 3  # the refused one never reached the PIN check
    # Another number is not affected; the same number written otherwise is.
    assert not refused(verify(client, "3125550198"))
    assert refused(verify(client, "+1 (312) 555-0199"))


def test_withheld_numbers_share_one_allowance(client: FlaskClient, session: Session) -> None:
    results = [refused(verify(client, "")) for _ in range(4)]
    assert results == [False, False, False, True]
    assert attempts(session) == 3


def test_strangers_cannot_spend_a_callers_allowance(client: FlaskClient, session: Session) -> None:
    for _ in range(5):
        assert verify(client, "3125550199", key="wrong").status_code == 403
    assert not refused(verify(client, "3125550199"))
    assert attempts(session) == 1


def test_malformed_requests_count_for_their_source_only(app: Flask, session: Session) -> None:
    app.config["RATE_LIMIT_PER_SOURCE"] = "4/minute"
    from app import rate_limits

    rate_limits.init_app(app)
    client = app.test_client()
    for _ in range(4):
        response = client.post("/ifbyphone/verify_caller", query_string={"key": KEY}, data={})
        assert etree.fromstring(response.data).tag == "action"
    # The source's allowance is spent; a caller's is not.
    assert refused(verify(client, "3125550199"))
    assert not refused(verify(client, "3125550199", remote="192.0.2.7"))


@pytest.mark.parametrize("trusted", [0, 1])
def test_source_address_behind_a_trusted_proxy(
    app_config: dict[str, object], tmp_path: Path, trusted: int
) -> None:
    config = {
        **app_config,
        "RATE_LIMIT_PER_CALLER": "",
        "RATE_LIMIT_PER_SOURCE": "2/minute",
        "TRUSTED_PROXIES": trusted,
    }
    app = create_app(config, instance_path=str(tmp_path / "instance"))
    client = app.test_client()
    caller = itertools.count(3125550100)
    try:
        for _ in range(2):
            forwarded = {"X-Forwarded-For": "198.51.100.1"}
            assert not refused(verify(client, str(next(caller)), headers=forwarded))
        # Another client behind the same proxy: its own allowance only if the
        # proxy is trusted; otherwise X-Forwarded-For is anyone's to write.
        forwarded = {"X-Forwarded-For": "198.51.100.2"}
        assert refused(verify(client, str(next(caller)), headers=forwarded)) is not bool(trusted)
    finally:
        app.extensions["glue.engine"].dispose()


def test_limits_off(app: Flask, session: Session) -> None:
    app.config["RATE_LIMIT_ENABLED"] = False
    from app import rate_limits

    rate_limits.init_app(app)
    client = app.test_client()
    assert not any(refused(verify(client, "3125550199")) for _ in range(6))


@pytest.fixture
def redis_url() -> Iterator[str]:
    """Redis from GLUE_TEST_REDIS_URL: skipped when unreachable, unless
    GLUE_TEST_REQUIRE_REDIS=1 (as in .ci/run, which starts it)."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        require("redis", False, f"unreachable at {REDIS_URL}: {exc}")
    yield REDIS_URL


def test_hosts_share_the_count_through_redis(
    app_config: dict[str, object], tmp_path: Path, session: Session, redis_url: str
) -> None:
    config = {**app_config, "RATE_LIMIT_STORAGE_URL": redis_url}
    hosts = [
        create_app(config, instance_path=str(tmp_path / f"host{n}")).test_client() for n in range(2)
    ]
    caller = f"+1312{uuid.uuid4().int % 10**7:07d}"  # fresh in Redis for each run
    try:
        results = [refused(verify(hosts[n % 2], caller)) for n in range(4)]
        assert results == [False, False, False, True]
        assert attempts(session) == 3
    finally:
        for host in hosts:
            host.application.extensions["glue.engine"].dispose()


def test_an_unreachable_store_never_cuts_a_call_off(
    app_config: dict[str, object],
    tmp_path: Path,
    session: Session,
) -> None:
    config = {**app_config, "RATE_LIMIT_STORAGE_URL": "redis://127.0.0.1:9/0"}  # closed port
    app = create_app(config, instance_path=str(tmp_path / "instance"))
    try:
        with glue_warnings() as warnings:
            results = [refused(verify(app.test_client(), "3125550199")) for _ in range(4)]
        assert results == [False] * 4
        assert attempts(session) == 4
        assert "rate-limit store unreachable: caller not counted" in warnings
    finally:
        app.extensions["glue.engine"].dispose()


def test_refused_requests_are_logged_not_stored(client: FlaskClient, session: Session) -> None:
    for _ in range(5):
        verify(client, "3125550199")
    session.commit()
    assert session.scalar(select(func.count()).select_from(CallEvent)) == 3
