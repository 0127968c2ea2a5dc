"""Marshmallow schemas for flow files: shape, ranges and cross-references.

Errors keep marshmallow's nested shape (keys and list indexes) so the loader can
point each one at its line in the YAML file. Checks that span the file (a step
naming a question, a template naming a field) run in `FlowSchema` even when other
fields failed, so an admin sees every problem at once. Each of our messages is a
`Message` carrying a fix hint; `default_hint` gives one for marshmallow's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, get_args

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    validates_schema,
)
from marshmallow.validate import Length, NoneOf, OneOf, Range, Regexp

from app.dialects.registry import DIALECTS
from app.flows.model import ClaimKind, Flow, Question, QuestionType, Verify
from app.neutral.fields import (
    DataPath,
    Errors,
    Id,
    Message,
    Params,
    StrictSchema,
    add_error,
    listing,
    phone,
    template,
    template_fields,
)
from app.neutral.outcomes import DEFAULT_OUTCOMES, OUTCOMES
from app.neutral.steps import (
    VERIFIED,
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
    is_final,
)

QUESTION_TYPES: tuple[str, ...] = get_args(QuestionType)
CLAIM_KINDS: tuple[str, ...] = get_args(ClaimKind)
QUESTION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# Request fields the platform sends itself: a question by that name would clash.
# A question's answer arrives in a field named after it: not one a platform sends itself.
RESERVED_NAMES = tuple(sorted(set().union(*(d.PLATFORM_FIELDS for d in DIALECTS))))
PLATFORMS = tuple(dialect.NAME for dialect in DIALECTS)

# Template fields in `verified`, by what was verified; no other outcome has any.
VERIFIED_FIELDS: Mapping[str, tuple[str, ...]] = {
    "account": ("name", "number", "account"),
    "caller_id": ("name", "number", "account"),
    "group": ("name", "number", "group", "member"),
}


# --- fields -------------------------------------------------------------------


# --- steps --------------------------------------------------------------------


class RunFormSchema(StrictSchema):
    id = Id(required=True)
    user_parameters = Params(load_default=dict)


def _ask(value: Any) -> Ask:
    if value is None or value == "all":
        return Ask()  # every question: FlowSchema fills in the names
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ValidationError(
            Message(
                "must be a list of question names, or all",
                "write ask: [pin], or ask: all for every question",
            )
        )
    return Ask(tuple(value))


def _survo(value: Any) -> RunForm:
    if isinstance(value, dict):
        data = RunFormSchema().load(value)
        return RunForm(data["id"], data["user_parameters"])
    return RunForm(Id().deserialize(value))


def _transfer(value: Any) -> Transfer:
    return Transfer(VERIFIED if value == VERIFIED else phone(value))


def _findme(value: Any) -> FindMe:
    if value == VERIFIED:
        return FindMe(to_verified=True)
    if not isinstance(value, list):
        return FindMe(list_id=Id().deserialize(value))
    if not value:
        hint = 'e.g. findme: ["+13125551212", "+13125551313"], or findme: verified'
        raise ValidationError(Message("must list at least one number", hint))
    numbers: list[str] = []
    errors: Errors = {}
    for index, raw in enumerate(value):
        try:
            numbers.append(phone(raw))
        except ValidationError as exc:
            errors[index] = exc.messages
    if errors:
        raise ValidationError(errors)
    return FindMe(numbers=tuple(numbers))


def _hangup(value: Any) -> Hangup:
    if value is not None:
        raise ValidationError(
            Message("takes no value: write hangup", "write - hangup, with nothing after it")
        )
    return Hangup()


_PAUSE = fields.Integer(strict=True, validate=Range(1, 60))
_SOUND = fields.String(validate=Length(1, 500))

STEP_PARSERS: Mapping[str, Callable[[Any], Step]] = {
    "say": lambda value: Say(template(value)),
    "say_digits": lambda value: SayDigits(template(value)),
    "pause": lambda value: Pause(_PAUSE.deserialize(value)),
    "play": lambda value: Play(_SOUND.deserialize(value)),
    "ask": _ask,
    "survo": _survo,
    "transfer": _transfer,
    "findme": _findme,
    "vr": lambda value: VirtualReceptionist(Id().deserialize(value)),
    "voicemail": lambda value: Voicemail(Id().deserialize(value)),
    "hangup": _hangup,
}


def parse_step(raw: Any) -> Step:
    """One list item of an outcome: `hangup` or a one-key mapping like `{say: ...}`."""
    if raw == "hangup":
        return Hangup()
    if not (isinstance(raw, dict) and len(raw) == 1):
        raise ValidationError(
            Message(
                "a step is hangup or one key: value, like {say: Hello.}",
                listing("steps are", list(STEP_PARSERS)),
            )
        )
    ((kind, value),) = raw.items()
    parser = STEP_PARSERS.get(kind)
    if parser is None:
        hint = listing("steps are", list(STEP_PARSERS), str(kind))
        raise ValidationError({str(kind): [Message("unknown step", hint)]})
    try:
        return parser(value)
    except ValidationError as exc:
        raise ValidationError({kind: exc.messages}) from None


def _kind(raw: Any) -> str:
    return "hangup" if raw == "hangup" else str(next(iter(raw)))


class Steps(fields.Field[tuple[Step, ...]]):
    """An outcome's steps. On errors `valid_data` keeps None in place of each bad step,
    so FlowSchema's cross-checks still see the good ones at their indexes."""

    default_error_messages = {
        "invalid": "must be a list of steps",
        "empty": "must have at least one step",
    }

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> tuple[Step, ...]:
        if not isinstance(value, list):
            hint = 'one step a line: - say: "Hello." then - hangup'
            raise ValidationError(Message(str(self.error_messages["invalid"]), hint))
        if not value:
            hint = "add a step, e.g. [hangup]"
            raise ValidationError(Message(str(self.error_messages["empty"]), hint))
        steps: list[Step | None] = []
        errors: Errors = {}
        for index, raw in enumerate(value):
            try:
                steps.append(parse_step(raw))
            except ValidationError as exc:
                steps.append(None)
                errors[index] = exc.messages
        final = next((i for i, s in enumerate(steps) if s is not None and is_final(s)), None)
        last = len(steps) - 1
        if final is not None and final < last:
            kind = _kind(value[final])
            errors.setdefault(
                final + 1,
                [
                    Message(
                        f"unreachable: step after {kind}",
                        f"move it before the {kind}, or delete it",
                    )
                ],
            )
        elif final is None and steps[last] is not None and not isinstance(steps[last], RunForm):
            # A survo posts back to Glue; anything else would leave the call hanging.
            message = "must end with hangup, transfer, findme, vr, voicemail, ask or survo"
            hint = "add - hangup (or another step that hands the call on) after it"
            errors.setdefault(last, [Message(message, hint)])
        if errors:
            raise ValidationError(errors, valid_data=steps)
        return tuple(step for step in steps if step is not None)  # none is None here: for mypy


class OutcomesSchema(StrictSchema):
    verified = Steps(required=True)
    retry = Steps()
    failed = Steps(required=True)
    locked = Steps()
    no_input = Steps()
    error = Steps()


# --- questions, verify, platforms ---------------------------------------------


class QuestionSchema(StrictSchema):
    name = fields.String(
        required=True,
        validate=[
            Regexp(QUESTION_NAME, error="must be a-z, 0-9 and _, starting with a letter"),
            NoneOf(RESERVED_NAMES, error="{input} is a request field name: choose another"),
        ],
    )
    type = fields.String(required=True, validate=OneOf(QUESTION_TYPES))
    prompt = fields.String()
    min_digits = fields.Integer(strict=True, validate=Range(1, 200))
    max_digits = fields.Integer(strict=True, validate=Range(1, 200))
    choices = fields.List(
        fields.String(validate=Length(min=1)),
        validate=Length(min=1, error="must list at least one choice"),
    )
    secret = fields.Boolean()
    timeout = fields.Integer(strict=True, validate=Range(1, 60))
    finish_on_key = fields.String(
        validate=OneOf([*"0123456789*#", ""], error='must be one of 0-9, * or #, or "" for none')
    )

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def check_type_options(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        kind = data.get("type")
        if kind is None:
            return
        errors: Errors = {}
        if kind == "multiple_choice" and "choices" not in original:
            add_error(
                errors,
                ("choices",),
                Message("required for multiple_choice", "add choices: [yes, no]"),
            )
        if kind != "multiple_choice" and "choices" in original:
            hint = "delete choices, or make it type: multiple_choice"
            add_error(errors, ("choices",), Message("only for multiple_choice questions", hint))
        for key in ("min_digits", "max_digits"):
            if kind != "digits" and key in original:
                hint = f"delete {key}, or make it type: digits"
                add_error(errors, (key,), Message("only for digits questions", hint))
        low, high = data.get("min_digits"), data.get("max_digits")
        if low is not None and high is not None and low > high:
            hint = f"make max_digits {low} or more, or min_digits {high} or less"
            add_error(errors, ("max_digits",), Message("must not be less than min_digits", hint))
        if errors:
            raise ValidationError(errors)

    @post_load
    def make_question(self, data: dict[str, Any], **kwargs: Any) -> Question:
        return Question(**{**data, "choices": tuple(data.get("choices", ()))})


class VerifySchema(StrictSchema):
    by = fields.String(required=True, validate=OneOf(CLAIM_KINDS))
    claim = fields.String()
    pin = fields.String(required=True)
    tries = fields.Integer(strict=True, load_default=3, validate=Range(1, 10))

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def check_claim(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        by = data.get("by")
        if by == "caller_id" and "claim" in original:
            hint = "delete claim: the calling phone itself says who it is"
            raise ValidationError(Message("not used with by: caller_id", hint), "claim")
        if by in ("account", "group") and "claim" not in original:
            hint = f"add claim: <the question holding the {by} number>"
            raise ValidationError(Message(f"required with by: {by}", hint), "claim")

    @post_load
    def make_verify(self, data: dict[str, Any], **kwargs: Any) -> Verify:
        return Verify(**data)


# --- the flow -----------------------------------------------------------------


class _FlowSchema(StrictSchema):
    """A flow file; its platform blocks are added below, one per dialect."""

    description = fields.String(load_default="")
    questions = fields.List(
        fields.Nested(QuestionSchema),
        required=True,
        validate=Length(min=1, error="must have at least one question"),
    )
    verify = fields.Nested(VerifySchema, required=True)
    on = fields.Nested(OutcomesSchema, required=True)

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def check_references(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        if not isinstance(original, dict):
            return
        errors: Errors = {}
        # Read questions and verify from the raw file: a question with a bad option
        # still has a name other parts may refer to.
        questions = _declared_questions(original.get("questions"), errors)
        raw_verify = original.get("verify")
        raw_verify = raw_verify if isinstance(raw_verify, dict) else {}
        _check_verify(raw_verify, questions, errors)
        raw_on = original.get("on")
        outcomes = data.get("on")
        if isinstance(raw_on, dict) and outcomes is not None:
            by = raw_verify.get("by")
            fields_here = VERIFIED_FIELDS.get(by) if isinstance(by, str) else None
            _check_outcomes(outcomes, questions, fields_here, errors)
            for dialect in DIALECTS:
                dialect.check_flow(original.get(dialect.NAME), raw_on, outcomes, errors)
        if errors:
            raise ValidationError(errors)

    @post_load
    def make_flow(self, data: dict[str, Any], **kwargs: Any) -> Flow:
        questions: tuple[Question, ...] = tuple(data["questions"])
        everything = Ask(tuple(q.name for q in questions))
        defaults = {**DEFAULT_OUTCOMES, "retry": (everything,)}
        given = data["on"]  # verified and failed are required, so always here
        outcomes = {
            outcome: tuple(
                everything if isinstance(step, Ask) and not step.questions else step
                for step in (given[outcome] if outcome in given else defaults[outcome])
            )
            for outcome in OUTCOMES
        }
        return Flow(
            name="",  # the loader sets name and source from the file
            questions=questions,
            verify=data["verify"],
            outcomes=outcomes,
            platforms={key: data[key] for key in PLATFORMS if key in data},
            description=data["description"],
        )


# Each platform validates its own block (its dialect's SETTINGS schema).
FlowSchema = type(
    "FlowSchema",
    (_FlowSchema,),
    {dialect.NAME: fields.Nested(dialect.SETTINGS) for dialect in DIALECTS},
)


def _declared_questions(raw: Any, errors: Errors) -> dict[str, Any]:
    """name -> type of each question written in the file; flags duplicate names."""
    declared: dict[str, Any] = {}
    for index, question in enumerate(raw if isinstance(raw, list) else []):
        name = question.get("name") if isinstance(question, dict) else None
        if not isinstance(name, str):
            continue
        if name in declared:
            message = Message(f"duplicate question name {name}", "rename one of them, or delete it")
            add_error(errors, ("questions", index, "name"), message)
        else:
            declared[name] = question.get("type")
    return declared


def _check_verify(raw: dict[str, Any], questions: dict[str, Any], errors: Errors) -> None:
    for key in ("claim", "pin"):
        name = raw.get(key)
        if isinstance(name, str) and name not in questions:
            hint = listing("questions are", list(questions), name)
            add_error(errors, ("verify", key), Message(f"no question named {name}", hint))
    claim, pin, order = raw.get("claim"), raw.get("pin"), list(questions)
    # Where Glue asks the questions itself it verifies as soon as the PIN is in,
    # and never keeps a PIN waiting for the claim: the claim comes first.
    if (
        isinstance(claim, str)
        and isinstance(pin, str)
        and {claim, pin} <= set(order)
        and order.index(pin) < order.index(claim)
    ):
        hint = f"move question {claim} above {pin} under questions:"
        add_error(
            errors, ("verify", "pin"), Message(f"question {pin} must come after {claim}", hint)
        )
    if isinstance(pin, str) and pin in questions and questions[pin] != "digits":
        hint = f"make question {pin} type: digits"
        add_error(
            errors, ("verify", "pin"), Message(f"question {pin} must be of type digits", hint)
        )


def _check_outcomes(
    outcomes: Mapping[str, Sequence[Step | None]],
    questions: dict[str, Any],
    verified_fields: tuple[str, ...] | None,
    errors: Errors,
) -> None:
    for outcome, steps in outcomes.items():
        allowed = (verified_fields or ()) if outcome == "verified" else ()
        for index, step in enumerate(steps):
            at: DataPath = ("on", outcome, index)
            if isinstance(step, Ask):
                for position, name in enumerate(step.questions):
                    if name not in questions:
                        hint = listing("questions are", list(questions), name)
                        message = Message(f"no question named {name}", hint)
                        add_error(errors, (*at, "ask", position), message)
            if outcome != "verified" and (
                (isinstance(step, Transfer) and step.to == VERIFIED)
                or (isinstance(step, FindMe) and step.to_verified)
            ):
                kind = "transfer" if isinstance(step, Transfer) else "findme"
                hint = (
                    'use a number here, e.g. transfer: "+13125551212"'
                    if kind == "transfer"
                    else 'use numbers or a list here, e.g. findme: ["+13125551212"] or findme: 77'
                )
                message = Message("verified can only be used in on.verified", hint)
                add_error(errors, (*at, kind), message)
            # by: with an unknown value is reported on verify.by already.
            if outcome == "verified" and verified_fields is None:
                continue
            for where, text in _templates(step):
                for name in template_fields(text):
                    if name not in allowed:
                        hint = (
                            listing("fields here", allowed, name)
                            if allowed
                            else f"only on.verified has fields: take {{{name}}} out"
                        )
                        add_error(errors, (*at, *where), Message(f"unknown field {{{name}}}", hint))


def _templates(step: Step | None) -> list[tuple[DataPath, str]]:
    """Each template in a step, with its path inside the step."""
    if isinstance(step, Say):
        return [(("say",), step.text)]
    if isinstance(step, SayDigits):
        return [(("say_digits",), step.digits)]
    if isinstance(step, RunForm):
        return [(("survo", "user_parameters", key), text) for key, text in step.params.items()]
    return []


# --- hints for marshmallow's own messages -------------------------------------

# An example of each key, for "add ..." and "e.g. ..." hints.
_EXAMPLES: Mapping[str, str] = {
    "questions": "questions: [{name: account, type: digits}, {name: pin, type: digits}]",
    "name": "name: account_number",
    "type": "type: digits",
    "prompt": 'prompt: "Please enter your PIN, then press pound."',
    "min_digits": "min_digits: 4",
    "max_digits": "max_digits: 8",
    "choices": "choices: [yes, no]",
    "secret": "secret: true",
    "timeout": "timeout: 5",
    "finish_on_key": 'finish_on_key: "#"',
    "verify": "verify: {by: account, claim: account, pin: pin}",
    "by": "by: account",
    "claim": "claim: <the question holding the number>",
    "pin": "pin: <the question holding the PIN>",
    "tries": "tries: 3",
    "on": "on: {verified: [{transfer: verified}], failed: [hangup]}",
    "verified": "verified: [{transfer: verified}]",
    "failed": "failed: [hangup]",
    "survo": "survo: <SurVo id>",
    "say_survo": "say_survo: <SurVo id>",
    "say_parameter": "say_parameter: message",
    "id": "id: 4200",
    "pause": "pause: 2",
    "play": 'play: "https://sounds.example.com/hello.wav"',
    "voice": "voice: alice",
    "voicemail_seconds": "voicemail_seconds: 120",
    "jump_option": "jump_option: s",
    "transfer_variable": "transfer_variable: transfer_to",
}

# The schema whose keys may be written at a path (list indexes left out).
_SCHEMAS: Mapping[tuple[str, ...], type[Schema]] = {
    (): FlowSchema,
    ("questions",): QuestionSchema,
    ("verify",): VerifySchema,
    ("on",): OutcomesSchema,
    **{(dialect.NAME,): dialect.SETTINGS for dialect in DIALECTS},
}

_TYPE_HINTS = {
    "Not a valid integer.": "write a whole number",
    "Not a valid boolean.": "write true or false",
    "Not a valid string.": 'put the text in "double quotes"',
    "Not a valid list.": "write a list: [a, b], or one - item a line",
    "Not a valid URL.": "e.g. https://ivr.example.com/menu",
}


def default_hint(at: DataPath, message: str) -> str:
    """A fix hint for a message marshmallow wrote itself (ours are `Message`s)."""
    keys = tuple(key for key in at if isinstance(key, str))
    key = keys[-1] if keys else ""
    example = _EXAMPLES.get(key)
    if message == "unknown key":
        parent = keys[:-1]
        if parent[:1] == ("on",) and parent[-1:] == ("survo",):
            schema: type[Schema] | None = RunFormSchema
        else:
            schema = _SCHEMAS.get(parent)
        return listing("keys here", list(schema._declared_fields), key) if schema else ""
    if message.startswith("Missing data"):
        return f"add {example or key + ': ...'}"
    if message == "must be a mapping of key: value" and not keys:
        return "a flow is key: value lines: questions, verify, on (see verify_caller.yaml)"
    if message.startswith("must be a mapping"):
        return f"e.g. {example}" if example else "write key: value lines under it"
    if message in _TYPE_HINTS:
        return _TYPE_HINTS[message] + (f", e.g. {example}" if example else "")
    if message.startswith("Must be one of"):
        return ""  # the message lists them already
    return f"e.g. {example}" if example else ""
