"""The flow engine: from a call's state and a platform turn to the next steps.

Pure: no Flask, no database, no HTTP. Verification is passed in as a function,
so the engine is tested with plain data.

Two ways answers arrive, whatever the platform:
- all at once, collected by the platform's own form (IfbyPhone's SurVo, a
  VoipNow IVR): `decide(..., one_by_one=False)`;
- one per request, asked by Glue itself (didML, TwiML `<Gather>`):
  `decide(..., one_by_one=True)`. Glue then asks each question in flow order,
  keeps the answers that are not secret in the call's state, and verifies as
  soon as the claim and the PIN are in. A PIN is never stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from app.flows.model import Flow, Question
from app.neutral.steps import (
    VERIFIED,
    Ask,
    FindMe,
    Hangup,
    Prompt,
    RunForm,
    Say,
    SayDigits,
    Step,
    Transfer,
    ends_call,
    is_final,
)
from app.verification.types import Claim, Verdict

# What IfbyPhone sends for a question the caller skipped or never reached; the
# one-by-one dialects send it for a question met with silence.
NO_ANSWER = "NA"
# Times a question met with silence (or keys it cannot take) is asked again
# before `no_input` (or `error`).
REPROMPTS = 1

VerifyFn = Callable[[Claim, str], Verdict]


class AnswerError(ValueError):
    """An answer the flow's question cannot accept (wrong type, too long, ...)."""


class ResolveError(ValueError):
    """A step that cannot be made concrete (say, a transfer to a record with no phone)."""


@dataclass(frozen=True)
class CallState:
    """Where a call stands; stored as JSON on the call row between requests."""

    turn: int = 0  # replies sent so far
    tries_used: int = 0  # wrong PINs this call
    pending: tuple[str, int] | None = None  # (outcome, index) of the next step to send
    outcome: str | None = None
    subject: Mapping[str, Any] | None = None  # verified record: {"fields", "phones"}
    ended: bool = False  # a final step was sent
    # One-by-one questions: answers so far (never secret ones), the question
    # just asked, and how often it was asked again (after silence or bad keys).
    answers: Mapping[str, str] = field(default_factory=dict)
    asking: str | None = None
    reprompts: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "turn": self.turn,
            "tries_used": self.tries_used,
            "pending": list(self.pending) if self.pending else None,
            "outcome": self.outcome,
            "subject": dict(self.subject) if self.subject else None,
            "ended": self.ended,
            "answers": dict(self.answers),
            "asking": self.asking,
            "reprompts": self.reprompts,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> CallState:
        if not data:
            return cls()
        pending = data.get("pending")
        return cls(
            turn=int(data.get("turn", 0)),
            tries_used=int(data.get("tries_used", 0)),
            pending=(str(pending[0]), int(pending[1])) if pending else None,
            outcome=data.get("outcome"),
            subject=data.get("subject"),
            ended=bool(data.get("ended", False)),
            answers=dict(data.get("answers") or {}),
            asking=data.get("asking"),
            reprompts=int(data.get("reprompts", 0)),
        )


@dataclass(frozen=True)
class Decision:
    """Steps to send from position `index` of `outcome`'s sequence."""

    outcome: str
    index: int
    steps: tuple[Step, ...]
    state: CallState

    def after_reply(self, consumed: int) -> CallState:
        """The call's state once a dialect has sent the first `consumed` steps.

        Until a final step is sent the platform comes back for more (after a
        message, or a SurVo that posts back), even past the sequence's end. An
        `Ask` forgets the answers it asks for again.
        """
        last = self.steps[consumed - 1] if consumed else None
        final = last is not None and is_final(last)
        state = replace(
            self.state,
            turn=self.state.turn + 1,
            pending=None if final else (self.outcome, self.index + consumed),
            ended=last is not None and ends_call(last),
        )
        if isinstance(last, Ask):
            state = replace(
                state,
                answers={k: v for k, v in state.answers.items() if k not in last.questions},
                asking=last.prompt.name if last.prompt else None,
                reprompts=self.state.reprompts if last.prompt and last.prompt.reprompt else 0,
            )
        return state


def decide(
    flow: Flow,
    state: CallState,
    answers: Mapping[str, str],
    verify: VerifyFn,
    caller: str | None = None,
    one_by_one: bool = False,
) -> Decision:
    """The next steps of a call, given what the platform just sent."""
    if state.pending is not None:
        return resume(flow, state, *state.pending)
    if state.ended:
        return Decision("ended", 0, (Hangup(),), state)
    if one_by_one:
        return _collect(flow, state, answers, verify, caller)
    try:
        check_answers(flow, answers, require=True)
    except AnswerError:
        return start(flow, state, "error")
    return _verify(flow, state, answers, verify, caller)


def _collect(
    flow: Flow,
    state: CallState,
    answers: Mapping[str, str],
    verify: VerifyFn,
    caller: str | None,
) -> Decision:
    """One-by-one questions: take the answer to the question asked, then ask the
    next or verify. Only the question just asked may be answered; anything else
    a request carries is ignored, so an answer can never skip a question."""
    if state.asking is not None and state.asking in answers:
        question = next(q for q in flow.questions if q.name == state.asking)
        value = given(answers[state.asking])
        if value is None or not _fits(question, value):
            if state.reprompts >= REPROMPTS:
                return start(flow, state, "no_input" if value is None else "error")
            # Silence, or keys the question cannot take (Twilio does not enforce
            # a minimum number of digits): ask once more.
            return _ask(flow, replace(state, reprompts=state.reprompts + 1), question.name, True)
        collected = {**state.answers, question.name: value}
    else:
        collected = dict(state.answers)
    secret = {flow.verify.pin, *(q.name for q in flow.questions if q.secret)}
    state = replace(state, answers={k: v for k, v in collected.items() if k not in secret})
    needed = [flow.verify.pin] + ([flow.verify.claim] if flow.verify.claim else [])
    if all(name in collected for name in needed):
        return _verify(flow, replace(state, asking=None, reprompts=0), collected, verify, caller)
    missing = next(q.name for q in flow.questions if q.name not in collected)
    return _ask(flow, replace(state, reprompts=0), missing, False)


def _ask(flow: Flow, state: CallState, name: str, reprompt: bool) -> Decision:
    prompt = _prompt(flow, name, reprompt)
    return Decision("asking", 0, (Ask((name,), prompt),), state)


def _verify(
    flow: Flow,
    state: CallState,
    answers: Mapping[str, str],
    verify: VerifyFn,
    caller: str | None,
) -> Decision:
    claim, pin = _read_claim(flow, answers, caller)
    if claim is None or pin is None:
        return start(flow, state, "no_input")
    verdict = verify(claim, pin)
    if verdict.outcome == "verified":
        assert verdict.subject is not None
        subject = {"fields": verdict.subject.fields(), "phones": list(verdict.subject.phones)}
        return start(flow, replace(state, subject=subject), "verified")
    if verdict.outcome == "locked":
        return start(flow, state, "locked")
    tries_used = state.tries_used + 1
    outcome = "failed" if tries_used >= flow.verify.tries else "retry"
    return start(flow, replace(state, tries_used=tries_used), outcome)


def start(flow: Flow, state: CallState, outcome: str) -> Decision:
    """Begin an outcome's sequence from its first step."""
    return resume(flow, replace(state, outcome=outcome), outcome, 0)


def resume(flow: Flow, state: CallState, outcome: str, index: int) -> Decision:
    """Continue an outcome's sequence at `index` (carried over round trips)."""
    sequence = flow.outcomes.get(outcome, ())[index:]
    if not sequence:
        return Decision(outcome, index, (Hangup(),), state)
    try:
        steps = tuple(resolve(step, state.subject, flow) for step in sequence)
    except ResolveError:
        if outcome == "error":
            return Decision(outcome, index, (Hangup(),), state)
        return resume(flow, replace(state, outcome="error"), "error", 0)
    return Decision(outcome, index, steps, state)


def resolve(step: Step, subject: Mapping[str, Any] | None, flow: Flow) -> Step:
    """Fill a step's templates and symbolic targets from the verified record."""
    fields: Mapping[str, str] = subject["fields"] if subject else {}
    phones: list[str] = list(subject["phones"]) if subject else []
    if isinstance(step, Say):
        return Say(_fill(step.text, fields))
    if isinstance(step, SayDigits):
        return SayDigits("".join(ch for ch in _fill(step.digits, fields) if ch.isdigit()))
    if isinstance(step, RunForm):
        return RunForm(step.form, {k: _fill(v, fields) for k, v in step.params.items()})
    if isinstance(step, Ask):
        names = step.questions or tuple(q.name for q in flow.questions)
        return Ask(step.questions, _prompt(flow, names[0], False))
    if isinstance(step, Transfer) and step.to == VERIFIED:
        if not phones:
            raise ResolveError("the verified record has no phone to transfer to")
        return Transfer(phones[0])
    if isinstance(step, FindMe) and step.to_verified:
        if not phones:
            raise ResolveError("the verified record has no phone for Find Me")
        return FindMe(numbers=tuple(phones))
    return step


def _prompt(flow: Flow, name: str, reprompt: bool) -> Prompt:
    question = next(q for q in flow.questions if q.name == name)
    return Prompt(
        name=question.name,
        text=question.prompt,
        min_digits=question.min_digits,
        max_digits=question.max_digits,
        timeout=question.timeout,
        finish_on_key=question.finish_on_key,
        reprompt=reprompt,
    )


def _fill(template: str, fields: Mapping[str, str]) -> str:
    try:
        return template.format_map(fields)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise ResolveError(f"cannot fill {template!r}: {exc}") from None


def _read_claim(
    flow: Flow, answers: Mapping[str, str], caller: str | None
) -> tuple[Claim | None, str | None]:
    """The claim and PIN from the answers; None for each one not given."""
    pin = given(answers.get(flow.verify.pin))
    if flow.verify.by == "caller_id":
        return (Claim("caller_id", caller) if caller else None), pin
    assert flow.verify.claim is not None
    claimed = given(answers.get(flow.verify.claim))
    return (Claim(flow.verify.by, claimed) if claimed else None), pin


def given(value: str | None) -> str | None:
    """An answer as keyed, or None for silence or a question skipped."""
    if value is None:
        return None
    value = value.strip()
    return None if value in ("", NO_ANSWER, "null") else value


def check_answers(flow: Flow, answers: Mapping[str, str], require: bool = True) -> None:
    """Raise AnswerError if an answer does not fit its question.

    With `require`, the claim and PIN fields must be present (a platform that
    sends all answers at once sends `NA` for a skipped one, never nothing).
    """
    needed = [flow.verify.pin] + ([flow.verify.claim] if flow.verify.claim else [])
    for name in needed if require else ():
        if name not in answers:
            raise AnswerError(f"missing answer {name!r}")
    for question in flow.questions:
        value = given(answers.get(question.name))
        if value is not None:
            _check_answer(question, value)


def _fits(question: Question, value: str) -> bool:
    try:
        _check_answer(question, value)
    except AnswerError:
        return False
    return True


def _check_answer(question: Question, value: str) -> None:
    if question.type == "digits":
        if not (value.isascii() and value.isdigit()):
            raise AnswerError(f"{question.name}: digits expected")
        if question.max_digits is not None and len(value) > question.max_digits:
            raise AnswerError(f"{question.name}: more than {question.max_digits} digits")
        if question.min_digits is not None and len(value) < question.min_digits:
            raise AnswerError(f"{question.name}: fewer than {question.min_digits} digits")
    elif question.type == "yes_no":
        if value not in ("Yes", "No"):
            raise AnswerError(f"{question.name}: Yes or No expected")
    elif question.type == "multiple_choice" and value not in question.choices:
        raise AnswerError(f"{question.name}: not one of the choices")
