"""Fixtures of the admin page tests: a directory with one admin, and signing in.
The app on a real server for the browser tests is `live` (tests/conftest.py)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.auth.passwords import hash_password
from app.models import User
from tests.helpers.admin_pages import ADA_PASSWORD, ADMIN_PASSWORD
from tests.helpers.directory import add_group, add_user
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
def live_base(live: tuple[str, Flask]) -> str:
    return live[0]
