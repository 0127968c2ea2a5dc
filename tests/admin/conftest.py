"""Fixtures of the admin page tests: a directory with one admin, signing in, and the
app on a real server for the browser tests."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from app import create_app
from app.auth.passwords import hash_password
from app.models import User
from tests.helpers.admin_pages import ADA_PASSWORD, ADMIN_PASSWORD
from tests.helpers.directory import add_group, add_user
from tests.helpers.settings import TEST_SECRETS
from tests.helpers.web_client import sign_in


@pytest.fixture
def people(session: Session) -> dict[str, User]:
    """Ada (a caller who may sign in, not an admin), Ruth (an admin), the group Night shift."""
    ada = add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    ada.password_hash = hash_password(ADA_PASSWORD)
    ruth = add_user(session, "1900", "Ruth Admin", "8080", "+13125550190")
    ruth.password_hash = hash_password(ADMIN_PASSWORD)
    ruth.is_admin = True
    add_group(session, "500", "Night shift", "5050", "+13125550500", members=(ada,))
    session.commit()
    return {"ada": ada, "ruth": ruth}


@pytest.fixture
def admin_client(client: FlaskClient, people: dict[str, User]) -> FlaskClient:
    """The test client, signed in as Ruth, the admin."""
    signed_in = sign_in(client, "1900", ADMIN_PASSWORD)
    assert signed_in.status_code == 302, signed_in.get_data(as_text=True)
    return client


@pytest.fixture
def live(sqlite_template: Path, tmp_path: Path, flows_dir: Path) -> Iterator[tuple[str, Flask]]:
    """The app on a real server (threaded) at http://127.0.0.1:<free port>, Ada an admin."""
    database = tmp_path / "glue.db"
    shutil.copy(sqlite_template, database)
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{database}",
            "FLOWS_DIR": str(flows_dir),
            **TEST_SECRETS,
        },
        instance_path=str(tmp_path / "instance"),
    )
    runner = app.test_cli_runner()
    for args in (["demo", "load"], ["users", "make-admin", "1001"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, result.output
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", app
    finally:
        server.shutdown()
        thread.join(5)
        app.extensions["glue.engine"].dispose()


@pytest.fixture
def live_base(live: tuple[str, Flask]) -> str:
    return live[0]
