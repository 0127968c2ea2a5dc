"""The bench's bound (bench/bound.py) does a verification step's work on Glue's schema.

The bench compares Glue with it: if it stored nothing, or the wrong rows, the
comparison would flatter it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest
from lxml import etree
from sqlalchemy import select

from app.db import make_engine
from app.models import Call, CallEvent, User, VerificationAttempt
from bench.common import SECRETS, account_of, pin_of
from bench.dataset import load_users

KEY = SECRETS["IFBYPHONE_SECRET"]


@pytest.fixture
def bound(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    engine = make_engine(database_url)
    load_users(engine, 5)
    engine.dispose()
    monkeypatch.setenv("GLUE_DATABASE_URL", database_url)
    for name in ("IFBYPHONE_SECRET", "PIN_SECRET"):
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
