"""Shared-secret authentication of the platform routes (app/hooks/auth.py):
`?key=` or the HTTP Basic password, failing closed with a bare 403."""

from __future__ import annotations

import base64

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app.models import CallEvent
from tests.helpers.settings import TEST_SECRETS

KEY = TEST_SECRETS["IFBYPHONE_SECRET"]
FIELDS = {"caller_id": "3125550199", "session_id": "s-auth", "account": "1001", "pin": "2468"}


def basic(password: str, user: str = "ifbyphone") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def events(session: Session) -> int:
    session.commit()  # end any snapshot so the requests' commits are seen
    return session.scalar(select(func.count()).select_from(CallEvent)) or 0


def assert_forbidden(response: TestResponse) -> None:
    assert response.status_code == 403
    assert b"<" not in response.data  # no XML: nothing about the flow leaks


def test_the_right_secret_is_let_in_and_recorded(client: FlaskClient, session: Session) -> None:
    """The control for the refusals below: the same request with the key gets through."""
    by_query = client.post("/ifbyphone/verify_caller", query_string={"key": KEY}, data=FIELDS)
    by_basic = client.post(
        "/ifbyphone/verify_caller", data={**FIELDS, "session_id": "s-auth-2"}, headers=basic(KEY)
    )
    assert by_query.status_code == by_basic.status_code == 200
    assert events(session) == 2


def test_basic_with_the_wrong_password_is_forbidden(client: FlaskClient, session: Session) -> None:
    response = client.post("/ifbyphone/verify_caller", data=FIELDS, headers=basic(KEY + "x"))
    assert_forbidden(response)
    assert events(session) == 0


def test_basic_with_an_empty_password_is_forbidden(client: FlaskClient) -> None:
    assert_forbidden(client.post("/ifbyphone/verify_caller", data=FIELDS, headers=basic("")))


def test_basic_with_the_secret_as_user_name_is_forbidden(client: FlaskClient) -> None:
    response = client.post("/ifbyphone/verify_caller", data=FIELDS, headers=basic("", user=KEY))
    assert_forbidden(response)


@pytest.mark.parametrize("query_key", ["wrong", ""])
def test_a_query_key_wins_over_a_right_basic_password(
    client: FlaskClient, session: Session, query_key: str
) -> None:
    # presented_secret() takes `?key=` when the field is there at all, even
    # empty, and only otherwise the Basic password: a wrong key is not rescued.
    response = client.post(
        "/ifbyphone/verify_caller",
        query_string={"key": query_key},
        data=FIELDS,
        headers=basic(KEY),
    )
    assert_forbidden(response)
    assert events(session) == 0


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_a_key_in_the_body_only_is_forbidden_and_stores_nothing(
    client: FlaskClient, session: Session, method: str
) -> None:
    response = client.open("/ifbyphone/verify_caller", method=method, data={**FIELDS, "key": KEY})
    assert_forbidden(response)
    assert events(session) == 0


def test_unauthenticated_wrong_method_is_forbidden_without_xml(client: FlaskClient) -> None:
    # Authentication comes before routing errors: a 405 answered with XML
    # would tell an unauthenticated caller the route exists.
    assert_forbidden(client.delete("/ifbyphone/verify_caller"))


def test_unauthenticated_unknown_path_is_forbidden_without_xml(client: FlaskClient) -> None:
    assert_forbidden(client.get("/ifbyphone/a/b"))
