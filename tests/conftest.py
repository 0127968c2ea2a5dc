"""Fixtures: a fresh app and database per test, on SQLite and on PostgreSQL.

Tests that take `app` (or anything built on it) run once per backend. PostgreSQL
is skipped when it cannot be reached, unless GLUE_TEST_REQUIRE_POSTGRES=1 (set by
.ci/run), which turns that into a failure.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

# The job queue is made when app.outbound.jobs is imported: never the real one.
os.environ.setdefault("GLUE_QUEUE_PATH", os.path.join(tempfile.mkdtemp(), "jobs.db"))
# Nor the checkout's metrics folder: the tests' processes count in one of their own.
os.environ.setdefault("GLUE_METRICS_DIR", tempfile.mkdtemp(prefix="glue-metrics-"))
# Flows are served from published versions: every app a test makes (and every
# server it starts) publishes the flow files it is given, as `make run` does.
os.environ.setdefault("GLUE_FLOWS_AUTO_PUBLISH", "true")

from app import create_app
from app.db import make_engine, upgrade
from tests.helpers.database import POSTGRES_URL, truncate
from tests.helpers.live_server import serve
from tests.helpers.services import require
from tests.helpers.settings import (
    CHROMIUM,
    CHROMIUM_ARGS,
    GENEROUS_BOUNDS,
    PROJECT_ROOT,
    TEST_SECRETS,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture
def chromium_path() -> str:
    """Browser tests need Debian's Chromium: skipped without it, unless
    GLUE_TEST_REQUIRE_BROWSER=1 (as in .ci/run, which installs it)."""
    require("browser", Path(CHROMIUM).exists(), f"{CHROMIUM} is missing")
    return CHROMIUM


@pytest.fixture
def browser(chromium_path: str) -> Iterator[Browser]:
    """Headless Chromium, driven by Playwright, closed after the test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def live_config() -> dict[str, Any]:
    """Settings of the `live` app beyond the tests' own; a test module overrides it."""
    return {}


@pytest.fixture
def live(
    sqlite_template: Path, tmp_path: Path, flows_dir: Path, live_config: dict[str, Any]
) -> Iterator[tuple[str, Flask]]:
    """The app on a real server (threaded) for the browser tests: its base URL
    and the app (migrated SQLite, the demo directory, Ada an admin)."""
    with serve(sqlite_template, tmp_path, flows_dir, **live_config) as served:
        yield served


@pytest.fixture
def graphviz_dot() -> None:
    """Tests that draw need Debian's `dot`: skipped without it, unless
    GLUE_TEST_REQUIRE_GRAPHVIZ=1 (as in .ci/run, which installs it)."""
    available = shutil.which("dot") is not None
    require("graphviz", available, "Graphviz's dot is not installed (apt-get install graphviz)")


@pytest.fixture(autouse=True)
def immediate_jobs() -> Iterator[None]:
    """Jobs run at once, in the test's thread (huey's immediate mode)."""
    from app.outbound import jobs

    jobs.huey.immediate = True
    yield
    jobs.huey.immediate = False


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "glue.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_schema_url() -> Iterator[str]:
    """A migrated schema of its own in PostgreSQL, dropped after the session."""
    schema = f"glue_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        admin.dispose()
        require("postgres", False, f"unreachable at {POSTGRES_URL}: {exc}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "glue.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url: str = request.getfixturevalue("postgres_schema_url")
    yield url
    truncate(url)


@pytest.fixture
def flows_dir() -> Path:
    """The shipped flows; a test that edits flows copies them first."""
    return PROJECT_ROOT / "survo_forms"


@pytest.fixture
def app_config(database_url: str, flows_dir: Path) -> dict[str, object]:
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "FLOWS_DIR": str(flows_dir),
        "FLOWS_RELOAD_SECONDS": 0,
        "FLOWS_AUTO_PUBLISH": True,
        # Publishes made in the test's own process are seen at once (the
        # registry looks after its own and the CLI's); tests of the poll set it.
        "FLOWS_POLL_SECONDS": 3600,
        **GENEROUS_BOUNDS,
        **TEST_SECRETS,
    }


@pytest.fixture
def app(app_config: dict[str, object], tmp_path: Path) -> Iterator[Flask]:
    app = create_app(app_config, instance_path=str(tmp_path / "instance"))
    warm_flows(app)
    yield app
    app.extensions["glue.engine"].dispose()


def warm_flows(app: Flask) -> None:
    """Publish the app's flow files and read the published versions now, as a
    running server has long done: a test's requests cost only their own queries."""
    from app.flows.registry import current_registry

    with app.app_context():
        registry = current_registry()
        for name in registry.names():
            registry.get(name)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A database session of the test's own, apart from the ones requests use
    (no app context is held open, so requests and commands get their own).
    Unlike the app's, it expires what it holds on commit, so a test that
    commits sees what requests wrote since."""
    session = Session(app.extensions["glue.engine"])
    yield session
    session.close()
