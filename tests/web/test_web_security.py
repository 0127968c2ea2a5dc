"""Web pages and admin pages, walked route by route from the app's URL map (so a
new route is checked without anyone listing it): security headers and a CSP
that fits the templates, CSRF on every form route, admin routes for admins only.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import lxml.html
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from app import create_app
from app.auth.passwords import hash_password
from app.models import (
    AdminAction,
    ApiToken,
    Call,
    CallAction,
    OneTimeCode,
    PhoneNumber,
    WebhookEvent,
    utcnow,
)
from tests.helpers.directory import add_user
from tests.helpers.web_client import sign_in, token

ADMIN_PASSWORD = "ruth-admin-1"
ADA_PASSWORD = "ada-demo-1"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Blueprints that machines call (platform web hooks, status callbacks, the JSON
# API, voice documents, health checks, metrics): authenticated by secrets or tokens, not
# by a session, so no CSRF token. Any other blueprint serves people.
MACHINE_BLUEPRINTS = {
    "ifbyphone",
    "voipnow",
    "didml",
    "twiml",
    "didml_status",
    "twiml_status",
    "api",
    "voice",
    "health",
    "metrics",
}
# Fields that would make every form valid, but for its CSRF token.
FORM_FIELDS = {
    "account": "1900",
    "password": ADMIN_PASSWORD,
    "kind": "user",
    "value": "1001",
    "phone": "+1 312 555 0177",
    "code": "123456",
    "number": "1001",
    "claim_type": "",
}


def blueprint(rule: Rule) -> str:
    return rule.endpoint.rpartition(".")[0]


def people_routes(app: Flask) -> list[Rule]:
    """Every route of a blueprint for people (web pages, admin pages, and any new one)."""
    return [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static" and blueprint(rule) not in MACHINE_BLUEPRINTS
    ]


def path(app: Flask, rule: Rule, samples: dict[str, object]) -> str:
    missing = rule.arguments - samples.keys()
    assert not missing, f"{rule.endpoint}: give this test a sample {sorted(missing)}"
    values = {name: samples[name] for name in rule.arguments}
    return str(app.url_map.bind("localhost").build(rule.endpoint, values))


@pytest.fixture
def people(session: Session) -> dict[str, int]:
    """Ruth, an admin with no phone yet (so /phone shows its form), and Ada, who is not."""
    ruth = add_user(session, "1900", "Ruth Admin", "8080")
    ruth.password_hash = hash_password(ADMIN_PASSWORD)
    ruth.is_admin = True
    ada = add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    ada.password_hash = hash_password(ADA_PASSWORD)
    session.commit()
    return {"ruth": ruth.id, "ada": ada.id}


@pytest.fixture
def samples(session: Session, people: dict[str, int]) -> dict[str, object]:
    """A value for every route argument, naming rows that exist (Ruth's own)."""
    action = CallAction(
        user_id=people["ruth"],
        via="web",
        purpose="connect",
        target_kind="user",
        target_user_id=people["ada"],
        from_number="+13125550190",
        to_number="+13125550101",
        provider="didforsale",
    )  # queued: its page runs the status script
    session.add(action)
    session.flush()
    code = OneTimeCode(
        user_id=people["ruth"],
        phone="+13125550190",
        seed="s" * 32,
        expires_at=utcnow() + timedelta(minutes=10),
        action_id=action.id,
    )
    call = Call(platform="ifbyphone", platform_call_id="s-1", flow="verify_caller", state={})
    api_token = ApiToken(name="crm", token_hash="0" * 64, webhook_url="https://crm.example/hooks")
    session.add_all([code, call, api_token])
    session.flush()
    event = WebhookEvent(
        event_id="evt_sample",
        api_token_id=api_token.id,
        action_id=action.id,
        type="call.queued",
        url="https://crm.example/hooks",
        body="{}",
    )
    session.add(event)
    session.commit()
    return {
        "action_id": action.id,
        "code_id": code.id,
        "call_id": call.id,
        "name": "verify_caller",
        "number": 1,
        "event_row_id": event.id,
    }


@pytest.fixture
def admin(client: FlaskClient, people: dict[str, int]) -> FlaskClient:
    assert sign_in(client, "1900", ADMIN_PASSWORD).status_code == 302
    return client


# --- headers and CSP -----------------------------------------------------------


def directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


def sources(policy: dict[str, list[str]], directive: str) -> list[str]:
    return policy.get(directive, policy["default-src"])


def check_headers(response: TestResponse, where: str) -> int:
    """Assert the headers every page answer carries; check its inline code against its
    CSP. Returns how many inline scripts and styles it checked."""
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff", where
    assert headers["X-Frame-Options"] == "DENY", where
    assert headers["Referrer-Policy"] == "same-origin", where
    assert headers["Cache-Control"] == "no-store", where
    policy = directives(headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'none'"], where
    assert "'unsafe-inline'" not in sources(policy, "script-src"), where
    if response.mimetype != "text/html":
        return 0
    assert policy.get("frame-ancestors") == ["'none'"], where
    page = lxml.html.fromstring(response.get_data(as_text=True))
    for element in page.iter():
        for attribute in element.attrib:
            assert not attribute.lower().startswith("on"), f"{where}: inline handler"
    for tag, directive in (("script", "script-src"), ("style", "style-src")):
        allowed = sources(policy, directive)
        for element in page.iter(tag):
            if tag == "script" and element.get("src"):
                # A file's script runs only from this site's static files, by 'self'.
                assert element.get("src").startswith("/static/"), f"{where}: {element.get('src')}"
                assert "'self'" in allowed, f"{where}: a script from a file its policy does not run"
                continue
            nonce = element.get("nonce")
            assert f"'nonce-{nonce}'" in allowed or (
                tag == "style" and "'unsafe-inline'" in allowed
            ), f"{where}: a <{tag}> its policy does not run ({allowed})"
    styled = page.xpath("//*[@style]")
    assert not styled or "'unsafe-inline'" in sources(policy, "style-src"), where
    return len(page.xpath("//script | //style"))


def test_every_page_answer_carries_the_security_headers_and_a_csp_its_code_fits(
    app: Flask, client: FlaskClient, samples: dict[str, object]
) -> None:
    anonymous = app.test_client()
    assert sign_in(client, "1900", ADMIN_PASSWORD).status_code == 302
    routes = [rule for rule in people_routes(app) if "GET" in rule.methods]  # type: ignore[operator]
    assert {blueprint(rule) for rule in routes} >= {"web", "admin"}
    inline: dict[str, int] = {}
    for rule in routes:
        url = path(app, rule, samples)
        seen = anonymous.get(url)
        assert seen.status_code in (200, 302, 401), url
        check_headers(seen, f"anonymous {url}")
        response = client.get(url)
        if rule.endpoint == "admin.flow_svg" and shutil.which("dot") is None:
            assert response.status_code == 503  # nothing to draw with
        elif rule.endpoint == "admin.studio_diff":  # no draft saved: sent to the editor
            assert response.status_code == 302, url
        elif rule.endpoint != "web.login":  # signed in, it sends you on
            assert response.status_code == 200, url
        inline[rule.endpoint] = check_headers(response, f"admin {url}")
    # The checks saw the inline code: the status page's style and script; the
    # overview's chart style, the admin layout's style and the base one.
    assert inline["web.call_status"] == 2
    assert inline["admin.index"] == 3


def test_each_response_has_a_nonce_of_its_own(
    admin: FlaskClient, samples: dict[str, object]
) -> None:
    first, second = (admin.get(f"/calls/{samples['action_id']}") for _ in range(2))
    nonces = [
        directives(r.headers["Content-Security-Policy"])["script-src"] for r in (first, second)
    ]
    assert nonces[0] != nonces[1]
    assert all(n[0].startswith("'nonce-") and len(n[0]) > 20 for n in nonces)


@pytest.fixture
def https_app(app_config: dict[str, object], tmp_path: Path) -> Iterator[Flask]:
    app = create_app(
        {**app_config, "PUBLIC_URL": "https://glue.example.com"},
        instance_path=str(tmp_path / "https-instance"),
    )
    yield app
    app.extensions["glue.engine"].dispose()


def test_behind_https_pages_ask_for_https_and_the_cookie_is_secure(
    https_app: Flask, client: FlaskClient, people: dict[str, int]
) -> None:
    secure = https_app.test_client()
    signed_in = sign_in(secure, "1900", ADMIN_PASSWORD)
    assert signed_in.headers["Strict-Transport-Security"] == "max-age=31536000"
    cookie = signed_in.headers["Set-Cookie"].split("; ")
    assert {"Secure", "HttpOnly", "SameSite=Lax"} <= set(cookie)

    plain = sign_in(client, "1900", ADMIN_PASSWORD)  # the `app` fixture: no public URL
    assert "Strict-Transport-Security" not in plain.headers
    assert "Secure" not in plain.headers["Set-Cookie"].split("; ")


# --- CSRF ----------------------------------------------------------------------


def count(session: Session, model: type) -> int:
    session.commit()  # a fresh snapshot: see what requests wrote
    return session.scalar(select(func.count()).select_from(model)) or 0


def phones(session: Session) -> list[str]:
    session.commit()
    return list(session.scalars(select(PhoneNumber.e164).order_by(PhoneNumber.e164)))


def test_every_form_route_refuses_a_post_without_its_own_sessions_token(
    app: Flask, admin: FlaskClient, session: Session, samples: dict[str, object]
) -> None:
    stranger = token(app.test_client().get("/login"))  # valid, for another session
    routes = [rule for rule in people_routes(app) if rule.methods & UNSAFE]  # type: ignore[operator]
    assert {blueprint(rule) for rule in routes} >= {"web", "admin"}
    for rule in routes:
        url = path(app, rule, samples)
        for method in sorted(rule.methods & UNSAFE):  # type: ignore[operator]
            for csrf in ({}, {"csrf_token": stranger}, {"csrf_token": "forged"}):
                response = admin.open(url, method=method, data={**FORM_FIELDS, **csrf})
                assert response.status_code == 400, f"{method} {url} {csrf}"
    # Nothing happened: no call, no unlock, no phone, no code used, still signed in.
    assert count(session, CallAction) == 1  # the sample's
    assert count(session, AdminAction) == 0
    assert phones(session) == ["+13125550101"]
    code = session.get(OneTimeCode, samples["code_id"], populate_existing=True)
    assert code is not None and code.tries_left == 5 and code.used_at is None
    assert admin.get("/").status_code == 200


def test_with_its_sessions_token_the_same_posts_are_heard(
    admin: FlaskClient, session: Session, samples: dict[str, object]
) -> None:
    """The control for the test above: its form fields are good ones."""
    data = {**FORM_FIELDS, "csrf_token": token(admin.get("/"))}
    assert admin.post("/admin/locks/unlock", data=data).status_code == 302
    assert count(session, AdminAction) == 1
    phone = {"phone": FORM_FIELDS["phone"], "csrf_token": data["csrf_token"]}  # no call
    assert admin.post("/phone", data=phone).status_code == 302
    assert "+13125550177" in phones(session)


# --- admin routes --------------------------------------------------------------


def test_every_admin_route_refuses_anonymous_visitors_and_non_admins(
    app: Flask, client: FlaskClient, session: Session, samples: dict[str, object]
) -> None:
    routes = [rule for rule in app.url_map.iter_rules() if blueprint(rule) == "admin"]
    assert len(routes) >= 8
    anonymous = app.test_client()
    assert sign_in(client, "1001", ADA_PASSWORD).status_code == 302
    own_token = token(client.get("/"))  # a valid token does not make her an admin
    for rule in routes:
        url = path(app, rule, samples)
        assert url.startswith("/admin/"), url
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):  # type: ignore[operator]
            data = {**FORM_FIELDS, "csrf_token": own_token} if method in UNSAFE else None
            away = anonymous.open(url, method=method, data=data)
            assert away.status_code == 302, f"anonymous {method} {url}"
            assert away.location.startswith("/login?next="), away.location
            refused = client.open(url, method=method, data=data)
            assert refused.status_code == 403, f"non-admin {method} {url}"
            assert "for admins only" in refused.get_data(as_text=True)
    assert count(session, AdminAction) == 0
