"""Real platform requests (tests/fixtures/real/), replayed as whole calls.

Each journey sends the corpus's requests as the platform sends them, with only
the call ids, caller numbers, keyed digits and secrets set to the journey's own
(tests/helpers/real_corpus.py enforces that), against the shipped flows and the
demo directory (`flask demo load`): user 1001 "Ada Lovelace", PIN 2468, phone
+13125550101. Asserts on the parsed XML and the rows left behind; runs on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app.dialects.didml import DIDML
from app.dialects.ifbyphone import decode_pass_through
from app.models import Call, CallEvent, VerificationAttempt
from tests.helpers.real_corpus import PLATFORMS, RealRequest, load, names, send
from tests.helpers.settings import TEST_SECRETS

TOKEN = TEST_SECRETS["TWILIO_AUTH_TOKEN"]
KEYS = {
    "didml": TEST_SECRETS["DIDML_SECRET"],
    "voipnow": TEST_SECRETS["VOIPNOW_SECRET"],
    "ifbyphone": TEST_SECRETS["IFBYPHONE_SECRET"],
}
TWILIO_STATUSES = [
    "queued", "initiated", "ringing", "in-progress", "completed",
    "busy", "failed", "no-answer", "canceled",
]  # fmt: skip
FINAL = {"completed", "busy", "failed", "no-answer", "canceled"}
DIDML_STATUSES = ["initiated", "ringing", "answered", "completed"]

THANKS = "Thank you, Ada Lovelace."
RETRY = "That did not match. Please try again."
SILENT = "We did not hear anything. Goodbye."
VERIFIED = ("account", "1001", "verified", "pin")
WRONG = ("account", "1001", "rejected", "wrong_pin")


@pytest.fixture
def demo(runner: FlaskCliRunner) -> None:
    """The demo directory, loaded as `make run` loads it."""
    result = runner.invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output


def reply(response: TestResponse, root: str) -> etree._Element:
    """The parsed XML of a 200 reply whose root element is `root`."""
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/xml"
    element = etree.fromstring(response.data)
    assert element.tag == root, response.data
    return element


def the_call(session: Session, platform: str, call_id: str) -> Call:
    session.commit()  # end the test's read snapshot, to see what requests wrote
    return session.scalars(
        select(Call).where(Call.platform == platform, Call.platform_call_id == call_id)
    ).one()


def attempts(session: Session) -> list[tuple[str, str, str, str]]:
    session.commit()
    rows = session.scalars(select(VerificationAttempt).order_by(VerificationAttempt.id))
    return [(a.claim_type, a.claimed, a.outcome, a.reason) for a in rows]


def events(session: Session, call: Call) -> list[CallEvent]:
    session.commit()
    return list(
        session.scalars(
            select(CallEvent).where(CallEvent.call_id == call.id).order_by(CallEvent.id)
        )
    )


# --- the corpus itself ----------------------------------------------------------


@pytest.mark.parametrize("name", names())
def test_every_request_names_its_source_and_reaches_a_glue_route(name: str) -> None:
    request = load(name)
    assert request.source.strip() and request.adapted.strip()
    assert request.path.startswith(f"/{request.platform}/")
    assert request.method in {"GET", "POST", "PUT"}
    if request.method == "GET":
        assert not request.form
    else:
        assert request.form
        assert request.headers.get("Content-Type") == "application/x-www-form-urlencoded"


def test_the_corpus_covers_every_platform_and_documented_status() -> None:
    stems = {name.split("/", 1)[1] for name in names()}
    assert {name.split("/", 1)[0] for name in names()} == set(PLATFORMS)
    for status in TWILIO_STATUSES:
        stem = f"status_{status.replace('-', '_')}"
        assert {stem, f"{stem}_child"} <= stems
        assert load(f"twiml/{stem}").form["CallStatus"] == status
        assert load(f"twiml/{stem}_child").form["ParentCallSid"]
    for status in DIDML_STATUSES:
        assert {f"status_{status}_a_leg", f"status_{status}_b_leg"} <= stems
    # The point of the Twilio inbound samples: fields longer than any Glue reads.
    assert len(load("twiml/inbound").form["CallToken"]) > 300
    assert len(load("twiml/inbound_addons").form["AddOns"]) > 400


def test_only_ids_numbers_digits_and_secrets_may_be_substituted() -> None:
    inbound = load("twiml/inbound")
    assert inbound.substituted(CallSid="CA-x").form["CallSid"] == "CA-x"
    with pytest.raises(KeyError):
        inbound.substituted(CallToken="short")
    with pytest.raises(KeyError):
        inbound.substituted(Digits="1")  # not in the recorded request: no adding


# --- Twilio ---------------------------------------------------------------------


class TwilioCall:
    """One inbound Twilio call: the recorded inbound request, then the recorded
    action requests sent to the URLs Glue's replies name."""

    def __init__(self, client: FlaskClient, call_sid: str, inbound: str = "twiml/inbound"):
        self.client, self.call_sid = client, call_sid
        self.inbound = load(inbound).substituted(CallSid=call_sid)
        self.last: etree._Element | None = None

    def start(self) -> etree._Element:
        return self._send(self.inbound)

    def press(self, digits: str) -> etree._Element:
        return self._send(self._to_gather("twiml/gather_digits").substituted(Digits=digits))

    def speak(self) -> etree._Element:
        return self._send(self._to_gather("twiml/gather_speech"))

    def hang_up_recording(self) -> etree._Element:
        assert self.last is not None
        record = self.last.find("Record")
        assert record is not None, "the last reply records nothing"
        recorded = load("twiml/record_action").substituted(CallSid=self.call_sid)
        return self._send(recorded.at(record.get("action", "")))

    def _to_gather(self, name: str) -> RealRequest:
        assert self.last is not None
        gather = self.last.find("Gather")
        assert gather is not None, "the last reply asks nothing"
        return load(name).substituted(CallSid=self.call_sid).at(gather.get("action", ""))

    def _send(self, request: RealRequest) -> etree._Element:
        self.last = reply(send(self.client, request, TOKEN), "Response")
        return self.last


def says(response: etree._Element) -> list[str]:
    """What the caller hears outside the prompts of a `<Gather>`."""
    return [el.text or "" for el in response.findall("Say")]


def asks(response: etree._Element, question: str) -> bool:
    gather = response.find("Gather")
    return gather is not None and f"question={question}" in (gather.get("action") or "")


def twilio_status(client: FlaskClient, name: str, **values: str) -> None:
    response = send(client, load(name).substituted(**values), TOKEN)
    assert (response.status_code, response.data) == (204, b"")


@pytest.mark.parametrize("inbound", ["twiml/inbound", "twiml/inbound_forwarded"])
def test_twilio_inbound_call_is_verified_end_to_end(
    client: FlaskClient, session: Session, demo: None, inbound: str
) -> None:
    call = TwilioCall(client, "CA0123456789abcdef0123456789abcdef", inbound)
    first = call.start()
    assert asks(first, "account")
    assert first.find("Gather").get("input") == "dtmf"  # type: ignore[union-attr]
    assert asks(call.press("1001"), "pin")
    done = call.press("2468")
    assert says(done) == [THANKS]
    assert [n.text for n in done.iterfind("Dial/Number")] == ["+13125550101"]
    assert done[-1].tag == "Hangup"

    # The dialled leg reports its progress, then the inbound call ends.
    child = "CA3f6b6a3e2c1d4b9e8a7f6e5d4c3b2a19"
    for status in ("initiated", "ringing", "in_progress", "completed"):
        twilio_status(
            client, f"twiml/status_{status}_child", CallSid=child, ParentCallSid=call.call_sid
        )
    twilio_status(client, "twiml/status_completed", CallSid=call.call_sid)

    row = the_call(session, "twiml", call.call_sid)
    assert (row.flow, row.outcome, row.status) == ("verify_caller", "verified", "ended")
    assert (row.platform_status, row.duration_seconds) == ("completed", 28)
    assert row.caller_number == call.inbound.form["From"]
    kinds = [(e.kind, e.outcome) for e in events(session, row)]
    assert kinds[-1] == ("status", "completed")
    assert [k for k, _ in kinds[:-1]] == ["turn"] * 3
    assert attempts(session) == [VERIFIED]
    leg = the_call(session, "twiml", child)
    assert (leg.platform_status, leg.status) == ("completed", "ended")
    assert [(e.outcome, e.payload["ParentCallSid"]) for e in events(session, leg)] == [
        (s, call.call_sid) for s in ("initiated", "ringing", "in-progress", "completed")
    ]


def test_twilio_inbound_call_with_add_ons_is_asked_for_its_account(
    client: FlaskClient, session: Session, demo: None
) -> None:
    call = TwilioCall(client, "CA00000000000000000000000000000001", "twiml/inbound_addons")
    assert asks(call.start(), "account")
    row = the_call(session, "twiml", call.call_sid)
    assert (row.outcome, row.status, row.caller_number) == (None, "active", "+61000000000")


def test_twilio_wrong_pin_is_told_and_asked_again(
    client: FlaskClient, session: Session, demo: None
) -> None:
    call = TwilioCall(client, "CA0123456789abcdef0123456789abcde0")
    call.start()
    call.press("1001")
    retry = call.press("0000")
    assert says(retry) == [RETRY]
    assert asks(retry, "account")
    row = the_call(session, "twiml", call.call_sid)
    assert (row.outcome, row.status, row.state["tries_used"]) == ("retry", "active", 1)
    assert attempts(session) == [WRONG]


def test_twilio_caller_out_of_tries_leaves_a_recorded_message(
    client: FlaskClient, session: Session, demo: None
) -> None:
    call = TwilioCall(client, "CA0123456789abcdef0123456789abcde1")
    call.start()
    for _ in range(3):
        call.press("1001")
        last = call.press("0000")
    assert says(last)[0] == "Sorry, we could not verify you."
    # The caller hangs up while recording: Twilio posts the recording, Digits=hangup.
    after = call.hang_up_recording()
    assert [el.tag for el in after] == ["Hangup"]
    row = the_call(session, "twiml", call.call_sid)
    assert (row.outcome, row.status) == ("failed", "ended")
    recorded = load("twiml/record_action").form["RecordingUrl"]
    assert recorded in [e.payload.get("RecordingUrl") for e in events(session, row)]
    assert attempts(session) == [WRONG] * 3


def test_twilio_speech_is_no_keyed_answer(
    client: FlaskClient, session: Session, demo: None
) -> None:
    call = TwilioCall(client, "CA0123456789abcdef0123456789abcde2")
    call.start()
    again = call.speak()
    # Nothing was keyed: the question is asked once more, nothing is verified.
    assert asks(again, "account")
    assert attempts(session) == []
    assert the_call(session, "twiml", call.call_sid).outcome is None


@pytest.mark.parametrize("leg", ["", "_child"])
def test_twilio_status_callbacks_of_every_status_are_kept(
    client: FlaskClient, session: Session, leg: str
) -> None:
    parent = "CA1ec1bf246aa203e56716b602d6f6c8c9"
    for n, status in enumerate(TWILIO_STATUSES):
        call_sid = f"CA{n:032x}"
        values = {"CallSid": call_sid} | ({"ParentCallSid": parent} if leg else {})
        twilio_status(client, f"twiml/status_{status.replace('-', '_')}{leg}", **values)
        row = the_call(session, "twiml", call_sid)
        assert row.platform_status == status
        assert row.status == ("ended" if status in FINAL else "active")
        [event] = events(session, row)
        assert (event.kind, event.outcome) == ("status", status)
        assert event.payload.get("ParentCallSid") == (parent if leg else None)


# --- DIDforSale -----------------------------------------------------------------


class DidmlCall:
    def __init__(self, client: FlaskClient, call_sid: str):
        self.client, self.call_sid = client, call_sid
        self.last: etree._Element | None = None

    def start(self) -> etree._Element:
        inbound = load("didml/inbound").substituted(callSid=self.call_sid, key=KEYS["didml"])
        return self._send(inbound)

    def press(self, digits: str) -> etree._Element:
        assert self.last is not None
        gather = self.last.find("Gather")
        assert gather is not None, "the last reply asks nothing"
        request = load("didml/gather_digits").at(gather.get("action", ""))
        return self._send(request.substituted(callSid=self.call_sid, Digits=digits))

    def leave_message(self) -> etree._Element:
        """The `<Record>`'s action request, which names the call `callid`."""
        assert self.last is not None
        record = self.last.find("Record")
        assert record is not None, "the last reply records nothing"
        request = load("didml/record_action").at(record.get("action", ""))
        return self._send(request.substituted(callid=self.call_sid))

    def _send(self, request: RealRequest) -> etree._Element:
        self.last = reply(send(self.client, request), "Response")
        return self.last


def didml_status(client: FlaskClient, name: str, **values: str) -> None:
    response = send(client, load(name).substituted(key=KEYS["didml"], **values))
    assert (response.status_code, response.data) == (204, b"")


def test_didml_inbound_call_is_verified_end_to_end(
    client: FlaskClient, session: Session, demo: None
) -> None:
    call = DidmlCall(client, "6f1c6b1e-3a4d-4c51-9d3e-6a2f0b8c7d11")
    first = call.start()
    assert asks(first, "account")
    gather = first.find("Gather")
    assert gather is not None and (gather.get("minDigits"), gather.get("tries")) == ("1", "1")
    assert asks(call.press("1001"), "pin")
    done = call.press("2468")
    assert says(done) == [THANKS]
    assert [n.text for n in done.iterfind("Dial/Number")] == ["+13125550101"]

    b_leg = "8d2e4f60-91b8-4c3a-b5e6-2f8d1c0a9e44"
    for status in DIDML_STATUSES:
        didml_status(
            client, f"didml/status_{status}_b_leg", callSid=b_leg, ParentCallSid=call.call_sid
        )
        didml_status(client, f"didml/status_{status}_a_leg", callSid=call.call_sid)

    row = the_call(session, "didml", call.call_sid)
    assert (row.outcome, row.status, row.platform_status) == ("verified", "ended", "completed")
    assert row.duration_seconds == 48
    assert row.recording_url == load("didml/status_completed_a_leg").form["RecordingURL"]
    assert [e.outcome for e in events(session, row) if e.kind == "status"] == DIDML_STATUSES
    assert attempts(session) == [VERIFIED]
    leg = the_call(session, "didml", b_leg)
    assert (leg.platform_status, leg.duration_seconds) == ("completed", 31)
    assert {e.payload["ParentCallSid"] for e in events(session, leg)} == {call.call_sid}


def test_didml_wrong_pin_is_told_and_asked_again(
    client: FlaskClient, session: Session, demo: None
) -> None:
    call = DidmlCall(client, "6f1c6b1e-3a4d-4c51-9d3e-6a2f0b8c7d12")
    call.start()
    call.press("1001")
    retry = call.press("0000")
    assert says(retry) == [RETRY]
    assert asks(retry, "account")
    assert the_call(session, "didml", call.call_sid).state["tries_used"] == 1
    assert attempts(session) == [WRONG]


def test_didml_caller_out_of_tries_leaves_a_recorded_message(
    client: FlaskClient, session: Session, demo: None
) -> None:
    call = DidmlCall(client, "6f1c6b1e-3a4d-4c51-9d3e-6a2f0b8c7d13")
    call.start()
    for _ in range(3):
        call.press("1001")
        last = call.press("0000")
    assert says(last) == [
        "Sorry, we could not verify you.",
        "Please leave a message after the tone.",
    ]
    record = last.find("Record")
    assert record is not None and (record.get("maxlength"), record.get("method")) == ("120", "POST")
    assert "recorded=200" in record.get("action", "")

    # DIDforSale posts the recording as `callid` (no callSid) and `callerid` (no From).
    recorded = load("didml/record_action")
    turn = DIDML.parse(recorded.fields(), max_length=256)
    assert (turn.call_id, turn.caller) == (recorded.form["callid"], recorded.form["callerid"])
    after = call.leave_message()
    assert [el.tag for el in after] == ["Hangup"]
    row = the_call(session, "didml", call.call_sid)
    assert (row.outcome, row.status) == ("failed", "ended")
    last_event = events(session, row)[-1]
    assert (last_event.kind, last_event.payload["RecordingUrl"]) == (
        "turn",
        recorded.form["RecordingUrl"],
    )
    assert last_event.payload["callid"] == call.call_sid
    assert session.scalars(select(CallEvent).where(CallEvent.call_id.is_(None))).all() == []
    assert attempts(session) == [WRONG] * 3


# --- VoipNow --------------------------------------------------------------------


def voipnow(client: FlaskClient, name: str, call_id: str, **values: str) -> etree._Element:
    request = load(name).substituted(
        CallID=call_id, CallAPIID=f"3584705175:{call_id}", key=KEYS["voipnow"], **values
    )
    return reply(send(client, request), "Response")


def variables(response: etree._Element) -> dict[str, str]:
    return {el.get("name", ""): el.text or "" for el in response.iter("SetVar")}


def jumps(response: etree._Element) -> list[str]:
    return [el.get("context", "") for el in response.iter("Jump")]


def tts(response: etree._Element) -> list[str]:
    return [el.text or "" for el in response.iter("PlayTTS")]


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("event", ["dial_in", "dial_out"])
def test_voipnow_call_is_verified_then_hung_up(
    client: FlaskClient, session: Session, demo: None, method: str, event: str
) -> None:
    call_id = "5205dc5cc5a411e5ab9eb3691b90ea15"
    done = voipnow(client, f"voipnow/{event}_{method}", call_id)  # account 1001, PIN 2468
    assert tts(done) == [THANKS]
    assert variables(done)["transfer_to"] == "13125550101"
    assert jumps(done) == ["glue_transfer"]

    hung_up = voipnow(client, f"voipnow/hangup_{method}", call_id)
    assert len(hung_up) == 0  # an empty <Response/>

    row = the_call(session, "voipnow", call_id)
    assert (row.outcome, row.status, row.platform_status) == ("verified", "ended", "completed")
    assert [(e.kind, e.payload.get("CallStatus")) for e in events(session, row)] == [
        ("turn", "CALLING"),
        ("status", "ANSWER"),
    ]
    assert attempts(session) == [VERIFIED]


def test_voipnow_wrong_pin_is_told_and_asked_again(
    client: FlaskClient, session: Session, demo: None
) -> None:
    call_id = "5205dc5cc5a411e5ab9eb3691b90ea16"
    retry = voipnow(client, "voipnow/dial_in_get", call_id, pin="0000")
    assert tts(retry) == [RETRY]
    assert jumps(retry) == ["glue_ask"]
    turn = variables(retry)["glue_turn"]
    assert {k: variables(retry)[k] for k in ("account", "pin")} == {"account": "", "pin": ""}
    # The IVR records the answers again and sends back the turn it was given.
    done = voipnow(client, "voipnow/dial_in_get", call_id, glue_turn=turn)
    assert tts(done) == [THANKS]
    assert the_call(session, "voipnow", call_id).outcome == "verified"
    assert attempts(session) == [WRONG, VERIFIED]


@pytest.mark.parametrize("form", ["null", "empty", "literal"])
def test_voipnow_unset_pin_is_no_input(
    client: FlaskClient, session: Session, demo: None, form: str
) -> None:
    # 'null' and '' as the docs describe an unset variable; '$pin' left in the URL
    # as written (undocumented) is read the same way, never taken for a PIN.
    call_id = f"5205dc5cc5a411e5ab9eb3691b90e{form[:3]}"
    goodbye = voipnow(client, f"voipnow/unset_{form}", call_id)
    assert tts(goodbye) == [SILENT]
    assert goodbye[-1].tag == "Hangup"
    assert the_call(session, "voipnow", call_id).outcome == "no_input"
    assert attempts(session) == []


# --- IfbyPhone ------------------------------------------------------------------


def survo(client: FlaskClient, name: str, session_id: str, **values: str) -> etree._Element:
    request = load(name).substituted(session_id=session_id, key=KEYS["ifbyphone"], **values)
    return reply(send(client, request), "action")


def message(action: etree._Element) -> str | None:
    assert action.findtext("app") == "survo"
    assert action.findtext("parameters/id") == "4102"  # the flow's read-aloud SurVo
    return action.findtext("parameters/user_parameters/message")


def post_back(client: FlaskClient, session_id: str, action: etree._Element) -> etree._Element:
    """The read-aloud SurVo posts back with the p_t it was given."""
    p_t = action.findtext("parameters/p_t")
    assert p_t is not None and "next" in decode_pass_through(p_t)
    return survo(client, "ifbyphone/say_postback", session_id, p_t=p_t)


@pytest.mark.parametrize("name", ["ifbyphone/survo_post", "ifbyphone/survo_get"])
def test_ifbyphone_survo_answers_are_verified_then_transferred(
    client: FlaskClient, session: Session, demo: None, name: str
) -> None:
    session_id = "1288745219"
    first = survo(client, name, session_id)  # account 1001, PIN 2468
    assert message(first) == THANKS
    second = post_back(client, session_id, first)
    assert second.findtext("app") == "transfer"
    assert second.findtext("parameters/destination") == "3125550101"

    row = the_call(session, "ifbyphone", session_id)
    assert (row.outcome, row.status, row.caller_number) == ("verified", "ended", "+13125550199")
    [answered, _] = events(session, row)
    # The static field of the configured URL is kept with the event; the PIN never is.
    assert answered.payload["source"] == "hotline"
    assert answered.payload["pin"] != "2468"
    assert attempts(session) == [VERIFIED]


def test_ifbyphone_wrong_pin_is_told_and_asked_again(
    client: FlaskClient, session: Session, demo: None
) -> None:
    session_id = "1288745220"
    sorry = survo(client, "ifbyphone/survo_post", session_id, pin="0000")
    assert message(sorry) == RETRY
    ask = post_back(client, session_id, sorry)
    assert (ask.findtext("app"), ask.findtext("parameters/id")) == ("survo", "4101")
    assert the_call(session, "ifbyphone", session_id).state["tries_used"] == 1
    assert attempts(session) == [WRONG]


def test_ifbyphone_skipped_questions_are_no_input(
    client: FlaskClient, session: Session, demo: None
) -> None:
    session_id = "1288745221"
    goodbye = survo(client, "ifbyphone/survo_na", session_id)
    assert message(goodbye) == SILENT
    assert post_back(client, session_id, goodbye).findtext("app") == "hangup"
    assert the_call(session, "ifbyphone", session_id).outcome == "no_input"
    assert attempts(session) == []
