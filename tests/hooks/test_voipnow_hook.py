"""The VoipNow web hook end to end: Call Interactive requests as VoipNow sends
them, replies parsed as XML, and the rows they leave (on SQLite and PostgreSQL).

The IVR collects the digits into variables and calls Glue with them in the URL
(`&account=$account&pin=$pin&glue_turn=$glue_turn`); an unset variable arrives
as `null`. `IvrCall` plays that IVR, variables and all.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import create_app
from app.dialects.voipnow import HANGUP_STATUSES
from app.models import Call, CallEvent, User, VerificationAttempt
from tests.helpers.database import database_down
from tests.helpers.directory import add_group, add_user
from tests.helpers.settings import PROJECT_ROOT, TEST_SECRETS

KEY = TEST_SECRETS["VOIPNOW_SECRET"]
FLOWS = PROJECT_ROOT / "survo_forms"
# survo_forms/verify_caller.yaml's voipnow block
ASK, TRANSFER, VOICEMAIL = "glue_ask", "glue_transfer", "glue_voicemail"
# The IVR variables the admin's URL sends (besides VoipNow's own fields).
URL_VARIABLES = ("account", "pin", "group", "glue_turn")
APOLOGY = "We are sorry, something went wrong. Please call again later."


@pytest.fixture
def directory(session: Session) -> dict[str, User]:
    ada = add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    grace = add_user(session, "1002", "Grace Hopper", "1357", "+13125550102")
    obrien = add_user(session, "1003", "Patrick O'Brien & Sons <x>", "8642", "+13125550103")
    add_group(session, "500", "Night shift", "5050", "+13125550500", members=(ada, grace))
    return {"ada": ada, "grace": grace, "obrien": obrien}


def event(call_id: str, status: str = "CALLING", **extra: str) -> dict[str, str]:
    """VoipNow's own fields of a call event."""
    return {
        "CallID": call_id,
        "CallerIDNum": "3125550199",
        "CallerIDName": "Caller",
        "CalledDID": "3125550000",
        "CalledExtension": "0003*001",
        "CalledNumber": "3125550000",
        "CallerExtension": "",
        "CallFlow": "IN",
        "CallStatus": status,
        "CallAPIID": "7",
        **extra,
    }


def _raw(
    client: FlaskClient,
    fields: dict[str, str],
    flow: str = "verify_caller",
    hook: str = "dial-in",
    method: str = "POST",
    key: str | None = KEY,
    url_fields: dict[str, str] | None = None,
) -> Any:
    """GET: everything in the query. POST: VoipNow's fields in the body, and the
    URL's own query (the key, the `$variables`) where the admin wrote it."""
    query = {"key": key} if key is not None else {}
    query |= url_fields or {}
    path = f"/voipnow/{flow}/{hook}"
    if method == "GET":
        return client.get(path, query_string={**query, **fields})
    return client.open(path, method=method, query_string=query, data=fields)


def parse(response: Any) -> etree._Element:
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert response.data.startswith(b"<?xml")
    root = etree.fromstring(response.data)
    assert root.tag == "Response"
    return root


class IvrCall:
    """One call through the admin's IVR: variables set by Glue's SetVar are
    kept, and each Call Interactive request sends them in the URL."""

    def __init__(
        self, client: FlaskClient, call_id: str, flow: str = "verify_caller", method: str = "POST"
    ) -> None:
        self.client, self.call_id, self.flow, self.method = client, call_id, flow, method
        self.variables: dict[str, str] = {}

    def keys_in(self, hook: str = "dial-in", **digits: str) -> etree._Element:
        """The caller keys digits ("Record digits to variable"), then the IVR calls Glue."""
        self.variables |= digits
        url_fields = {name: self.variables.get(name) or "null" for name in URL_VARIABLES}
        reply = parse(
            _raw(
                self.client,
                event(self.call_id),
                self.flow,
                hook,
                self.method,
                url_fields=url_fields,
            )
        )
        first = reply[0]
        assert (first.tag, first.get("name")) == ("SetVar", "glue_turn")
        for verb in reply.iter("SetVar"):
            self.variables[verb.get("name", "")] = verb.text or ""
        return reply

    def hangs_up(self, status: str = "ANSWER") -> etree._Element:
        return hang_up(self.client, self.call_id, status, self.flow)


def hang_up(
    client: FlaskClient, call_id: str, status: str = "ANSWER", flow: str = "verify_caller"
) -> etree._Element:
    reply = parse(_raw(client, event(call_id, status, EventType="hangup"), flow, "hangup"))
    assert len(reply) == 0 and not reply.text  # <Response/>
    return reply


def said(reply: etree._Element) -> list[str]:
    return [verb.text or "" for verb in reply.iter("PlayTTS")]


def variables(reply: etree._Element) -> dict[str, str]:
    return {verb.get("name", ""): verb.text or "" for verb in reply.iter("SetVar")}


def jumped_to(reply: etree._Element) -> str | None:
    last = reply[-1]
    assert last.tag == "Jump", etree.tostring(reply)
    assert (last.get("option"), last.get("priority")) == ("s", "1")
    return last.get("context")


def hung_up(reply: etree._Element) -> bool:
    return reply[-1].tag == "Hangup"


def the_call(session: Session, call_id: str) -> Call:
    session.commit()  # end the test's read snapshot, to see what requests wrote
    return session.scalars(
        select(Call).where(Call.platform == "voipnow", Call.platform_call_id == call_id)
    ).one()


def count(session: Session, model: type, *where: Any) -> int:
    session.commit()
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_right_pin_says_thanks_then_transfers_to_the_users_phone(
    client: FlaskClient, session: Session, directory: dict[str, User], method: str
) -> None:
    reply = IvrCall(client, f"v-ok-{method}", method=method).keys_in(account="1001", pin="2468")

    assert [verb.tag for verb in reply] == ["SetVar", "PlayTTS", "SetVar", "Jump"]
    assert said(reply) == ["Thank you, Ada Lovelace."]
    assert variables(reply) == {"glue_turn": "1", "transfer_to": "13125550101"}
    assert jumped_to(reply) == TRANSFER

    call = the_call(session, f"v-ok-{method}")
    assert (call.flow, call.outcome, call.status) == ("verify_caller", "verified", "ended")
    assert call.caller_number == "+13125550199" and call.ended_at is not None
    [turn] = call.events
    assert (turn.kind, turn.outcome, turn.payload["pin"]) == ("turn", "verified", "***")
    assert "key" not in turn.payload and turn.payload["glue_turn"] == "null"
    [attempt] = session.scalars(select(VerificationAttempt)).all()
    assert (attempt.call_id, attempt.user_id, attempt.outcome) == (
        call.id,
        directory["ada"].id,
        "verified",
    )


def test_dial_out_event_runs_the_flow_too(client: FlaskClient, directory: dict[str, User]) -> None:
    reply = IvrCall(client, "v-out").keys_in("dial-out", account="1001", pin="2468")
    assert said(reply) == ["Thank you, Ada Lovelace."] and jumped_to(reply) == TRANSFER


def test_same_wrong_pin_twice_in_a_call_counts_twice_then_fails_to_voicemail(
    client: FlaskClient, session: Session, directory: dict[str, User]
) -> None:
    call = IvrCall(client, "v-bad")
    for attempt in range(2):
        reply = call.keys_in(account="1001", pin="0000")
        assert said(reply) == ["That did not match. Please try again."]
        assert jumped_to(reply) == ASK
        # The next request comes back with the turn this reply set.
        assert variables(reply)["glue_turn"] == str(attempt + 1)
        assert the_call(session, "v-bad").state["tries_used"] == attempt + 1

    reply = call.keys_in(account="1001", pin="0000")
    assert said(reply) == ["Sorry, we could not verify you."]
    assert variables(reply)["voicemail_box"] == "200"
    assert jumped_to(reply) == VOICEMAIL
    row = the_call(session, "v-bad")
    assert (row.outcome, row.status) == ("failed", "ended")
    assert count(session, VerificationAttempt) == 3


def test_five_wrong_pins_over_two_calls_lock_even_the_right_pin(
    client: FlaskClient, session: Session, directory: dict[str, User]
) -> None:
    first = IvrCall(client, "v-l1")
    ends = [jumped_to(first.keys_in(account="1001", pin="0000")) for _ in range(3)]
    assert ends == [ASK, ASK, VOICEMAIL]
    second = IvrCall(client, "v-l2")
    assert jumped_to(second.keys_in(account="1001", pin="0000")) == ASK
    locked = second.keys_in(account="1001", pin="0000")
    assert said(locked) == ["This account is locked. Please try again later."]
    assert hung_up(locked)

    right_pin = IvrCall(client, "v-l3").keys_in(account="1001", pin="2468")
    assert said(right_pin) == said(locked) and hung_up(right_pin)
    assert the_call(session, "v-l3").outcome == "locked"
    reasons = session.scalars(select(VerificationAttempt.reason).order_by(VerificationAttempt.id))
    assert list(reasons) == ["wrong_pin"] * 4 + ["locked_now", "locked"]


@pytest.mark.parametrize("unset", ["null", ""])
def test_unset_variables_are_no_input(
    client: FlaskClient, session: Session, directory: dict[str, User], unset: str
) -> None:
    fields = event("v-na")
    reply = parse(_raw(client, fields, url_fields={"account": unset, "pin": unset}))
    assert said(reply) == ["We did not hear anything. Goodbye."] and hung_up(reply)
    assert the_call(session, "v-na").outcome == "no_input"
    assert count(session, VerificationAttempt) == 0


def test_a_retry_is_asked_with_the_answers_cleared(
    client: FlaskClient, session: Session, directory: dict[str, User]
) -> None:
    """A caller who keys nothing on the retry is silent, not the old PIN again."""
    call = IvrCall(client, "v-clear")
    reply = call.keys_in(account="1001", pin="0000")
    assert variables(reply)["pin"] == variables(reply)["account"] == ""
    reply = call.keys_in()  # nothing keyed this time
    assert said(reply) == ["We did not hear anything. Goodbye."]
    assert the_call(session, "v-clear").state["tries_used"] == 1


def test_a_retried_identical_request_is_answered_the_same_and_counted_once(
    client: FlaskClient, session: Session, directory: dict[str, User]
) -> None:
    url_fields = {"account": "1001", "pin": "0000", "glue_turn": "null"}
    first = _raw(client, event("v-dup"), url_fields=url_fields)
    again = _raw(client, event("v-dup"), url_fields=url_fields)
    assert parse(first) is not None and first.data == again.data
    assert count(session, CallEvent) == 1
    assert count(session, VerificationAttempt) == 1
    assert the_call(session, "v-dup").state["tries_used"] == 1
    user = session.scalars(select(User).where(User.account_number == "1001")).one()
    session.refresh(user)
    assert user.failed_attempts == 1


def test_names_with_xml_special_characters_are_read_intact(
    client: FlaskClient, directory: dict[str, User]
) -> None:
    reply = IvrCall(client, "v-xml").keys_in(account="1003", pin="8642")
    assert said(reply) == ["Thank you, Patrick O'Brien & Sons <x>."]


def test_group_line_verifies_a_member_and_rings_the_group(
    client: FlaskClient, session: Session, directory: dict[str, User]
) -> None:
    reply = IvrCall(client, "v-grp", flow="group_line").keys_in(group="500", pin="1357")
    assert said(reply) == ["Welcome, Night shift."]
    assert variables(reply)["findme_to"] == "13125550500"
    assert jumped_to(reply) == "glue_findme"
    [attempt] = session.scalars(select(VerificationAttempt)).all()
    assert attempt.member_user_id == directory["grace"].id


# Hang-up events


@pytest.mark.parametrize(
    ("call_status", "platform_status"),
    [*HANGUP_STATUSES.items(), ("SOMETHINGNEW", "completed"), ("", "completed")],
)
def test_hangup_closes_the_call_with_its_status(
    client: FlaskClient,
    session: Session,
    directory: dict[str, User],
    call_status: str,
    platform_status: str,
) -> None:
    call = IvrCall(client, "v-hup")
    call.keys_in(account="1001", pin="0000")  # a retry: the call is still open
    assert the_call(session, "v-hup").status == "active"

    call.hangs_up(call_status)

    row = the_call(session, "v-hup")
    assert (row.platform_status, row.status) == (platform_status, "ended")
    assert row.ended_at is not None and row.outcome == "retry"
    status_event = row.events[-1]
    assert (status_event.kind, status_event.outcome) == ("status", platform_status)
    assert status_event.payload["CallStatus"] == call_status


def test_a_duplicate_hangup_is_stored_once(
    client: FlaskClient, session: Session, directory: dict[str, User]
) -> None:
    call = IvrCall(client, "v-hup2")
    call.keys_in(account="1001", pin="2468")
    call.hangs_up()
    call.hangs_up()
    assert count(session, CallEvent, CallEvent.kind == "status") == 1
    assert the_call(session, "v-hup2").platform_status == "completed"


def test_hangup_of_a_call_never_seen_is_kept(client: FlaskClient, session: Session) -> None:
    hang_up(client, "v-stranger", "NOANSWER")
    row = the_call(session, "v-stranger")
    assert (row.flow, row.platform_status, row.status) == ("-", "no-answer", "ended")


def test_hangup_masks_secret_answers_and_drops_the_key(
    client: FlaskClient, session: Session, directory: dict[str, User]
) -> None:
    fields = event("v-mask", "ANSWER")
    reply = _raw(client, fields, hook="hangup", url_fields={"account": "1001", "pin": "2468"})
    assert len(parse(reply)) == 0
    [stored] = session.scalars(select(CallEvent)).all()
    assert stored.payload["pin"] == "***" and stored.payload["account"] == "1001"
    assert "key" not in stored.payload
    # Without a flow nobody knows which field is the PIN: every answer is masked.
    _raw(client, event("v-mask2"), flow="nope", hook="hangup", url_fields={"pin": "2468"})
    session.commit()
    assert "2468" not in str([e.payload for e in session.scalars(select(CallEvent))])


@pytest.mark.parametrize("call_id", [None, "", "x" * 129])
def test_hangup_without_a_usable_call_id_still_answers(
    client: FlaskClient, session: Session, call_id: str | None
) -> None:
    fields = {k: v for k, v in event(call_id or "").items() if call_id is not None or k != "CallID"}
    assert len(parse(_raw(client, fields, hook="hangup"))) == 0
    assert count(session, CallEvent) == 0 and count(session, Call) == 0


def test_hangup_answers_even_when_the_database_is_down(app: Flask, client: FlaskClient) -> None:
    with database_down(app):
        assert len(hang_up(client, "v-down")) == 0


# Authentication


@pytest.mark.parametrize("hook", ["dial-in", "dial-out", "hangup"])
def test_missing_or_wrong_secret_gets_403_without_xml(
    client: FlaskClient, session: Session, directory: dict[str, User], hook: str
) -> None:
    url_fields = {"account": "1001", "pin": "2468"}
    for key in (None, "", "wrong", KEY + "x", TEST_SECRETS["IFBYPHONE_SECRET"]):
        response = _raw(client, event("v-auth"), hook=hook, key=key, url_fields=url_fields)
        assert response.status_code == 403
        assert b"<" not in response.data
    assert count(session, CallEvent) == 0 and count(session, VerificationAttempt) == 0


def test_basic_auth_is_accepted(client: FlaskClient, directory: dict[str, User]) -> None:
    token = base64.b64encode(f"voipnow:{KEY}".encode()).decode()
    response = client.post(
        "/voipnow/verify_caller/dial-in",
        query_string={"account": "1001", "pin": "2468"},
        data=event("v-basic"),
        headers={"Authorization": f"Basic {token}"},
    )
    assert said(parse(response)) == ["Thank you, Ada Lovelace."]


def test_secret_in_the_form_body_does_not_count(client: FlaskClient) -> None:
    response = client.post("/voipnow/verify_caller/dial-in", data={"key": KEY, "CallID": "x"})
    assert response.status_code == 403


# Faults and bad input


def test_no_call_id_gets_the_fallback_and_is_kept(
    client: FlaskClient, session: Session, directory: dict[str, User]
) -> None:
    fields = {k: v for k, v in event("").items() if k != "CallID"}
    reply = parse(_raw(client, fields, url_fields={"account": "1001", "pin": "2468"}))
    assert said(reply) == [APOLOGY] and hung_up(reply)
    [stored] = session.scalars(select(CallEvent)).all()
    assert (stored.kind, stored.outcome, stored.call_id) == ("malformed", "malformed", None)
    assert stored.payload["pin"] == "***"
    assert count(session, Call) == 0


def test_non_digit_pin_gets_the_fallback(
    client: FlaskClient, session: Session, directory: dict[str, User]
) -> None:
    reply = IvrCall(client, "v-bad-pin").keys_in(account="1001", pin="12ab")
    assert said(reply) == [APOLOGY] and hung_up(reply)
    assert the_call(session, "v-bad-pin").outcome == "error"
    assert count(session, VerificationAttempt) == 0


def test_unknown_flow_hangs_up(client: FlaskClient) -> None:
    reply = parse(_raw(client, event("v-nf"), flow="no_such_flow"))
    assert [verb.tag for verb in reply] == ["Hangup"]


def test_a_flow_without_a_voipnow_block_is_refused_with_a_hangup(
    app_config: dict[str, object], tmp_path: Path
) -> None:
    flows_dir = tmp_path / "flows"
    flows_dir.mkdir()
    text = (FLOWS / "verify_caller.yaml").read_text()
    (flows_dir / "ifbyphone_only.yaml").write_text(text.split("\nvoipnow:")[0] + "\n")
    app = create_app({**app_config, "FLOWS_DIR": str(flows_dir)}, instance_path=str(tmp_path / "i"))
    try:
        client = app.test_client()
        reply = parse(_raw(client, event("v-nb"), flow="ifbyphone_only"))
        assert [verb.tag for verb in reply] == ["Hangup"]
        session = app.extensions["glue.sessionmaker"]()
        [stored] = session.scalars(select(CallEvent)).all()
        assert stored.notes == {"error": "flow 'ifbyphone_only' has no voipnow block"}
        session.close()
    finally:
        app.extensions["glue.engine"].dispose()


def test_wrong_method_and_unknown_event_still_answer_xml(client: FlaskClient) -> None:
    put = client.put(f"/voipnow/verify_caller/dial-in?key={KEY}")
    assert put.status_code == 405
    assert [verb.tag for verb in etree.fromstring(put.data)] == ["Hangup"]
    unknown = client.post(f"/voipnow/verify_caller/transfer?key={KEY}", data=event("v-x"))
    assert unknown.status_code == 404
    assert [verb.tag for verb in etree.fromstring(unknown.data)] == ["Hangup"]


def test_database_down_still_answers_the_flows_apology(
    app: Flask, client: FlaskClient, directory: dict[str, User]
) -> None:
    with database_down(app):
        reply = IvrCall(client, "v-down").keys_in(account="1001", pin="2468")
        assert said(reply) == [APOLOGY] and hung_up(reply)


def test_a_request_with_a_stale_turn_changes_nothing(
    client: FlaskClient, session: Session, directory: dict[str, User]
) -> None:
    call = IvrCall(client, "v-stale")
    call.keys_in(account="1001", pin="0000")  # turn 1 set
    current = call.keys_in(account="1001", pin="1111")  # turn 2 set
    call.variables["glue_turn"] = "1"  # a late copy of the request for turn 1
    late = call.keys_in(account="1001", pin="2222")
    assert etree.tostring(late) == etree.tostring(current)
    assert count(session, VerificationAttempt) == 2
    assert the_call(session, "v-stale").state["tries_used"] == 2
