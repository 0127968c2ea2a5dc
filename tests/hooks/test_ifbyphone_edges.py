"""IfbyPhone web hook edge cases: shared SurVos, odd flows, odd deliveries."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Call, CallEvent, User, VerificationAttempt
from tests.helpers.directory import add_group, add_user
from tests.helpers.flows import shipped_copy
from tests.helpers.ifbyphone import KEY, answers, count, follow, message, send, the_call

SURVEY_THEN_SURVO = """
questions:
  - {name: account, type: digits, max_digits: 10}
  - {name: pin, type: digits, min_digits: 4, max_digits: 8, secret: true}
verify: {by: account, claim: account, pin: pin}
on:
  verified: [{say: "Hello {name}."}, {survo: {id: 4300, user_parameters: {who: "{name}"}}}]
  failed: [hangup]
ifbyphone: {survo: 4101, say_survo: 4102}
"""

NO_IFBYPHONE_BLOCK = """
questions:
  - {name: account, type: digits}
  - {name: pin, type: digits, secret: true}
verify: {by: account, claim: account, pin: pin}
on:
  verified: [hangup]
  failed: [hangup]
"""


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    """The shipped flows plus two of this module's own."""
    directory = shipped_copy(tmp_path / "flows")
    (directory / "survey_then_survo.yaml").write_text(SURVEY_THEN_SURVO)
    (directory / "no_ifbyphone.yaml").write_text(NO_IFBYPHONE_BLOCK)
    return directory


@pytest.fixture
def ada(session: Session) -> User:
    return add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")


def test_a_shared_say_survo_posting_to_another_flow_continues_the_calls_own_flow(
    client: FlaskClient, session: Session, ada: User
) -> None:
    add_group(session, "500", "Night shift", "5050", "+13125550500")
    welcome = send(client, {"session_id": "s-x", "group": "500", "pin": "5050"}, flow="group_line")
    # The read-aloud SurVo is configured to post to verify_caller's URL.
    ring = follow(client, "s-x", welcome)
    assert ring.findtext("app") == "findme"
    assert ring.findtext("parameters/phone_list") == "3125550500"
    assert the_call(session, "s-x").flow == "group_line"


def test_a_sequence_ending_in_a_survo_hangs_up_when_it_posts_back(
    client: FlaskClient, session: Session, ada: User
) -> None:
    hello = send(client, answers("s-sv", "1001", "2468"), flow="survey_then_survo")
    assert message(hello) == "Hello Ada Lovelace."
    survo = follow(client, "s-sv", hello)
    assert survo.findtext("parameters/id") == "4300"
    assert survo.findtext("parameters/user_parameters/who") == "Ada Lovelace"
    done = follow(client, "s-sv", survo)
    assert done.findtext("app") == "hangup"
    call = the_call(session, "s-sv")
    assert (call.outcome, call.status) == ("verified", "ended")


def test_a_flow_without_an_ifbyphone_block_hangs_up_and_is_kept(
    client: FlaskClient, session: Session, ada: User
) -> None:
    reply = send(client, answers("s-nb", "1001", "2468"), flow="no_ifbyphone")
    assert reply.findtext("app") == "hangup"
    [event] = session.scalars(select(CallEvent)).all()
    assert event.kind == "malformed" and "no ifbyphone block" in (event.notes or {})["error"]
    assert count(session, VerificationAttempt) == 0


def test_an_overlong_session_id_is_malformed_on_every_database(
    client: FlaskClient, session: Session, ada: User
) -> None:
    reply = send(client, answers("s" * 200, "1001", "2468"))
    assert message(reply) == "We are sorry, something went wrong. Please call again later."
    assert count(session, Call) == 0
    assert session.scalars(select(CallEvent.kind)).all() == ["malformed"]


def test_a_retry_with_a_new_timestamp_is_still_counted_once(
    client: FlaskClient, session: Session, ada: User
) -> None:
    first = answers("s-ts", "1001", "0000")
    again = {**first, "timestamp": "2026-11-21 12:59:59"}
    assert etree.tostring(send(client, first)) == etree.tostring(send(client, again))
    assert count(session, VerificationAttempt) == 1
    assert count(session, CallEvent) == 1


@pytest.mark.parametrize(("account", "pin"), [("NA", "2468"), ("1001", "NA"), ("", "2468")])
def test_any_skipped_answer_is_no_input(
    client: FlaskClient, session: Session, ada: User, account: str, pin: str
) -> None:
    reply = send(client, answers("s-part", account, pin))
    assert message(reply) == "We did not hear anything. Goodbye."
    assert count(session, VerificationAttempt) == 0


def test_concurrent_identical_deliveries_store_one_event_and_one_attempt(
    app: Flask, session: Session, ada: User
) -> None:
    fields = answers("s-race", "1001", "0000")
    barrier = threading.Barrier(8, timeout=30)
    bodies: list[bytes] = []

    def deliver() -> None:
        client = app.test_client()
        barrier.wait()
        bodies.append(client.post(f"/ifbyphone/verify_caller?key={KEY}", data=fields).data)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(bodies) == 8 and len(set(bodies)) == 1
    assert etree.fromstring(bodies[0]).findtext("parameters/id") == "4102"
    session.commit()
    assert session.scalar(select(func.count()).select_from(CallEvent)) == 1
    assert session.scalar(select(func.count()).select_from(VerificationAttempt)) == 1
    user = session.scalars(select(User)).one()
    session.refresh(user)
    assert user.failed_attempts == 1
