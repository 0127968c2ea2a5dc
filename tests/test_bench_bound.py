"""The bench's bound (bench/bound.py) does each benched step's work on Glue's schema.

The bench compares Glue with it: if it stored nothing, or the wrong rows, the
comparison would flatter it. The didML steps are compared with Glue's own, row
for row: the same request to Glue and to the bound, on calls in the same state.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest
from flask import Flask
from lxml import etree
from sqlalchemy import select

from app.db import make_engine
from app.models import Call, CallEvent, User, VerificationAttempt
from bench.common import SECRETS, account_of, pin_of
from bench.dataset import load_users
from tests.helpers.settings import TEST_SECRETS

KEY = SECRETS["IFBYPHONE_SECRET"]
DIDML_KEY = SECRETS["DIDML_SECRET"]
GLUE_DIDML_KEY = TEST_SECRETS["DIDML_SECRET"]


@pytest.fixture
def bound(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    engine = make_engine(database_url)
    load_users(engine, 5)
    engine.dispose()
    monkeypatch.setenv("GLUE_DATABASE_URL", database_url)
    for name in ("IFBYPHONE_SECRET", "DIDML_SECRET", "PIN_SECRET"):
        monkeypatch.setenv(f"GLUE_{name}", SECRETS[name])
    sys.modules.pop("bench.bound", None)  # it reads the environment when imported
    module = importlib.import_module("bench.bound")
    yield module
    if module._opened is not None:
        module._opened[0].close()
    sys.modules.pop("bench.bound", None)


def post(bound: ModuleType, call: str, user: int, pin: str, key: str = KEY) -> tuple[int, bytes]:
    response = bound.app.test_client().post(
        f"/ifbyphone/verify_caller?key={key}",
        data={
            "session_id": call,
            "caller_id": "3125550100",
            "account": account_of(user),
            "pin": pin,
        },
    )
    return response.status_code, response.data


def test_the_bound_stores_a_step_and_checks_the_pin(bound: ModuleType, database_url: str) -> None:
    status, body = post(bound, "right", 3, pin_of(3))
    assert status == 200
    assert etree.fromstring(body).findtext("app") == "survo"
    assert post(bound, "wrong", 3, "9999" if pin_of(3) != "9999" else "0000")[0] == 200

    engine = make_engine(database_url)
    with engine.connect() as conn:
        user_id = conn.scalar(select(User.id).where(User.account_number == account_of(3)))
        calls = dict(conn.execute(select(Call.platform_call_id, Call.outcome)).all())
        attempts = conn.execute(
            select(VerificationAttempt.user_id, VerificationAttempt.outcome).order_by(
                VerificationAttempt.id
            )
        ).all()
        events = conn.execute(select(CallEvent.kind, CallEvent.outcome)).all()
        payloads = conn.scalars(select(CallEvent.payload)).all()
    engine.dispose()
    assert calls == {"right": "verified", "wrong": "rejected"}
    assert [tuple(a) for a in attempts] == [(user_id, "verified"), (user_id, "rejected")]
    assert sorted(tuple(e) for e in events) == [("turn", "rejected"), ("turn", "verified")]
    assert {payload["pin"] for payload in payloads} == {"***"}


def test_the_bound_refuses_a_wrong_key(bound: ModuleType) -> None:
    assert post(bound, "forged", 1, pin_of(1), key="nope")[0] == 403


def didml_fields(call: str) -> dict[str, str]:
    return {
        "callSid": call,
        "From": "+13125550199",
        "To": "+18005551212",
        "CallStatus": "in-progress",
        "Direction": "inbound",
    }


def call_row(database_url: str, call: str) -> dict[str, object]:
    """What a step leaves in the call's row and its events, without ids and times."""
    engine = make_engine(database_url)
    with engine.connect() as conn:
        row = conn.execute(select(Call).where(Call.platform_call_id == call)).one()
        events = conn.execute(
            select(CallEvent.kind, CallEvent.outcome, CallEvent.payload, CallEvent.reply)
            .where(CallEvent.call_id == row.id)
            .order_by(CallEvent.id)
        ).all()
    engine.dispose()
    return {
        "call": (row.platform, row.caller_number, row.flow, row.status, row.outcome),
        "progress": (row.reached, row.platform_status, row.duration_seconds),
        "ended": row.ended_at is not None,
        "state": row.state,
        "events": [
            (kind, outcome, {k: v for k, v in payload.items() if k != "callSid"}, reply)
            for kind, outcome, payload, reply in events
        ],
    }


def test_the_bound_stores_the_gather_step_glue_stores(
    bound: ModuleType, app: Flask, database_url: str
) -> None:
    glue = app.test_client()
    for call in ("glue", "bound"):  # both calls asked for their account by Glue
        first = glue.post(f"/didml/verify_caller?key={GLUE_DIDML_KEY}", data=didml_fields(call))
        assert b"question=account" in first.data
    answer = "&turn=1&question=account"
    glue_reply = glue.post(
        f"/didml/verify_caller?key={GLUE_DIDML_KEY}{answer}",
        data={**didml_fields("glue"), "Digits": account_of(2)},
    )
    bound_reply = bound.app.test_client().post(
        f"/didml/verify_caller?key={DIDML_KEY}{answer}",
        data={**didml_fields("bound"), "Digits": account_of(2)},
    )

    for reply, key in ((glue_reply, GLUE_DIDML_KEY), (bound_reply, DIDML_KEY)):
        gather = etree.fromstring(reply.data).find("Gather")
        assert gather is not None
        assert gather.get("action", "").endswith(f"?key={key}&turn=2&question=pin")
        assert gather.findtext("Say") == "Please enter your PIN, then press pound."
    glue_rows, bound_rows = call_row(database_url, "glue"), call_row(database_url, "bound")
    assert glue_rows["state"]["answers"] == {"account": account_of(2)}  # type: ignore[index]
    assert bound_rows == glue_rows


@pytest.mark.parametrize(
    "statuses",
    [["initiated", "ringing"], ["ringing", "completed"], ["answered", "completed"], ["busy"]],
)
def test_the_bound_stores_the_status_callbacks_glue_stores(
    bound: ModuleType, app: Flask, database_url: str, statuses: list[str]
) -> None:
    clients = {
        "glue": (app.test_client(), GLUE_DIDML_KEY),
        "bound": (bound.app.test_client(), DIDML_KEY),
    }
    for who, (client, key) in clients.items():
        for n, reported in enumerate(statuses):
            response = client.post(
                f"/didml/status?key={key}",
                data={
                    "callSid": f"{who}-call",
                    "CallStatus": reported,
                    "Called": "+13125550101",
                    "Direction": "Outbound",
                    "CallbackSource": "call-progress-event",
                    "CallDuration": str(10 * n),
                },
            )
            assert response.status_code == 204
    glue_rows, bound_rows = (
        call_row(database_url, "glue-call"),
        call_row(database_url, "bound-call"),
    )
    assert [event[1] for event in glue_rows["events"]] == statuses  # type: ignore[attr-defined]
    assert bound_rows == glue_rows


def test_the_bound_refuses_a_wrong_didml_key(bound: ModuleType) -> None:
    client = bound.app.test_client()
    assert client.post("/didml/status?key=nope", data={"callSid": "x"}).status_code == 403
    gather = client.post("/didml/verify_caller?key=nope&question=account", data={})
    assert gather.status_code == 403
