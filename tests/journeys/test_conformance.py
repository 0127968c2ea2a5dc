"""One flow, every platform: the same caller journeys reach the same outcomes.

Each scenario is played on IfbyPhone, VoipNow, didML and TwiML as that platform
sends it (tests/*caller* drivers), and must produce one expected transcript —
what the caller hears last and where the call goes — and one expected set of
database rows. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.dialects.registry import DIALECTS
from app.flows.runner import MAX_UNREAD_FIELDS
from app.models import Call, CallEvent, User, VerificationAttempt
from tests.helpers.directory import add_group, add_user
from tests.helpers.ifbyphone import Caller as IfbyPhoneCaller
from tests.helpers.journeys import (
    PLATFORMS,
    SCENARIOS,
    THANKS,
    Driver,
    Heard,
    voice_heard,
)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("name", SCENARIOS)
def test_every_platform_reaches_the_same_outcome_and_rows(
    client: FlaskClient, session: Session, platform: str, name: str
) -> None:
    ada = add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    grace = add_user(session, "1002", "Grace Hopper", "1357", "+13125550102")
    add_group(session, "500", "Night shift", "5050", "+13125550500", members=(ada, grace))
    scenario = SCENARIOS[name]
    heard = scenario.play(lambda call_id: Driver(client, platform, scenario.flow, call_id))

    assert heard == scenario.heard
    session.commit()
    calls = session.scalars(select(Call).order_by(Call.platform_call_id)).all()
    assert [(c.outcome, c.status, c.state["tries_used"]) for c in calls] == scenario.calls
    assert {c.platform for c in calls} == {platform}
    attempts = session.scalars(select(VerificationAttempt).order_by(VerificationAttempt.id))
    assert [(a.claim_type, a.claimed, a.outcome, a.reason) for a in attempts] == (scenario.attempts)
    user = session.scalars(select(User).where(User.account_number == "1001")).one()
    assert user.lockouts == scenario.lockouts


# Fields Glue does not read, and counters that are no numbers


# As long as a real one: a JSON token of over a thousand characters.
CALL_TOKEN = json.dumps(
    {
        "parentCallInfoToken": "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9." + "a" * 1100,
        "identityHeaderTokens": ["eyJhbGciOiJFUzI1NiIsInBwdCI6InNoYWtlbiJ9." + "b" * 400],
    }
)
ADD_ONS = json.dumps(
    {
        "status": "successful",
        "message": None,
        "code": None,
        "results": {"ekata_reverse_phone": {"status": "successful", "result": {"x": "c" * 3000}}},
    }
)
UNREAD = {
    "CallToken": CALL_TOKEN,
    "AddOns": ADD_ONS,
    "StirVerstat": "TN-Validation-Passed-A",
    "FromCity": "CHICAGO",
    "_dropped": "a field of the platform's own",  # not Glue's count of fields not stored
    "Unknown": "u" * 5000,
    "n" * 300: "a long name",
    **{f"Extra{i:03d}": str(i) for i in range(80)},
}
MAX_FIELD_LENGTH = 256  # GLUE_MAX_FIELD_LENGTH's default
PLATFORM_FIELDS = {dialect.NAME: dialect.PLATFORM_FIELDS for dialect in DIALECTS}


def cut(text: str) -> str:
    return f"{text[:MAX_FIELD_LENGTH]}…[truncated {len(text) - MAX_FIELD_LENGTH} chars]"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_fields_glue_does_not_read_never_refuse_a_call_and_are_stored_capped(
    client: FlaskClient, session: Session, platform: str
) -> None:
    """A real Twilio inbound call's CallToken, add-on results, and more fields
    than anyone sends: the call goes on as without them."""
    assert len(CALL_TOKEN) >= 1500
    add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    driver = Driver(client, platform, "verify_caller", "c-unread", extra=UNREAD)

    assert driver.attempt("1001", "2468") == THANKS
    if driver.voice is not None:  # Glue asked the flow's first question itself
        first = etree.fromstring(driver.voice.bodies[0])
        assert [el.tag for el in first] == ["Gather", "Redirect"]
        assert first.findtext("Gather/Say") == "Please enter your account number, then press pound."

    session.commit()
    call = session.scalars(select(Call)).one()
    assert (call.outcome, call.status) == ("verified", "ended")
    event = session.scalars(select(CallEvent).order_by(CallEvent.id)).first()
    assert event is not None and (event.kind, event.call_id) == ("turn", call.id)
    payload = event.payload
    assert payload["CallToken"] == cut(CALL_TOKEN)
    assert payload["AddOns"] == cut(ADD_ONS)
    assert payload["Unknown"] == cut("u" * 5000)
    assert payload[cut("n" * 300)] == "a long name"
    assert payload["StirVerstat"] == "TN-Validation-Passed-A"
    assert payload["_dropped"] == "a field of the platform's own"
    unread = [name for name in UNREAD if name not in PLATFORM_FIELDS[platform]]
    kept = [name for name in unread[:MAX_UNREAD_FIELDS] if len(name) <= MAX_FIELD_LENGTH]
    assert set(kept) <= payload.keys()
    assert not set(unread[MAX_UNREAD_FIELDS:]) & payload.keys()
    dropped = len(unread) - MAX_UNREAD_FIELDS
    assert event.notes == {"dropped": dropped}
    stored = json.dumps([e.payload for e in call.events])
    assert "2468" not in stored  # the PIN is masked as ever


APOLOGY_AND_GOODBYE = Heard(
    ("We are sorry, something went wrong. Please call again later.",), ("hangup",)
)


def _attempt_with_turn(driver: Driver, turn: str) -> Heard:
    """A claim and the right PIN, sent with `turn` as the platform's turn counter."""
    if driver.platform == "ifbyphone":
        driver.ifbyphone = IfbyPhoneCaller(driver.client, driver.call_id, driver.flow)
        driver.ifbyphone.p_t = f"turn|{turn}"
        return driver.attempt("1001", "2468")
    if driver.platform == "voipnow":
        driver.voipnow_turn = turn
        return driver.attempt("1001", "2468")
    call = driver._voice()
    assert call.last is not None
    action = call.last.find("Gather").get("action", "")  # type: ignore[union-attr]
    return voice_heard(
        call.post(re.sub(r"turn=[0-9]+", f"turn={quote(turn)}", action), Digits="1001")
    )


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize(
    "turn",
    ["9" * 5000, "\u00b2", "\u0661\u0662", "9" * 10, "-1"],
    ids=["5000 digits", "superscript", "arabic-indic", "10 digits", "negative"],
)
def test_a_turn_counter_that_is_no_bounded_ascii_number_gets_the_flows_error_steps(
    client: FlaskClient,
    session: Session,
    caplog: pytest.LogCaptureFixture,
    platform: str,
    turn: str,
) -> None:
    add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    driver = Driver(client, platform, "verify_caller", "c-turn")
    with caplog.at_level(logging.INFO):
        assert _attempt_with_turn(driver, turn) == APOLOGY_AND_GOODBYE
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    session.commit()
    kinds = session.scalars(select(CallEvent.kind).order_by(CallEvent.id)).all()
    assert "malformed" in kinds
    assert session.scalars(select(VerificationAttempt)).all() == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_an_answer_the_flow_reads_that_is_too_long_gets_the_flows_error_steps(
    client: FlaskClient, session: Session, platform: str
) -> None:
    """Unlike a field Glue does not read: the account asked for, 257 keys long."""
    add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    # A field of the platform's own that happens to bear the name of a note.
    driver = Driver(client, platform, "verify_caller", "c-long", extra={"_error": "sent"})
    account = "1" * (MAX_FIELD_LENGTH + 1)
    if platform in ("didml", "twiml"):  # the account, keyed in: no PIN is asked for
        heard = voice_heard(driver._voice().press(account))
    else:
        heard = driver.attempt(account, "2468")
    assert heard == APOLOGY_AND_GOODBYE
    session.commit()
    malformed = session.scalars(select(CallEvent).where(CallEvent.kind == "malformed")).one()
    assert malformed.notes is not None and "longer than 256" in malformed.notes["error"]
    # The platform's own field, masked as every answer of an unreadable request.
    assert malformed.payload["_error"] == "***"
    assert session.scalars(select(VerificationAttempt)).all() == []
