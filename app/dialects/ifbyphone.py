"""IfbyPhone / DialogTech SurVo "Glue" dialect: form fields in, `<action>` XML out.

IfbyPhone runs one building block per reply, so a sequence such as "say, then
transfer" takes several round trips: a reply carries as many steps as one block
can (adjacent messages merge into one read-aloud SurVo) and reports how many it
consumed; the rest waits in the call's state, mirrored in `p_t`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from lxml import etree
from marshmallow import fields
from marshmallow.validate import Regexp

from app.dialects.base import Cursor, Rendered
from app.neutral.fields import PARAMETER_NAME, Errors, Id, Message, StrictSchema, add_error
from app.neutral.outcomes import DEFAULT_OUTCOMES, OUTCOMES
from app.neutral.phones import unformatted
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

NAME = "ifbyphone"
CONTENT_TYPE = "text/xml; charset=utf-8"
# Fields IfbyPhone itself sends (and our auth key): everything else is an answer.
PLATFORM_FIELDS = frozenset({"caller_id", "session_id", "timestamp", "p_t", "key"})
# The platform's fields a request's parse reads: checked for length.
READ_FIELDS = ("caller_id", "session_id", "p_t")
# A retried delivery may carry a new timestamp; p_t tells the turns of a call apart.
VOLATILE_FIELDS = frozenset({"timestamp"})
ONE_BY_ONE = False  # the SurVo asks every question, then posts all answers
NEEDS_SETTINGS = True  # SurVo ids

log = logging.getLogger(__name__)


def parse(values: Mapping[str, str], max_length: int) -> Turn:
    """Read a SurVo post (GET query or POST/PUT form) into a turn.

    Every field that is not IfbyPhone's own may answer a question: the runner
    reads (and checks) those the flow's questions name; the rest are kept as sent.
    """
    check_lengths(values, READ_FIELDS, max_length)
    session_id = values.get("session_id", "").strip()
    if not session_id:
        raise MalformedRequest("no session_id")
    if len(session_id) > MAX_CALL_ID:
        raise MalformedRequest(f"session_id longer than {MAX_CALL_ID}")
    return Turn(
        platform=NAME,
        call_id=session_id,
        caller=values.get("caller_id") or None,
        answers={k: v for k, v in values.items() if k not in PLATFORM_FIELDS},
        pass_through=parse_pass_through(values, strict=True),
        fields=dict(values),
    )


def parse_pass_through(values: Mapping[str, str], strict: bool = False) -> dict[str, str]:
    """The pass-through of a request, even one that is not a readable turn:
    a turn counter that is no number is left out, or with `strict` (a turn is
    read) makes the request malformed."""
    pass_through = decode_pass_through(values.get("p_t", ""))
    turn = pass_through.get("turn")
    if turn is not None and read_number(turn, MAX_COUNTER) is None:
        if strict:
            raise MalformedRequest(f"p_t's turn is not a number up to {MAX_COUNTER}")
        del pass_through["turn"]
    return pass_through


def decode_pass_through(text: str) -> dict[str, str]:
    """`key|value||key|value` → dict; malformed pieces are ignored."""
    pairs = (piece.split("|", 1) for piece in text.split("||") if "|" in piece)
    return {key: value for key, value in pairs}


def encode_pass_through(values: Mapping[str, str]) -> str:
    return "||".join(f"{key}|{value}" for key, value in values.items())


def render(steps: Sequence[Step], block: Mapping[str, Any], cursor: Cursor) -> Rendered:
    """The `<action>` for the first building block of `steps`.

    `block` is the flow's `ifbyphone:` settings (survo, say_survo, say_parameter).
    """
    message, consumed = _leading_message(steps)
    if consumed and message and block.get("say_survo"):
        params = {block.get("say_parameter", "message"): message}
        survo = _survo(block["say_survo"], params, cursor, resume_at=cursor.index + consumed)
        return _reply(survo, consumed)
    if consumed:
        if message:
            log.warning("flow has messages but no ifbyphone say_survo: skipped")
        if consumed == len(steps):
            return _reply(_app("hangup"), consumed)
        after = Cursor(cursor.outcome, cursor.index + consumed, cursor.turn)
        following = render(steps[consumed:], block, after)
        return Rendered(following.body, consumed + following.consumed)
    return _reply(_building_block(steps[0], block, cursor), 1)


def render_hangup() -> bytes:
    """A reply for when there is no flow to consult."""
    return _serialise(_app("hangup"))


def _leading_message(steps: Sequence[Step]) -> tuple[str, int]:
    """Adjacent Say/SayDigits/Pause steps merged into one text read aloud."""
    parts: list[str] = []
    count = 0
    for step in steps:
        if isinstance(step, Say):
            parts.append(step.text)
        elif isinstance(step, SayDigits):
            # Spaced with commas, so text-to-speech reads digit by digit.
            parts.append(", ".join(step.digits))
        elif not isinstance(step, Pause | Play):
            # No pause block (the gap between sentences is enough), and no
            # building block plays a sound: record it in the read-aloud SurVo.
            break
        count += 1
    return " ".join(p for p in parts if p), count


def _building_block(step: Step, block: Mapping[str, Any], cursor: Cursor) -> etree._Element:
    if isinstance(step, Ask):
        return _survo(block["survo"], {}, cursor, resume_at=None)
    if isinstance(step, RunForm):
        return _survo(step.form, step.params, cursor, resume_at=cursor.index + 1)
    if isinstance(step, Transfer):
        return _app("transfer", destination=unformatted(step.to))
    if isinstance(step, FindMe):
        if step.list_id:
            return _app("findme", id=step.list_id)
        return _app("findme", phone_list="|".join(unformatted(n) for n in step.numbers))
    if isinstance(step, VirtualReceptionist):
        return _app("vr", id=step.menu)
    if isinstance(step, Voicemail):
        return _app("voicemail", id=step.box)
    if isinstance(step, Hangup):
        return _app("hangup")
    raise TypeError(f"no IfbyPhone building block for {step!r}")


def _survo(
    survo_id: str, params: Mapping[str, str], cursor: Cursor, resume_at: int | None
) -> etree._Element:
    action = _app("survo", id=survo_id)
    parameters = action.find("parameters")
    assert parameters is not None
    if params:
        user_parameters = etree.SubElement(parameters, "user_parameters")
        for key, value in params.items():
            etree.SubElement(user_parameters, key).text = value
    # The SurVo posts back here with p_t unchanged: it says where the call stands.
    mirror = {"turn": str(cursor.turn + 1)}
    if resume_at is not None:
        mirror["next"] = f"{cursor.outcome}:{resume_at}"
    etree.SubElement(parameters, "p_t").text = encode_pass_through(mirror)
    return action


def _app(name: str, **parameters: str) -> etree._Element:
    action = etree.Element("action")
    etree.SubElement(action, "app").text = name
    if parameters:
        container = etree.SubElement(action, "parameters")
        for key, value in parameters.items():
            etree.SubElement(container, key).text = value
    return action


def _reply(action: etree._Element, consumed: int) -> Rendered:
    return Rendered(_serialise(action), consumed)


def _serialise(action: etree._Element) -> bytes:
    return etree.tostring(action, xml_declaration=True, encoding="utf-8")


# --- the flow's `ifbyphone:` block ----------------------------------------------


class Settings(StrictSchema):
    """The flow's `ifbyphone:` block."""

    survo = Id(numeric=True, required=True)  # the SurVo that asks the questions
    say_survo = Id(numeric=True)  # a SurVo that reads one parameter aloud
    say_parameter = fields.String(
        load_default="message", validate=Regexp(PARAMETER_NAME, error="must be a name")
    )


SETTINGS = Settings


def check_flow(
    block: Any,
    raw_on: Mapping[str, Any],
    outcomes: Mapping[str, Sequence[Step | None]],
    errors: Errors,
) -> None:
    """IfbyPhone has no say app: text is read by running the say_survo form."""
    if not isinstance(block, dict) or block.get("say_survo") is not None:
        return
    speaking = []
    for outcome in OUTCOMES:
        written = outcome in raw_on
        steps = outcomes.get(outcome, ()) if written else DEFAULT_OUTCOMES.get(outcome, ())
        if any(isinstance(step, Say | SayDigits | Pause) for step in steps):
            speaking.append(outcome if written else f"{outcome} (default)")
    if speaking:
        add_error(
            errors,
            ("ifbyphone", "say_survo"),
            Message(
                f"required: the flow says text in {', '.join(speaking)}",
                "add ifbyphone.say_survo: <SurVo id>",
            ),
        )
