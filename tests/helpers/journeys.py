"""Whole calls on every platform, as each sends them, read back in neutral terms:
what the caller heard last and where the call went (`Heard`), and the journeys
every platform must play alike (`SCENARIOS`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers
from flask.testing import FlaskClient
from lxml import etree

from tests.helpers.ifbyphone import Caller as IfbyPhoneCaller
from tests.helpers.settings import TEST_SECRETS
from tests.helpers.voice_xml_caller import VoiceXmlCall

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
            return ifbyphone_heard(replies)
        if self.platform == "voipnow":
            answers = {self.claim_field: claim, "pin": pin, **self.extra}
            return voipnow_heard(self._voipnow(answers))
        call = self._voice()
        call.press(claim)
        return voice_heard(call.press(pin))

    def silence(self) -> Heard:
        if self.platform == "ifbyphone":
            self.ifbyphone = IfbyPhoneCaller(self.client, self.call_id, self.flow)
            return ifbyphone_heard(self.ifbyphone.answer(**{self.claim_field: "NA", "pin": "NA"}))
        if self.platform == "voipnow":
            return voipnow_heard(self._voipnow({self.claim_field: "null", "pin": ""}))
        call = self._voice()
        call.silence()  # asked again once ...
        return voice_heard(call.silence())  # ... then no input

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


def ifbyphone_heard(replies: list[etree._Element]) -> Heard:
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


def voipnow_heard(root: etree._Element) -> Heard:
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


def voice_heard(root: etree._Element) -> Heard:
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
