"""4PSA VoipNow "Call Interactive" dialect: IVR event fields in, `<Response>` XML out.

VoipNow's IVR collects the digits itself ("Record digits to variable") and then
calls Glue with them in the URL (`&pin=$pin`); the reply is a list of verbs run
in order. So, unlike IfbyPhone, one reply carries a whole sequence: a message,
then the hand-over. There is no Gather and no Dial verb: asking again, a
transfer or a voicemail is a `<Jump>` into an IVR context the admin made for it,
with what it needs in IVR variables (`<SetVar>`).

VoipNow sends no pass-through and no timestamp. To tell the turns of a call
apart (a caller typing the same wrong PIN twice must count twice), every reply
sets the IVR variable `glue_turn`, and the admin's URL sends it back
(`&glue_turn=$glue_turn`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import phonenumbers
from lxml import etree
from marshmallow import fields
from marshmallow.validate import Length, NoneOf, OneOf, Regexp

from app.dialects.base import Cursor, Rendered
from app.neutral.fields import (
    PARAMETER_NAME,
    Context,
    Errors,
    Message,
    Phone,
    StrictSchema,
    add_error,
)
from app.neutral.outcomes import DEFAULT_OUTCOMES, OUTCOMES
from app.neutral.steps import (
    Ask,
    FindMe,
    Hangup,
    Pause,
    Play,
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

NAME = "voipnow"
CONTENT_TYPE = "text/xml; charset=utf-8"
# The IVR variable every reply sets, and the request field it comes back in.
TURN_VARIABLE = "glue_turn"
# Hang-up statuses, as the neutral ones of app.flows.statuses.
HANGUP_STATUSES: Mapping[str, str] = {
    "ANSWER": "completed",
    "BUSY": "busy",
    "NOANSWER": "no-answer",
    "CANCEL": "canceled",
    "CONGESTION": "failed",
    "CHANUNAVAIL": "failed",
}
# Fields VoipNow itself sends on a call event (and our auth key and turn
# counter): everything else is an answer.
PLATFORM_FIELDS = frozenset(
    {
        "CallID",
        "CallerIDNum",
        "CallerIDName",
        "CalledDID",
        "CalledExtension",
        "CalledNumber",
        "CallerExtension",
        "CallFlow",
        "CallStatus",
        "CallAPIID",
        "EventType",
        "key",
        TURN_VARIABLE,
    }
)
# No timestamp or other field changes between retries of one request: glue_turn
# tells the turns of a call apart.
VOLATILE_FIELDS: frozenset[str] = frozenset()
ONE_BY_ONE = False  # the IVR asks every question, then sends all answers
NEEDS_SETTINGS = True  # the IVR contexts to jump to

# How a phone number is written into an IVR variable (the block's number_format).
NUMBER_FORMATS = ("international", "e164", "national")
DEFAULT_NUMBER_FORMAT = "international"
DEFAULT_TRANSFER_VARIABLE = "transfer_to"
FINDME_VARIABLE = "findme_to"
VOICEMAIL_VARIABLE = "voicemail_box"
# Where a Jump lands in a context: VoipNow's "start" option, first action.
DEFAULT_JUMP_OPTION = "s"
JUMP_PRIORITY = "1"
# An unset IVR variable in the URL arrives as "" or "null".
UNSET = ("", "null")
# No turn yet: the call's first request, before any reply set the variable (an
# IVR that sends an unset variable's `$name` as written included).
UNSET_TURN = (*UNSET, f"${TURN_VARIABLE}")
# The platform's fields a request's parse reads: checked for length.
READ_FIELDS = ("CallID", "CallerIDNum", TURN_VARIABLE)


class MissingSetting(LookupError):
    """The flow's voipnow block lacks a key a step needs (validation should catch it)."""


def parse(values: Mapping[str, str], max_length: int) -> Turn:
    """Read a Call Interactive request (GET query or POST form) into a turn.

    Every field that is not VoipNow's own may answer a question: the runner
    reads (and checks) those the flow's questions name; the rest are kept as sent.
    """
    check_lengths(values, READ_FIELDS, max_length)
    call_id = values.get("CallID", "").strip()
    if not call_id:
        raise MalformedRequest("no CallID")
    if len(call_id) > MAX_CALL_ID:
        raise MalformedRequest(f"CallID longer than {MAX_CALL_ID}")
    turn = values.get(TURN_VARIABLE, "").strip()
    if turn not in UNSET_TURN and read_number(turn, MAX_COUNTER) is None:
        raise MalformedRequest(f"{TURN_VARIABLE} is not a number up to {MAX_COUNTER}")
    caller = values.get("CallerIDNum", "").strip()
    return Turn(
        platform=NAME,
        call_id=call_id,
        caller=None if caller in UNSET else caller,
        answers={k: _answer(k, v) for k, v in values.items() if k not in PLATFORM_FIELDS},
        pass_through=parse_pass_through(values),
        fields=dict(values),
    )


def _answer(name: str, value: str) -> str:
    """An answer as sent, or "" (no answer) for the URL's `$name` left unreplaced:
    the IVR had no value for that variable, and its literal text is no input."""
    return "" if value.strip() == f"${name}" else value


def parse_pass_through(values: Mapping[str, str]) -> dict[str, str]:
    """The turn counter the last reply set, if the request carries one."""
    turn = values.get(TURN_VARIABLE, "").strip()
    return {"turn": turn} if read_number(turn, MAX_COUNTER) is not None else {}


def render(steps: Sequence[Step], block: Mapping[str, Any], cursor: Cursor) -> Rendered:
    """One `<Response>` carrying the steps, up to the first that leaves Glue.

    `block` is the flow's `voipnow:` settings (contexts, voice, variable names).
    Every step is sent at once, except after a `RunForm`: its context calls Glue
    again, and the rest of the sequence waits in the call's state until then.
    """
    response = etree.Element("Response")
    # First, so the next request of the call tells itself apart from this one.
    _set_var(response, TURN_VARIABLE, str(cursor.turn + 1))
    consumed = 0
    for step in steps:
        _verb(response, step, block)
        consumed += 1
        if isinstance(step, RunForm):
            break
    return Rendered(_serialise(response), consumed)


def render_hangup() -> bytes:
    """A reply for when there is no flow to consult."""
    response = etree.Element("Response")
    etree.SubElement(response, "Hangup")
    return _serialise(response)


def render_empty() -> bytes:
    """`<Response/>`: nothing to do (the answer to a hang-up event)."""
    return _serialise(etree.Element("Response"))


def format_number(e164: str, number_format: str) -> str:
    """An E.164 number as the IVR should dial it.

    international: country code and number, digits only (13125550101);
    e164: with the plus (+13125550101);
    national: as dialled inside the number's own country (3125550101, 02071838750).
    """
    if number_format == "e164":
        return e164
    parsed = phonenumbers.parse(e164)
    if number_format == "national":
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        return "".join(ch for ch in national if ch.isdigit())
    if number_format == "international":
        return f"{parsed.country_code}{phonenumbers.national_significant_number(parsed)}"
    raise ValueError(f"unknown voipnow number_format {number_format!r}")


def _verb(response: etree._Element, step: Step, block: Mapping[str, Any]) -> None:
    """Append the verbs of one step."""
    if isinstance(step, Say):
        _say(response, step.text, block)
    elif isinstance(step, SayDigits):
        # Spaced, so text-to-speech reads digit by digit.
        _say(response, " ".join(step.digits), block)
    elif isinstance(step, Pause):
        etree.SubElement(response, "Pause", length=str(step.seconds))
    elif isinstance(step, Ask):
        # Forget the answers asked for again: a caller who keys nothing this
        # time is silent, not the sender of the last (wrong) PIN once more.
        for name in step.questions:
            _set_var(response, name, "")
        _jump(response, _setting(block, "ask_context"), block)
    elif isinstance(step, RunForm):
        for name, value in step.params.items():
            _set_var(response, name, value)
        _jump(response, step.form, block)
    elif isinstance(step, Play):
        attributes = {"folder": _option(block, "sound_folder")} if block.get("sound_folder") else {}
        etree.SubElement(response, "PlaySound", attributes).text = step.sound
    elif isinstance(step, Transfer):
        number = format_number(step.to, _number_format(block))
        context = _setting(block, "transfer_context")
        _set_var(response, _option(block, "transfer_variable", DEFAULT_TRANSFER_VARIABLE), number)
        _set_caller(response, block)
        _jump(response, context, block)
    elif isinstance(step, FindMe):
        _findme(response, step, block)
    elif isinstance(step, VirtualReceptionist):
        _jump(response, step.menu, block)
    elif isinstance(step, Voicemail):
        context = _setting(block, "voicemail_context")
        _set_var(response, VOICEMAIL_VARIABLE, step.box)
        _jump(response, context, block)
    elif isinstance(step, Hangup):
        etree.SubElement(response, "Hangup")
    else:
        raise TypeError(f"no VoipNow verb for {step!r}")


def _findme(response: etree._Element, step: FindMe, block: Mapping[str, Any]) -> None:
    """A Find Me list is an IVR context; numbers go in a variable, `&`-separated
    (Asterisk's Dial syntax), for a context that rings them all."""
    if step.list_id:
        _jump(response, step.list_id, block)
        return
    number_format = _number_format(block)
    numbers = "&".join(format_number(n, number_format) for n in step.numbers)
    context = _option(block, "findme_context")
    _set_var(response, FINDME_VARIABLE, numbers)
    if not context:
        # No context of its own: the transfer context dials its own variable.
        context = _setting(block, "transfer_context")
        _set_var(response, _option(block, "transfer_variable", DEFAULT_TRANSFER_VARIABLE), numbers)
    _set_caller(response, block)
    _jump(response, context, block)


def _set_caller(response: etree._Element, block: Mapping[str, Any]) -> None:
    """The caller ID the person called sees, when the flow's block names one."""
    name, number = _option(block, "caller_name"), _option(block, "caller_number")
    if name and number:
        digits = format_number(number, _number_format(block))
        etree.SubElement(response, "SetCaller", name=name, number=digits)


def _say(response: etree._Element, text: str, block: Mapping[str, Any]) -> None:
    if not text:
        return
    voice = _option(block, "voice")
    tts = etree.SubElement(response, "PlayTTS", {"voice": voice} if voice else {})
    tts.text = text


def _set_var(response: etree._Element, name: str, value: str) -> None:
    etree.SubElement(response, "SetVar", name=name).text = value


def _jump(response: etree._Element, context: str, block: Mapping[str, Any]) -> None:
    option = _option(block, "jump_option", DEFAULT_JUMP_OPTION)
    etree.SubElement(response, "Jump", context=context, option=option, priority=JUMP_PRIORITY)


def _setting(block: Mapping[str, Any], key: str) -> str:
    value = _option(block, key)
    if not value:
        raise MissingSetting(f"the flow's voipnow block has no {key}")
    return value


def _option(block: Mapping[str, Any], key: str, default: str = "") -> str:
    value = block.get(key)
    return str(value) if value else default


def _number_format(block: Mapping[str, Any]) -> str:
    return _option(block, "number_format", DEFAULT_NUMBER_FORMAT)


def _serialise(response: etree._Element) -> bytes:
    return etree.tostring(response, xml_declaration=True, encoding="UTF-8")


# --- the flow's `voipnow:` block --------------------------------------------------


class Settings(StrictSchema):
    """The flow's `voipnow:` block."""

    # IVR contexts Glue jumps to; which are required depends on the flow's
    # steps (see check_flow).
    ask_context = Context()  # records the answers to variables, then calls Glue
    transfer_context = Context()  # dials the transfer variable
    findme_context = Context()  # rings findme_to (default: transfer_context)
    voicemail_context = Context()  # takes a message for voicemail_box
    # <SetCaller>: the caller ID shown to the person a transfer rings (both needed)
    caller_name = fields.String(validate=Length(1, 64))
    caller_number = Phone()
    sound_folder = fields.String(validate=Length(1, 128))  # <PlaySound folder=...>
    voice = fields.String(validate=Length(1, 64))  # PlayTTS voice, e.g. Alice-8KHz
    transfer_variable = fields.String(
        load_default=DEFAULT_TRANSFER_VARIABLE,
        validate=[
            Regexp(PARAMETER_NAME, error="must be a name"),
            NoneOf([TURN_VARIABLE], error="{input} is Glue's own variable"),
        ],
    )
    number_format = fields.String(
        load_default=DEFAULT_NUMBER_FORMAT, validate=OneOf(NUMBER_FORMATS)
    )
    # The option a Jump lands on in a context.
    jump_option = fields.String(load_default=DEFAULT_JUMP_OPTION, validate=Length(1, 16))


SETTINGS = Settings

# The voipnow context each kind of step jumps to.
_CONTEXTS = (
    (Ask, "ask", "ask_context"),
    (Transfer, "transfer", "transfer_context"),
    (FindMe, "findme", "transfer_context"),
    (Voicemail, "voicemail", "voicemail_context"),
)


def check_flow(
    block: Any,
    raw_on: Mapping[str, Any],
    outcomes: Mapping[str, Sequence[Step | None]],
    errors: Errors,
) -> None:
    """VoipNow asks, transfers and takes messages in IVR contexts the admin made:
    each step the flow uses needs its context named."""
    if not isinstance(block, dict):
        return
    needed: dict[str, list[str]] = {}
    for outcome in OUTCOMES:
        written = outcome in raw_on
        steps: Sequence[Step | None] = outcomes.get(outcome, ()) if written else ()
        if not written:  # the defaults: retry asks again
            steps = (Ask(),) if outcome == "retry" else DEFAULT_OUTCOMES.get(outcome, ())
        for step in steps:
            if isinstance(step, FindMe) and (step.list_id or "findme_context" in block):
                continue  # a Find Me list is a context; numbers go to findme_context
            for kind, name, key in _CONTEXTS:
                if isinstance(step, kind):
                    where = f"{name} in {outcome}" + ("" if written else " (default)")
                    if where not in needed.setdefault(key, []):
                        needed[key].append(where)
    for key, uses in needed.items():
        if block.get(key) is None:
            message = Message(
                f"required: the flow has {', '.join(uses)}",
                f"add voipnow.{key}: <IVR context name>",
            )
            add_error(errors, ("voipnow", key), message)
