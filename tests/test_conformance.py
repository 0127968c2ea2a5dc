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
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import phonenumbers
import pytest
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.dialects.registry import DIALECTS
from app.flows.runner import MAX_UNREAD_FIELDS
from app.models import Call, CallEvent, User, VerificationAttempt
from tests.conftest import TEST_SECRETS
from tests.directory_helpers import add_group, add_user
from tests.test_ifbyphone_hook import Caller as IfbyPhoneCaller
from tests.voice_xml_caller import VoiceXmlCall

PLATFORMS = ["ifbyphone", "voipnow", "didml", "twiml"]


@dataclass(frozen=True)
class Heard:
    """The end of one try, in neutral terms."""

    says: tuple[str, ...]
    # ("ask",), ("dial", e164, ...), ("voicemail", box), ("hangup",): a transfer
    # and a Find Me are both "dial" (on TwiML both are one <Dial>)
    then: tuple[str, ...]


def e164(number: str) -> str:
    return phonenumbers.format_number(
        phonenumbers.parse(number, "US"), phonenumbers.PhoneNumberFormat.E164
    )


class Driver:
    """Plays one call on one platform: `attempt` keys in a claim and a PIN."""

    def __init__(
        self,
        client: FlaskClient,
        platform: str,
        flow: str,
        call_id: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.client, self.platform, self.flow, self.call_id = client, platform, flow, call_id
        self.extra = extra or {}  # more fields, sent with the call's requests
        self.claim_field = "group" if flow == "group_line" else "account"
        self.voice: VoiceXmlCall | None = None
        self.ifbyphone: IfbyPhoneCaller | None = None
        self.voipnow_turn = ""

    def attempt(self, claim: str, pin: str) -> Heard:
        if self.platform == "ifbyphone":
            if self.ifbyphone is None:
                self.ifbyphone = IfbyPhoneCaller(self.client, self.call_id, self.flow)
            replies = self.ifbyphone.answer(**{self.claim_field: claim, "pin": pin}, **self.extra)
            return _ifbyphone_heard(replies)
        if self.platform == "voipnow":
            answers = {self.claim_field: claim, "pin": pin, **self.extra}
            return _voipnow_heard(self._voipnow(answers))
        call = self._voice()
        call.press(claim)
        return _voice_heard(call.press(pin))

    def silence(self) -> Heard:
        if self.platform == "ifbyphone":
            self.ifbyphone = IfbyPhoneCaller(self.client, self.call_id, self.flow)
            return _ifbyphone_heard(self.ifbyphone.answer(**{self.claim_field: "NA", "pin": "NA"}))
        if self.platform == "voipnow":
            return _voipnow_heard(self._voipnow({self.claim_field: "null", "pin": ""}))
        call = self._voice()
        call.silence()  # asked again once ...
        return _voice_heard(call.silence())  # ... then no input

    def _voice(self) -> VoiceXmlCall:
        if self.voice is None:
            self.voice = VoiceXmlCall(self.client, self.platform, self.flow, self.call_id)
            self.voice.fields |= self.extra
            self.voice.start()
        return self.voice

    def _voipnow(self, answers: dict[str, str]) -> etree._Element:
        fields = {
            "CallID": self.call_id,
            "CallerIDNum": "3125550199",
            "CallFlow": "IN",
            "CallStatus": "CALLING",
            "glue_turn": self.voipnow_turn,
            **answers,
        }
        response = self.client.post(
            f"/voipnow/{self.flow}/dial-in?key={TEST_SECRETS['VOIPNOW_SECRET']}", data=fields
        )
        assert response.status_code == 200
        root = etree.fromstring(response.data)
        self.voipnow_turn = root.findtext("SetVar[@name='glue_turn']") or ""
        return root


def _ifbyphone_heard(replies: list[etree._Element]) -> Heard:
    says = tuple(
        r.findtext("parameters/user_parameters/message") or ""
        for r in replies
        if r.findtext("parameters/user_parameters/message")
    )
    last = replies[-1]
    app = last.findtext("app")
    if app == "survo":
        return Heard(says, ("ask",))
    if app == "transfer":
        return Heard(says, ("dial", e164(last.findtext("parameters/destination") or "")))
    if app == "findme":
        numbers = (last.findtext("parameters/phone_list") or "").split("|")
        return Heard(says, ("dial", *map(e164, numbers)))
    if app == "voicemail":
        return Heard(says, ("voicemail", last.findtext("parameters/id") or ""))
    return Heard(says, (app or "",))


def _voipnow_heard(root: etree._Element) -> Heard:
    says = tuple(el.text or "" for el in root.iter("PlayTTS"))
    variables = {el.get("name"): el.text or "" for el in root.iter("SetVar")}
    if root.find("Hangup") is not None:
        return Heard(says, ("hangup",))
    context = root.find("Jump").get("context")  # type: ignore[union-attr]
    if context == "glue_ask":
        return Heard(says, ("ask",))
    if context == "glue_voicemail":
        return Heard(says, ("voicemail", variables["voicemail_box"]))
    if "findme_to" in variables:
        return Heard(says, ("dial", *map(e164, variables["findme_to"].split("&"))))
    return Heard(says, ("dial", e164(variables["transfer_to"])))


def _voice_heard(root: etree._Element) -> Heard:
    says = tuple(el.text or "" for el in root.findall("Say"))  # not the prompts in <Gather>
    if root.find("Gather") is not None:
        return Heard(says, ("ask",))
    dial = root.find("Dial")
    if dial is not None:
        numbers = tuple(e164(n.text or "") for n in dial.findall("Number"))
        return Heard(says, ("dial", *numbers))
    record = root.find("Record")
    if record is not None:
        box = (record.get("action") or "").rsplit("recorded=", 1)[1]
        return Heard(says[:-1], ("voicemail", box))  # without the beep prompt
    return Heard(says, ("hangup",))


@dataclass(frozen=True)
class Scenario:
    flow: str
    play: Callable[[Callable[[str], Driver]], list[Heard]]
    heard: list[Heard]
    calls: list[tuple[str | None, str, int]]  # outcome, status, tries used; by call id
    attempts: list[tuple[str, str, str, str]]  # claim type, claimed, outcome, reason
    lockouts: int = 0


THANKS = Heard(("Thank you, Ada Lovelace.",), ("dial", "+13125550101"))
RETRY = Heard(("That did not match. Please try again.",), ("ask",))
FAILED = Heard(("Sorry, we could not verify you.",), ("voicemail", "200"))
LOCKED = Heard(("This account is locked. Please try again later.",), ("hangup",))
SILENT = Heard(("We did not hear anything. Goodbye.",), ("hangup",))


def _verified(call: Callable[[str], Driver]) -> list[Heard]:
    return [call("c1").attempt("1001", "2468")]


def _retry_then_verified(call: Callable[[str], Driver]) -> list[Heard]:
    driver = call("c1")
    return [driver.attempt("1001", "0000"), driver.attempt("1001", "2468")]


def _failed(call: Callable[[str], Driver]) -> list[Heard]:
    driver = call("c1")
    return [driver.attempt("1001", "0000") for _ in range(3)]


def _locked(call: Callable[[str], Driver]) -> list[Heard]:
    first, second = call("c1"), call("c2")
    heard = [first.attempt("1001", "0000") for _ in range(3)]
    heard += [second.attempt("1001", "0000") for _ in range(2)]
    return [*heard, call("c3").attempt("1001", "2468")]


def _no_input(call: Callable[[str], Driver]) -> list[Heard]:
    return [call("c1").silence()]


def _group_member(call: Callable[[str], Driver]) -> list[Heard]:
    return [call("c1").attempt("500", "1357")]


WRONG = ("account", "1001", "rejected", "wrong_pin")
SCENARIOS = {
    "verified": Scenario(
        "verify_caller",
        _verified,
        [THANKS],
        [("verified", "ended", 0)],
        [("account", "1001", "verified", "pin")],
    ),
    "retry": Scenario(
        "verify_caller",
        _retry_then_verified,
        [RETRY, THANKS],
        [("verified", "ended", 1)],
        [WRONG, ("account", "1001", "verified", "pin")],
    ),
    "failed": Scenario(
        "verify_caller",
        _failed,
        [RETRY, RETRY, FAILED],
        [("failed", "ended", 3)],
        [WRONG] * 3,
    ),
    "locked": Scenario(
        "verify_caller",
        _locked,
        [RETRY, RETRY, FAILED, RETRY, LOCKED, LOCKED],
        [("failed", "ended", 3), ("locked", "ended", 1), ("locked", "ended", 0)],
        [WRONG] * 4
        + [
            ("account", "1001", "locked", "locked_now"),
            ("account", "1001", "locked", "locked"),
        ],
        lockouts=1,
    ),
    "no_input": Scenario("verify_caller", _no_input, [SILENT], [("no_input", "ended", 0)], []),
    "group": Scenario(
        "group_line",
        _group_member,
        [Heard(("Welcome, Night shift.",), ("dial", "+13125550500"))],
        [("verified", "ended", 0)],
        [("group", "500", "verified", "member_pin")],
    ),
}


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
    return _voice_heard(
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
        heard = _voice_heard(driver._voice().press(account))
    else:
        heard = driver.attempt(account, "2468")
    assert heard == APOLOGY_AND_GOODBYE
    session.commit()
    malformed = session.scalars(select(CallEvent).where(CallEvent.kind == "malformed")).one()
    assert malformed.notes is not None and "longer than 256" in malformed.notes["error"]
    # The platform's own field, masked as every answer of an unreadable request.
    assert malformed.payload["_error"] == "***"
    assert session.scalars(select(VerificationAttempt)).all() == []
