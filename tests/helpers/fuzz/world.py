"""The world the fuzz tests attack: a directory and every kind of credential."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from flask import Flask
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.auth import tokens
from app.auth.passwords import hash_password
from app.auth.sign_in import WebUser
from app.directory.pins import get_hasher
from app.models import ApiToken, CallAction, OneTimeCode, utcnow
from app.outbound import codes
from tests.helpers.directory import add_group, add_user
from tests.helpers.fuzz.strategies import RIGHT_PIN
from tests.helpers.web_client import token

PASSWORD = "fuzz-pass-1"


@cache
def _password_hash() -> str:
    # argon2 is slow on purpose: hash once per session.
    return hash_password(PASSWORD)


@dataclass(frozen=True, repr=False)
class World:
    """The app under test, and what it takes to get past each kind of check."""

    app: Flask
    engine: Engine
    user_cookie: str  # session cookie of a signed-in user (not an admin)
    user_csrf: str
    admin_cookie: str
    admin_csrf: str
    anon_cookie: str  # a session with a CSRF token and nobody signed in: /login's forms
    anon_csrf: str
    api_token: str
    action_id: int  # a click-to-call action of the user, placed through the API
    code_id: int  # a one-time code of the user, and its voice document's token
    code_token: str
    # What the consistency checks found wrong so far (see tests.helpers.fuzz.consistency).
    known_problems: set[str] = field(default_factory=set)

    def __repr__(self) -> str:  # short, in hypothesis' reports
        return f"World({self.engine.url.get_backend_name()})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def _signed_in(app: Flask, login_id: str | None) -> tuple[str, str]:
    """A session cookie as signing in makes it, and its CSRF token (no argon2 per test)."""
    client = app.test_client()
    with client.session_transaction() as cookie_session:
        if login_id is not None:
            cookie_session["_user_id"] = login_id
            cookie_session["_fresh"] = True
    csrf = token(client.get("/" if login_id else "/login"))
    cookie = client.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session"))
    assert cookie is not None
    return cookie.value, csrf


def make_world(app: Flask, sessions: bool) -> World:
    engine: Engine = app.extensions["glue.engine"]
    with Session(engine) as session:
        ada = add_user(session, "1001", "Ada <Lovelace> & 'Sons'", RIGHT_PIN, "+13125550101")
        ruth = add_user(session, "1900", "Ruth Admin", RIGHT_PIN, "+13125550190")
        add_user(session, "1002", "Grace Hopper", RIGHT_PIN)
        add_user(session, "1004", "Disabled", RIGHT_PIN, active=False)
        add_group(session, "500", "Night shift", RIGHT_PIN, "+13125550500", members=(ada,))
        ada.password_hash = ruth.password_hash = _password_hash()
        ruth.is_admin = True
        api_token = tokens.create(session, "fuzz")
        session.commit()
        token_id = session.scalars(select(ApiToken.id).where(ApiToken.name == "fuzz")).one()
        action = CallAction(
            user_id=ada.id,
            via="api",
            purpose="verify_phone",
            target_kind="number",
            from_number="+13125550101",
            provider="didforsale",
            api_token_id=token_id,
        )
        session.add(action)
        session.flush()
        record = OneTimeCode(
            user_id=ada.id,
            phone="+13125550101",
            seed=secrets.token_hex(32),
            expires_at=utcnow() + codes.VALID_FOR,
            action_id=action.id,
        )
        session.add(record)
        session.commit()
        action_id, code_id = action.id, record.id
        ada_login, ruth_login = WebUser(ada).get_id(), WebUser(ruth).get_id()
        with app.app_context():
            code_token = codes.token_of(get_hasher(), record)
    none = ("", "")
    user_cookie, user_csrf = _signed_in(app, ada_login) if sessions else none
    admin_cookie, admin_csrf = _signed_in(app, ruth_login) if sessions else none
    anon_cookie, anon_csrf = _signed_in(app, None) if sessions else none
    return World(
        app=app,
        engine=engine,
        user_cookie=user_cookie,
        user_csrf=user_csrf,
        admin_cookie=admin_cookie,
        admin_csrf=admin_csrf,
        anon_cookie=anon_cookie,
        anon_csrf=anon_csrf,
        api_token=api_token,
        action_id=action_id,
        code_id=code_id,
        code_token=code_token,
    )
