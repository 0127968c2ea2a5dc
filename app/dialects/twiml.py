"""Twilio TwiML dialect, and the `<Response>` voice-XML family didML shares.

Here Glue runs the whole survey itself: each question is a `<Gather>` whose
`action` comes back to Glue naming the question and the turn; silence falls
through to a `<Redirect>` that says so. Every reply carries all remaining steps.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from lxml import etree
from marshmallow import Schema, fields
from marshmallow.validate import Length, Range

from app.dialects.base import Cursor, Rendered
from app.neutral.fields import Errors, Id, Phone, StrictSchema
from app.neutral.steps import (
    Ask,
    FindMe,
    Hangup,
    Pause,
    Play,
    Prompt,
    RunForm,
    Say,
    SayDigits,
    Step,
    Transfer,
    VirtualReceptionist,
    Voicemail,
)
from app.neutral.turn import (
    MAX_CALL_ID,
    MAX_COUNTER,
    MalformedRequest,
    Turn,
    check_lengths,
    read_number,
)

log = logging.getLogger(__name__)

# Query fields Glue puts in its own callback URLs.
QUESTION, TURN, SILENCE, RECORDED = "question", "turn", "silence", "recorded"
DEFAULT_TIMEOUT = 5  # seconds of silence before a question counts as unanswered
# The fields a request's parse reads, besides the answer and the dialect's call id
# and caller fields: checked for length.
READ_FIELDS = (QUESTION, TURN, SILENCE)


class VoiceXmlSettings(StrictSchema):
    """didML and TwiML blocks: every key is optional (Glue asks the questions itself)."""

    voice = fields.String(validate=Length(1, 64))  # <Say voice=...>
    language = fields.String(validate=Length(1, 16))  # <Say language=...>
    caller_id = Phone()  # shown on transfers (the <Dial>'s caller ID attribute)
    # voicemail box -> number to dial; a box not listed is recorded by Glue
    voicemail = fields.Dict(keys=Id(), values=Phone())
    voicemail_prompt = fields.String(validate=Length(1, 500))
    voicemail_seconds = fields.Integer(strict=True, validate=Range(1, 3600))
    findme = fields.Dict(keys=Id(), values=fields.List(Phone(), validate=Length(min=1)))
    vr = fields.Dict(keys=Id(), values=fields.Url(schemes={"http", "https"}))  # menu -> URL
    forms = fields.Dict(keys=Id(), values=fields.Url(schemes={"http", "https"}))  # form -> URL


@dataclass(frozen=True)
class VoiceXml:
    """A TwiML-like platform: its names for things, and how it gathers digits.

    XML is case-sensitive, so each verb's attributes are spelled as the platform
    spells them; the defaults are Twilio's.
    """

    NAME: str
    call_id_fields: tuple[str, ...]  # first one present names the call
    caller_fields: tuple[str, ...] = ("From", "Caller")  # first one present is the caller
    gather_attributes: Mapping[str, str] = field(default_factory=dict)  # always set
    min_digits_attribute: str | None = None  # didML has minDigits; Twilio does not
    caller_id_attribute: str = "callerId"  # <Dial>'s caller ID shown to the party rung
    # <Pause>: the attribute holding its seconds; None where the element's text
    # holds its milliseconds instead.
    pause_length_attribute: str | None = "length"
    max_length_attribute: str = "maxLength"  # <Record>'s longest message, in seconds
    record_attributes: Mapping[str, str] = field(default_factory=dict)  # always set
    CONTENT_TYPE: str = "text/xml; charset=utf-8"
    VOLATILE_FIELDS: frozenset[str] = frozenset()
    ONE_BY_ONE: bool = True
    NEEDS_SETTINGS: bool = False  # every setting of its block has a default
    SETTINGS: type[Schema] = VoiceXmlSettings
    PLATFORM_FIELDS: frozenset[str] = frozenset(
        {
            "CallSid", "callSid", "AccountSid", "From", "To", "Caller", "Called",
            "CallerName", "CallStatus", "Direction", "ApiVersion", "key",
            "FromCity", "FromState", "FromZip", "FromCountry", "ToCity", "ToState",
            "ToZip", "ToCountry", "CallerCity", "CallerState", "CallerZip",
            "CallerCountry", "CalledCity", "CalledState", "CalledZip", "CalledCountry",
            "RecordingUrl", "RecordingSid", "RecordingDuration", "FinishedOnKey",
            QUESTION, TURN, SILENCE, RECORDED,
        }
    )  # fmt: skip

    def check_flow(
        self,
        block: Any,
        raw_on: Mapping[str, Any],
        outcomes: Mapping[str, Sequence[Step | None]],
        errors: Errors,
    ) -> None:
        """Nothing a flow uses needs a setting here: every key has a default."""

    def parse(self, values: Mapping[str, str], max_length: int) -> Turn:
        """A call's request; after a `<Gather>`, `Digits` answers the question it named.

        Only the fields read here are checked (the answer, by the runner, against
        the flow's question); every other field is kept as sent.
        """
        check_lengths(values, (*self.call_id_fields, *self.caller_fields, *READ_FIELDS), max_length)
        call_id = next((values[f] for f in self.call_id_fields if values.get(f)), "").strip()
        if not call_id:
            raise MalformedRequest(f"no {self.call_id_fields[0]}")
        if len(call_id) > MAX_CALL_ID:
            raise MalformedRequest(f"{self.call_id_fields[0]} longer than {MAX_CALL_ID}")
        turn = values.get(TURN, "")
        if turn and read_number(turn, MAX_COUNTER) is None:
            raise MalformedRequest(f"{TURN} is not a number up to {MAX_COUNTER}")
        answers: dict[str, str] = {}
        question = values.get(QUESTION)
        if question:
            # Silence is an empty answer, as a platform's form sends a skipped one.
            answers[question] = "" if SILENCE in values else values.get("Digits", "")
        return Turn(
            platform=self.NAME,
            call_id=call_id,
            caller=next((values[f] for f in self.caller_fields if values.get(f)), None),
            answers=answers,
            pass_through=self.parse_pass_through(values),
            fields=dict(values),
            answer_fields={question: "Digits"} if question else {},
        )

    def parse_pass_through(self, values: Mapping[str, str]) -> dict[str, str]:
        """The turn counter of Glue's callback URL, where it is one."""
        turn = values.get(TURN, "")
        return {"turn": turn} if read_number(turn, MAX_COUNTER) is not None else {}

    def render(self, steps: Sequence[Step], block: Mapping[str, Any], cursor: Cursor) -> Rendered:
        """The steps in one `<Response>`, up to a `<Redirect>` to another document:
        nothing after it would run, so the rest waits for the next request."""
        response = etree.Element("Response")
        for consumed, step in enumerate(steps, start=1):
            if self._verb(response, step, block, cursor):
                return Rendered(_serialise(response), consumed)
        return Rendered(_serialise(response), len(steps))

    def render_hangup(self) -> bytes:
        response = etree.Element("Response")
        etree.SubElement(response, "Hangup")
        return _serialise(response)

    def _verb(
        self, response: etree._Element, step: Step, block: Mapping[str, Any], cursor: Cursor
    ) -> bool:
        """Add the step's verbs; True if they send the call to another document."""
        if isinstance(step, Say):
            _say(response, step.text, block)
        elif isinstance(step, SayDigits):
            _say(response, " ".join(step.digits), block)  # spaced: read one by one
        elif isinstance(step, Pause):
            self.add_pause(response, step.seconds)
        elif isinstance(step, Play):
            etree.SubElement(response, "Play").text = step.sound
        elif isinstance(step, Ask):
            assert step.prompt is not None, "the engine fills in the question to ask"
            self._gather(response, step.prompt, block, cursor)
        elif isinstance(step, RunForm):
            return _redirect_or_skip(response, block.get("forms", {}), step.form, "form")
        elif isinstance(step, Transfer):
            self._dial(response, [step.to], block)
        elif isinstance(step, FindMe):
            numbers = block.get("findme", {}).get(step.list_id) if step.list_id else step.numbers
            if numbers:
                self._dial(response, list(numbers), block)
            else:
                log.warning(
                    "no numbers for Find Me list %s in the %s block", step.list_id, self.NAME
                )
                etree.SubElement(response, "Hangup")
        elif isinstance(step, VirtualReceptionist):
            if _redirect_or_skip(response, block.get("vr", {}), step.menu, "menu"):
                return True
            etree.SubElement(response, "Hangup")
        elif isinstance(step, Voicemail):
            self._voicemail(response, step.box, block, cursor)
        elif isinstance(step, Hangup):
            etree.SubElement(response, "Hangup")
        return False

    def _gather(
        self, response: etree._Element, prompt: Prompt, block: Mapping[str, Any], cursor: Cursor
    ) -> None:
        answered = _callback(cursor, **{QUESTION: prompt.name})
        attributes = {
            **self.gather_attributes,
            "action": answered,
            "method": "POST",
            "timeout": str(prompt.timeout or DEFAULT_TIMEOUT),
            "finishOnKey": prompt.finish_on_key,
        }
        if prompt.max_digits:
            attributes["numDigits"] = str(prompt.max_digits)
        if prompt.min_digits and self.min_digits_attribute:
            attributes[self.min_digits_attribute] = str(prompt.min_digits)
        gather = etree.SubElement(response, "Gather", attributes)
        if prompt.text:
            _say(gather, prompt.text, block)
        # Reached only when the caller keyed nothing before the timeout.
        silence = _callback(cursor, **{QUESTION: prompt.name, SILENCE: "1"})
        etree.SubElement(response, "Redirect", method="POST").text = silence

    def _voicemail(
        self, response: etree._Element, box: str, block: Mapping[str, Any], cursor: Cursor
    ) -> None:
        number = block.get("voicemail", {}).get(box)
        if number:
            self._dial(response, [number], block)
            return
        # No voicemail number for this box: record the message here.
        _say(
            response, block.get("voicemail_prompt", "Please leave a message after the tone."), block
        )
        attributes = {
            self.max_length_attribute: str(block.get("voicemail_seconds", 120)),
            **self.record_attributes,
            "action": _callback(cursor, **{RECORDED: box}),
            "method": "POST",
        }
        etree.SubElement(response, "Record", attributes)
        etree.SubElement(response, "Hangup")

    def add_pause(self, parent: etree._Element, seconds: int) -> None:
        """A silence of `seconds`, written the platform's way."""
        if self.pause_length_attribute:
            etree.SubElement(parent, "Pause", {self.pause_length_attribute: str(seconds)})
        else:
            etree.SubElement(parent, "Pause").text = str(seconds * 1000)

    def _dial(self, response: etree._Element, numbers: list[str], block: Mapping[str, Any]) -> None:
        """Ring the numbers (all at once); when that call ends, so does this one."""
        caller_id = block.get("caller_id")
        attributes = {self.caller_id_attribute: str(caller_id)} if caller_id else {}
        dial = etree.SubElement(response, "Dial", attributes)
        for number in numbers:
            etree.SubElement(dial, "Number").text = number
        etree.SubElement(response, "Hangup")


def _say(parent: etree._Element, text: str, block: Mapping[str, Any]) -> None:
    attributes = {k: str(block[k]) for k in ("voice", "language") if block.get(k)}
    etree.SubElement(parent, "Say", attributes).text = text


def _redirect_or_skip(
    response: etree._Element, urls: Mapping[str, str], key: str, what: str
) -> bool:
    url = urls.get(key)
    if not url:
        log.warning("no URL for %s %s in the flow's block: skipped", what, key)
        return False
    etree.SubElement(response, "Redirect", method="POST").text = url
    return True


def _callback(cursor: Cursor, **query: str) -> str:
    """The URL of the call's next request: the turn tells retries from new answers."""
    separator = "&" if "?" in cursor.url else "?"
    return f"{cursor.url}{separator}{urlencode({TURN: cursor.turn + 1, **query})}"


def _serialise(response: etree._Element) -> bytes:
    return etree.tostring(response, xml_declaration=True, encoding="utf-8")


TWIML = VoiceXml(
    NAME="twiml",
    call_id_fields=("CallSid", "callSid"),
    gather_attributes={"input": "dtmf"},
    record_attributes={"playBeep": "true"},
)
