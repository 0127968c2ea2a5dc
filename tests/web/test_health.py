"""/healthz and /readyz: what a load balancer sees when all is well, and when the
database or the job queue is away (a quick 503 naming the check, never a URL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app import create_app

# Nothing listens on port 1: connections are refused at once.
REFUSED_POSTGRES = "postgresql+psycopg://glue:db-password-9@127.0.0.1:1/glue"
REFUSED_REDIS = "redis://:redis-password-9@127.0.0.1:1/0"


def checks(response: TestResponse) -> dict[str, str]:
    body = response.get_json()
    assert body["status"] == ("ready" if response.status_code == 200 else "unavailable")
    assert response.headers["Cache-Control"] == "no-store"
    result: dict[str, str] = body["checks"]
    return result


def timed(client: FlaskClient, path: str) -> tuple[TestResponse, float]:
    start = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - start


@pytest.fixture
def broken_app(app_config: dict[str, object], tmp_path: Path) -> Iterator[Flask]:
    """An app whose database refuses connections."""
    app = create_app(
        {**app_config, "DATABASE_URL": REFUSED_POSTGRES}, instance_path=str(tmp_path / "b")
    )
    yield app
    app.extensions["glue.engine"].dispose()


def test_ready_when_the_database_is_migrated_and_the_queue_answers(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert checks(response) == {"database": "ok", "queue": "ok"}
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_a_refused_database_is_a_quick_503_and_healthz_still_answers(
    broken_app: Flask,
) -> None:
    client = broken_app.test_client()
    response, seconds = timed(client, "/readyz")
    assert response.status_code == 503 and seconds < 5
    assert checks(response) == {"database": "unreachable", "queue": "ok"}
    body = response.get_data(as_text=True)
    assert "127.0.0.1" not in body and "password" not in body
    # The process is fine: restarting it would not help.
    alive, seconds = timed(client, "/healthz")
    assert alive.status_code == 200 and seconds < 1


def test_a_database_behind_the_code_migrations_is_not_ready(
    client: FlaskClient, session: Session
) -> None:
    head = session.scalar(text("SELECT version_num FROM alembic_version"))
    session.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    session.commit()
    try:
        response = client.get("/readyz")
    finally:
        session.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
        session.commit()
    assert response.status_code == 503
    assert checks(response) == {"database": "not_migrated", "queue": "ok"}
    assert client.get("/readyz").status_code == 200


def test_an_empty_database_is_not_ready(app_config: dict[str, object], tmp_path: Path) -> None:
    app = create_app(
        {**app_config, "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"},
        instance_path=str(tmp_path / "e"),
    )
    response = app.test_client().get("/readyz")
    app.extensions["glue.engine"].dispose()
    assert response.status_code == 503
    assert checks(response)["database"] == "not_migrated"


def test_an_unreachable_redis_queue_is_a_quick_503(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLUE_REDIS_URL", REFUSED_REDIS)
    response, seconds = timed(client, "/readyz")
    assert response.status_code == 503 and seconds < 5
    assert checks(response) == {"database": "ok", "queue": "unreachable"}
    assert "redis-password-9" not in response.get_data(as_text=True)


@pytest.mark.parametrize("queue_file", ["missing", "not-a-database"])
def test_a_missing_or_broken_queue_file_is_a_503(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, queue_file: str
) -> None:
    path = tmp_path / "jobs.db"
    if queue_file == "not-a-database":
        path.write_bytes(b"this is not SQLite " * 100)
    monkeypatch.setenv("GLUE_QUEUE_PATH", str(path))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert checks(response) == {"database": "ok", "queue": "unreachable"}
    assert queue_file == "not-a-database" or not path.exists()  # nothing created


def test_no_sign_in_is_asked_and_nothing_is_cached(client: FlaskClient) -> None:
    for path in ("/healthz", "/readyz"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
        assert "Set-Cookie" not in response.headers
