"""Limits on the calls Glue places (SQLite and PostgreSQL), against a real local
HTTP server playing DIDforSale: per user, per API token, on code calls; a 429
with Retry-After on the API, a message on the web page; shared through Redis."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import lxml.html
import pytest
import redis
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app import create_app
from app.auth import tokens
from app.models import CallAction, IdempotencyKey, OneTimeCode, User
from tests.helpers.directory import add_group, add_user
from tests.helpers.services import require
from tests.helpers.web_client import API_KEY, ENDPOINT, call_form, confirm_form, sign_in

REDIS_URL = os.environ.get("GLUE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LIMITS = {
    "CALL_LIMIT_PER_USER": "2/minute",
    "CALL_LIMIT_PER_TOKEN": "3/minute",
    "CODE_CALL_LIMIT_PER_USER": "1/minute",
}


@pytest.fixture
def app_config(app_config: dict[str, object]) -> dict[str, object]:
    return {**app_config, **LIMITS}


def group_call(user: str) -> dict[str, object]:
    return {"user": user, "target": {"kind": "group", "value": "500"}}


def bearer(session: Session, name: str = "crm") -> dict[str, str]:
    value = tokens.create(session, name)
    session.commit()
    return {"Authorization": f"Bearer {value}"}


def count(session: Session, model: type[CallAction] | type[OneTimeCode]) -> int:
    session.commit()  # see what requests wrote since
    return session.scalar(select(func.count()).select_from(model)) or 0


def assert_429(response: TestResponse, message: str) -> None:
    assert response.status_code == 429
    body = response.get_json()
    assert body["error"] == "too_many_calls" and message in body["message"]
    wait = int(response.headers["Retry-After"])
    assert 1 <= wait <= 61 and body["retry_after"] == wait


def flashes(response: TestResponse) -> list[str]:
    page = lxml.html.fromstring(response.get_data(as_text=True))
    return [" ".join(p.text_content().split()) for p in page.xpath("//p[contains(@class,'flash')]")]


def test_the_api_refuses_calls_past_the_users_limit(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    auth = bearer(session)
    for _ in range(2):
        placed = client.post("/api/v1/calls", json=group_call("1001"), headers=auth)
        assert placed.status_code == 202
    refused = client.post("/api/v1/calls", json=group_call("1001"), headers=auth)
    assert_429(refused, "too many calls for user 1001 (limit 2 per 1 minute)")
    assert (count(session, CallAction), len(provider.log)) == (2, 2)
    # Another user's allowance is their own.
    assert client.post("/api/v1/calls", json=group_call("1002"), headers=auth).status_code == 202


def test_the_api_refuses_calls_past_the_tokens_limit(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    crm, erp = bearer(session, "crm"), bearer(session, "erp")
    for user in ("1001", "1002", "1003"):
        assert client.post("/api/v1/calls", json=group_call(user), headers=crm).status_code == 202
    refused = client.post("/api/v1/calls", json=group_call("1002"), headers=crm)
    assert_429(refused, "too many calls by this token")
    # Refused by the token's allowance, the call spent none of the user's.
    assert client.post("/api/v1/calls", json=group_call("1002"), headers=erp).status_code == 202
    assert (count(session, CallAction), len(provider.log)) == (4, 4)


def test_code_calls_have_their_own_limit(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    auth = bearer(session)
    url = "/api/v1/users/1001/verifications"
    assert client.post(url, json={"method": "code"}, headers=auth).status_code == 202
    refused = client.post(url, json={"method": "code"}, headers=auth)
    assert_429(refused, "too many code calls to user 1001")
    assert (count(session, OneTimeCode), count(session, CallAction)) == (1, 1)
    # A call that connects the user is counted apart (and the code call counted for it).
    assert client.post("/api/v1/calls", json=group_call("1001"), headers=auth).status_code == 202
    third = client.post("/api/v1/calls", json=group_call("1001"), headers=auth)
    assert_429(third, "too many calls for user 1001")
    assert len(provider.log) == 2


def test_a_refusal_is_not_kept_as_the_keys_answer(
    app_config: dict[str, object], tmp_path: Path, session: Session, provider: HTTPServer
) -> None:
    """A 429 says "later": the same key, retried after Retry-After, places the call."""
    app = create_app(
        {**app_config, "CALL_LIMIT_PER_USER": "1 per 3 seconds", **provider_settings(provider)},
        instance_path=str(tmp_path / "short"),
    )
    try:
        add_user(session, "1001", "Ada", "2468", "+13125550101")
        session.commit()
        client = app.test_client()
        auth = bearer(session)
        body = {"user": "1001", "target": {"kind": "number", "value": "3125550177"}}
        assert client.post("/api/v1/calls", json=body, headers=auth).status_code == 202
        keyed = {**auth, "Idempotency-Key": "retry-me"}
        refused = client.post("/api/v1/calls", json=body, headers=keyed)
        assert refused.status_code == 429
        assert session.scalars(select(IdempotencyKey)).all() == []
        time.sleep(int(refused.headers["Retry-After"]))
        assert client.post("/api/v1/calls", json=body, headers=keyed).status_code == 202
        assert (count(session, CallAction), len(provider.log)) == (2, 2)
    finally:
        app.extensions["glue.engine"].dispose()


def provider_settings(provider: HTTPServer) -> dict[str, object]:
    return {
        "CALL_PROVIDER": "didforsale",
        "DIDFORSALE_API_URL": provider.url_for(ENDPOINT),
        "DIDFORSALE_API_KEY": API_KEY,
        "ORIGINATOR_NUMBER": "+13125550199",
        "PUBLIC_URL": "https://glue.example.com",
    }


def test_the_web_page_says_why_a_call_was_refused(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    sign_in(client, "1001")
    for _ in range(2):
        placed = client.post("/call", data=call_form(client, "group", "500"))
        assert placed.location.startswith("/calls/")
    refused = client.post("/call", data=call_form(client, "group", "500"))
    assert refused.location == "/"
    (message,) = flashes(client.get("/"))
    assert message.startswith("You have placed too many calls for now. Nothing was placed:")
    assert message.endswith("seconds.")
    assert (count(session, CallAction), len(provider.log)) == (2, 2)


def test_the_web_page_limits_confirmation_calls(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    sign_in(client, "1001")
    assert "/phone/confirm/" in client.post("/phone/confirm", data=confirm_form(client)).location
    refused = client.post("/phone/confirm", data=confirm_form(client))
    assert refused.location == "/"
    (message,) = flashes(client.get("/"))
    assert message.startswith("You have placed too many confirmation calls for now.")
    assert (count(session, OneTimeCode), len(provider.log)) == (1, 1)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """Redis from GLUE_TEST_REDIS_URL: skipped when unreachable, unless
    GLUE_TEST_REQUIRE_REDIS=1."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        require("redis", False, f"unreachable at {REDIS_URL}: {exc}")
    yield REDIS_URL


def test_hosts_share_the_limits_through_redis(
    app_config: dict[str, object],
    tmp_path: Path,
    session: Session,
    provider: HTTPServer,
    redis_url: str,
) -> None:
    config = {
        **app_config,
        **provider_settings(provider),
        "RATE_LIMIT_STORAGE_URL": redis_url,
        "CALL_LIMIT_PER_TOKEN": "",  # token ids repeat from run to run: not these
    }
    apps = [create_app(config, instance_path=str(tmp_path / f"host{n}")) for n in range(2)]
    account = f"9{uuid.uuid4().int % 10**8:08d}"  # fresh in Redis for each run
    add_user(session, account, "Ada", "2468", "+13125550101")
    session.commit()
    auth = bearer(session)
    body = {"user": account, "target": {"kind": "number", "value": "3125550177"}}
    try:
        answers = [
            apps[n % 2].test_client().post("/api/v1/calls", json=body, headers=auth).status_code
            for n in range(3)
        ]
        assert answers == [202, 202, 429]
        assert (count(session, CallAction), len(provider.log)) == (2, 2)
    finally:
        for app in apps:
            app.extensions["glue.engine"].dispose()


def test_calls_the_destination_policy_refused_use_up_no_allowance(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    # Group 900 rings a premium-rate number: recorded as refused, never placed.
    add_group(session, "900", "Hotline", None, "+19002345678")
    session.commit()
    auth = bearer(session)
    for _ in range(3):
        refused = client.post(
            "/api/v1/calls",
            json=group_call("1001") | {"target": {"kind": "group", "value": "900"}},
            headers=auth,
        )
        assert refused.status_code == 422
    assert client.post("/api/v1/calls", json=group_call("1001"), headers=auth).status_code == 202
    sign_in(client, "1001")
    for _ in range(3):
        assert client.post("/call", data=call_form(client, "group", "900")).status_code == 302
    placed = client.post("/call", data=call_form(client, "group", "500"))
    assert placed.location.startswith("/calls/")
    statuses = session.scalars(select(CallAction.status).order_by(CallAction.id)).all()
    refused_ones = [status == "refused" for status in statuses]
    assert refused_ones == [True] * 3 + [False] + [True] * 3 + [False]
    assert len(provider.log) == 2


def test_a_refused_confirmation_call_is_shown_again_on_resubmit(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    user = session.scalars(select(User).where(User.account_number == "1001")).one()
    user.phones[0].e164 = "+19002345678"  # as an import may store it
    session.commit()
    sign_in(client, "1001")
    form = confirm_form(client)
    first = client.post("/phone/confirm", data=form)
    again = client.post("/phone/confirm", data=form)
    assert first.location.startswith("/calls/") and again.location == first.location
    assert (count(session, CallAction), count(session, OneTimeCode), provider.log) == (1, 0, [])
    # The refusal used up no confirmation call: the limit is one a minute.
    user.phones[0].e164 = "+13125550101"
    session.commit()
    assert "/phone/confirm/" in client.post("/phone/confirm", data=confirm_form(client)).location
