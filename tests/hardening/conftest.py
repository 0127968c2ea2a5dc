"""Fixtures: Glue on several gunicorn hosts sharing one PostgreSQL schema.

Two servers (each with two workers, like `make run`'s default) serve the
package's multi-host tests; the schema is emptied before and after each test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from app.db import make_engine
from tests.helpers.database import truncate
from tests.helpers.hardening.hosts import KEPT_TABLES, SERVER_ENV
from tests.helpers.servers import Server, gunicorn
from tests.helpers.settings import GENEROUS_BOUNDS


@pytest.fixture
def shared_url(postgres_schema_url: str) -> Iterator[str]:
    """The PostgreSQL schema every server of a test uses, empty but for the
    published flow versions."""
    truncate(postgres_schema_url, KEPT_TABLES)
    yield postgres_schema_url
    truncate(postgres_schema_url, KEPT_TABLES)


@pytest.fixture
def db(shared_url: str) -> Iterator[Session]:
    """A session of the test's own on the shared schema (not through any server)."""
    engine = make_engine(shared_url)
    session = Session(engine)
    yield session
    session.close()
    engine.dispose()


@pytest.fixture(scope="package")
def two_servers(
    postgres_schema_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    workdir: Path = tmp_path_factory.mktemp("hosts")
    # These hosts are for what many callers at once get, not how fast Glue gives
    # up on a slow database (test_database_*): a busy machine must not fail them.
    env = {**SERVER_ENV, **{f"GLUE_{k}": str(v) for k, v in GENEROUS_BOUNDS.items()}}
    with (
        gunicorn(postgres_schema_url, workdir, "host-a", env, workers=2) as a,
        gunicorn(postgres_schema_url, workdir, "host-b", env, workers=2) as b,
    ):
        yield a, b
