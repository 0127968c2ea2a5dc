"""The IfbyPhone web hook end to end: requests as IfbyPhone sends them, replies
parsed as XML, and the rows they leave (on SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import get_engine
from app.dialects.ifbyphone import decode_pass_through
from app.models import Call, CallEvent, User, VerificationAttempt
from tests.helpers.database import database_down
from tests.helpers.directory import add_group, add_user
from tests.helpers.ifbyphone import (
    ASK_SURVO,
    KEY,
    Caller,
    answers,
    count,
    follow,
    message,
    raw,
    send,
    the_call,
)


@pytest.fixture
def directory(session: Session) -> dict[str, User]:
    ada = add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    grace = add_user(session, "1002", "Grace Hopper", "1357", "+13125550102")
    obrien = add_user(session, "1003", "Patrick O'Brien & Sons <x>", "8642", "+13125550103")
    add_group(session, "500", "Night shift", "5050", "+13125550500", members=(ada, grace))
    return {"ada": ada, "grace": grace, "obrien": obrien}


def test_right_pin_says_thanks_then_transfers_to_the_users_phone(
    client: FlaskClient, session: Session, directory: dict[str, User]
) -> None:
    first = send(client, answers("s-ok", "1001", "2468"))
    assert message(first) == "Thank you, Ada Lovelace."
    assert decode_pass_through(first.findtext("parameters/p_t") or "")["next"] == "verified:1"

    second = follow(client, "s-ok", first)
    assert second.findtext("app") == "transfer"
    assert second.findtext("parameters/destination") == "3125550101"

    call = the_call(session, "s-ok")
    assert (call.platform, call.flow, call.outcome, call.status) == (
        "ifbyphone",
        "verify_caller",
        "verified",
        "ended",
    )
    assert call.caller_number == "+13125550199" and call.ended_at is not None
    assert [e.outcome for e in call.events] == ["verified", "verified"]
    [attempt] = session.scalars(select(VerificationAttempt)).all()
    assert (attempt.call_id, attempt.user_id, attempt.outcome) == (
        call.id,
        directory["ada"].id,
        "verified",
    )


def test_wrong_pin_retries_then_asks_again_then_fails_to_voicemail(
    client: FlaskClient, session: Session, directory: dict[str, User]
) -> None:
    caller = Caller(client, "s-bad")
    for attempt in range(2):
        sorry, ask = caller.answer(account="1001", pin="0000")
        assert message(sorry) == "That did not match. Please try again."
        assert ask.findtext("app") == "survo"
        assert ask.findtext("parameters/id") == ASK_SURVO
        assert "next" not in decode_pass_through(ask.findtext("parameters/p_t") or "")
        assert the_call(session, "s-bad").state["tries_used"] == attempt + 1

    goodbye, box = caller.answer(account="1001", pin="0000")
    assert message(goodbye) == "Sorry, we could not verify you."
    assert box.findtext("app") == "voicemail" and box.findtext("parameters/id") == "200"
    call = the_call(session, "s-bad")
    assert (call.outcome, call.status) == ("failed", "ended")
    assert count(session, VerificationAttempt) == 3


def test_five_wrong_pins_over_two_calls_lock_even_the_right_pin(
    client: FlaskClient, session: Session, directory: dict[str, User]
) -> None:
    first_call = Caller(client, "s-l1")
    ends = [first_call.answer(account="1001", pin="0000")[-1] for _ in range(3)]
    assert [r.findtext("app") for r in ends] == ["survo", "survo", "voicemail"]
    second_call = Caller(client, "s-l2")
    second_call.answer(account="1001", pin="0000")
    sorry, hangup = second_call.answer(account="1001", pin="0000")
    assert message(sorry) == "This account is locked. Please try again later."
    assert hangup.findtext("app") == "hangup"

    right_pin = Caller(client, "s-l3").answer(account="1001", pin="2468")
    assert message(right_pin[0]) == message(sorry)
    assert the_call(session, "s-l3").outcome == "locked"
    reasons = session.scalars(select(VerificationAttempt.reason).order_by(VerificationAttempt.id))
    assert list(reasons) == ["wrong_pin"] * 4 + ["locked_now", "locked"]


def test_unknown_accounts_lock_like_real_ones(
    client: FlaskClient, session: Session, directory: dict[str, User]
) -> None:
    """Lockout must not tell which account numbers exist."""
    known, unknown = Caller(client, "s-k"), Caller(client, "s-u")
    for _ in range(3):
        assert [etree.tostring(r) for r in known.answer(account="1001", pin="0000")] == [
            etree.tostring(r) for r in unknown.answer(account="9999", pin="0000")
        ]
    known, unknown = Caller(client, "s-k2"), Caller(client, "s-u2")
    for _ in range(3):
        assert [etree.tostring(r) for r in known.answer(account="1001", pin="0000")] == [
            etree.tostring(r) for r in unknown.answer(account="9999", pin="0000")
        ]
    assert the_call(session, "s-k2").outcome == the_call(session, "s-u2").outcome == "locked"


def test_unknown_account_is_answered_like_a_wrong_pin(
    client: FlaskClient, directory: dict[str, User]
) -> None:
    unknown = send(client, answers("s-u1", "9999", "2468"))
    wrong = send(client, answers("s-u2", "1001", "1111"))
    assert etree.tostring(unknown) == etree.tostring(wrong)


def test_skipped_questions_are_no_input(
    client: FlaskClient, session: Session, directory: dict[str, User]
) -> None:
    reply = send(client, answers("s-na", "NA", "NA"))
    assert message(reply) == "We did not hear anything. Goodbye."
    assert follow(client, "s-na", reply).findtext("app") == "hangup"
    assert the_call(session, "s-na").outcome == "no_input"
    assert count(session, VerificationAttempt) == 0


def test_a_retried_identical_post_is_answered_the_same_and_counted_once(
    client: FlaskClient, session: Session, directory: dict[str, User]
) -> None:
    fields = answers("s-dup", "1001", "0000")
    first = raw(client, fields, "verify_caller", "POST", KEY)
    again = raw(client, fields, "verify_caller", "POST", KEY)
    assert first.data == again.data
    assert count(session, CallEvent) == 1
    assert count(session, VerificationAttempt) == 1
    assert the_call(session, "s-dup").state["tries_used"] == 1
    user = session.scalars(select(User).where(User.account_number == "1001")).one()
    session.refresh(user)
    assert user.failed_attempts == 1


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_get_and_put_work_like_post(
    client: FlaskClient, directory: dict[str, User], method: str
) -> None:
    reply = send(client, answers(f"s-{method}", "1001", "2468"), method=method)
    assert message(reply) == "Thank you, Ada Lovelace."


def test_names_with_xml_special_characters_are_read_intact(
    client: FlaskClient, directory: dict[str, User]
) -> None:
    reply = send(client, answers("s-xml", "1003", "8642"))
    assert message(reply) == "Thank you, Patrick O'Brien & Sons <x>."


def test_group_line_verifies_a_member_and_rings_the_group(
    client: FlaskClient, session: Session, directory: dict[str, User]
) -> None:
    fields = {"caller_id": "3125550199", "session_id": "s-grp", "group": "500", "pin": "1357"}
    first = send(client, fields, flow="group_line")
    assert first.findtext("parameters/user_parameters/message") == "Welcome, Night shift."
    ring = follow_flow(client, "group_line", "s-grp", first)
    assert ring.findtext("app") == "findme"
    assert ring.findtext("parameters/phone_list") == "3125550500"
    [attempt] = session.scalars(select(VerificationAttempt)).all()
    assert attempt.member_user_id == directory["grace"].id


def follow_flow(
    client: FlaskClient, flow: str, session_id: str, action: etree._Element
) -> etree._Element:
    p_t = action.findtext("parameters/p_t") or ""
    return send(client, {"session_id": session_id, "p_t": p_t}, flow=flow)


# Authentication


def test_missing_or_wrong_secret_gets_403_without_xml(
    client: FlaskClient, session: Session, directory: dict[str, User]
) -> None:
    for key in (None, "", "wrong", KEY + "x"):
        response = raw(client, answers("s-auth", "1001", "2468"), "verify_caller", "POST", key)
        assert response.status_code == 403
        assert b"<" not in response.data
    assert count(session, CallEvent) == 0 and count(session, VerificationAttempt) == 0


def test_basic_auth_is_accepted(client: FlaskClient, directory: dict[str, User]) -> None:
    token = base64.b64encode(f"ifbyphone:{KEY}".encode()).decode()
    response = client.post(
        "/ifbyphone/verify_caller",
        data=answers("s-basic", "1001", "2468"),
        headers={"Authorization": f"Basic {token}"},
    )
    assert response.status_code == 200
    assert etree.fromstring(response.data).findtext("app") == "survo"


def test_secret_in_the_form_body_does_not_count(client: FlaskClient) -> None:
    response = client.post("/ifbyphone/verify_caller", data={"key": KEY, "session_id": "x"})
    assert response.status_code == 403


# Faults and bad input


def test_non_digit_pin_gets_the_fallback_and_is_recorded(
    client: FlaskClient, session: Session, directory: dict[str, User]
) -> None:
    reply = send(client, answers("s-bad-pin", "1001", "12ab"))
    assert message(reply) == "We are sorry, something went wrong. Please call again later."
    assert follow(client, "s-bad-pin", reply).findtext("app") == "hangup"
    call = the_call(session, "s-bad-pin")
    assert call.outcome == "error"
    assert count(session, VerificationAttempt) == 0
    assert call.events[0].payload["pin"] == "***"


@pytest.mark.parametrize(
    "fields",
    [
        {"account": "1001", "pin": "2468"},  # no session_id
        {"session_id": "s-big", "account": "1" * 5000, "pin": "2468"},  # oversized value
    ],
)
def test_malformed_requests_get_the_fallback_and_are_kept(
    client: FlaskClient, session: Session, fields: dict[str, str]
) -> None:
    reply = send(client, fields)
    assert message(reply) == "We are sorry, something went wrong. Please call again later."
    [event] = session.scalars(select(CallEvent)).all()
    assert (event.kind, event.outcome, event.call_id) == ("malformed", "malformed", None)
    assert event.payload["pin"] == "***"
    assert count(session, Call) == 0


def test_unknown_flow_hangs_up_and_is_kept(client: FlaskClient, session: Session) -> None:
    reply = send(client, answers("s-nf", "1001", "2468"), flow="no_such_flow")
    assert reply.findtext("app") == "hangup"
    [event] = session.scalars(select(CallEvent)).all()
    assert event.notes == {"error": "unknown flow 'no_such_flow'"}
    assert event.payload["pin"] == event.payload["account"] == "***"
    assert event.payload["session_id"] == "s-nf"


def test_a_malformed_request_sent_again_is_kept_once_and_answered_alike(
    client: FlaskClient, session: Session
) -> None:
    delivered = answers("s-nf2", "1001", "2468")
    first = send(client, delivered, flow="no_such_flow")
    again = send(client, delivered, flow="no_such_flow")
    assert etree.tostring(again) == etree.tostring(first)
    [event] = session.scalars(select(CallEvent)).all()
    assert (event.kind, event.payload["session_id"]) == ("malformed", "s-nf2")


def test_wrong_method_and_oversized_body_still_answer_xml(client: FlaskClient) -> None:
    deleted = client.delete(f"/ifbyphone/verify_caller?key={KEY}")
    assert deleted.status_code == 405
    assert etree.fromstring(deleted.data).findtext("app") == "hangup"
    huge = client.post(f"/ifbyphone/verify_caller?key={KEY}", data={"x": "1" * 200_000})
    assert huge.status_code == 413
    assert etree.fromstring(huge.data).findtext("app") == "hangup"


def test_database_down_still_answers_the_flows_apology_and_resumes_it(
    app: Flask, client: FlaskClient, directory: dict[str, User]
) -> None:
    with database_down(app):
        reply = send(client, answers("s-down", "1001", "2468"))
        assert message(reply) == "We are sorry, something went wrong. Please call again later."
        # The apology's p_t carries the rest of the sequence while the database is away.
        assert follow(client, "s-down", reply).findtext("app") == "hangup"


def test_pins_are_never_stored_in_events(
    client: FlaskClient, session: Session, directory: dict[str, User]
) -> None:
    send(client, answers("s-mask", "1001", "2468"))
    send(client, answers("s-mask", "1001", "13579"))
    for event in session.scalars(select(CallEvent)):
        assert "2468" not in str(event.payload) and "13579" not in str(event.payload)
        assert event.payload["pin"] == "***" and "key" not in event.payload


def test_a_verification_step_costs_few_round_trips(
    app: Flask, client: FlaskClient, session: Session, directory: dict[str, User]
) -> None:
    """A new call, its account and PIN checked, the attempt and the turn stored:
    on PostgreSQL the call is found or made in one statement, and its changes
    go with the turn's event in another (each a round trip saved, bench/)."""
    with app.app_context():
        engine = get_engine()
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement.split(None, 1)[0].upper())

    sqlalchemy_event.listen(engine, "before_cursor_execute", note)
    try:
        assert message(send(client, answers("s-trips", "1001", "2468"))) is not None
    finally:
        sqlalchemy_event.remove(engine, "before_cursor_execute", note)
    sent = [word for word in sent if word not in ("BEGIN", "PRAGMA")]
    if engine.dialect.name == "postgresql":
        # found-or-made call; user and phones; attempt; call changes + event
        assert sent == ["WITH", "SELECT", "INSERT", "WITH"]
    else:
        assert sent == ["INSERT", "SELECT", "INSERT", "UPDATE", "INSERT"]
    call = the_call(session, "s-trips")
    assert call.outcome == "verified"
    assert count(session, CallEvent) == 1
