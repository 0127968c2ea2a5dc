"""Trying a flow by hand: a call's turns through the real engine and a platform's
real dialect, with nothing stored.

What the runner does for a platform request, less the database: the engine
decides, the dialect renders, `Decision.after_reply` says where the call
stands. Verification is passed in (a dry run, see app/verification/dry_run.py),
and the state goes back to whoever keeps the trial (the test phone keeps it in a
signed token). One caller's turn may take several requests, as on a real
platform: after a message that is not final (an IfbyPhone SurVo that posts
back, a TwiML `<Redirect>`) the platform asks again at once, until the caller
is asked something or the call leaves the flow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from app.dialects.base import Cursor, Dialect
from app.dialects.pretty import pretty_xml
from app.flows import engine, graph
from app.flows.engine import NO_ANSWER, CallState, VerifyFn
from app.flows.model import Flow, Question
from app.neutral.outcomes import OUTCOMES
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
from app.verification.types import Claim, Verdict

# Requests one caller's turn may take before the trial stops it: a flow going
# round in circles.
MAX_REQUESTS = 20


@dataclass(frozen=True)
class Heard:
    """A line of what the caller gets: `spoken` text is read aloud, the rest is a note."""

    text: str
    spoken: bool = False


@dataclass(frozen=True)
class Reply:
    """One request's reply: as the platform gets it, and as the caller hears it."""

    xml: str  # indented
    outcome: str
    heard: tuple[Heard, ...]
    path: tuple[str, ...]  # graph nodes this reply went through


@dataclass(frozen=True)
class Result:
    """A caller's turn: the replies it took, where the call stands, what it asks next."""

    replies: tuple[Reply, ...]
    state: CallState
    asks: tuple[Question, ...]  # the questions the phone asks now (none once ended)
    ended: bool
    path: tuple[str, ...]  # graph nodes, the questions answered first


def platform_asks_all(dialect: Dialect) -> bool:
    """Whether the platform's own form asks every question, then sends them at once."""
    return not dialect.ONE_BY_ONE


def begin(flow: Flow, dialect: Dialect, verify: VerifyFn, caller: str | None, url: str) -> Result:
    """A new call. Where the platform's form asks first (IfbyPhone, VoipNow),
    it asks every question before Glue hears anything; elsewhere Glue answers
    the call's first request."""
    if platform_asks_all(dialect):
        return Result((), CallState(), flow.questions, False, (graph.START,))
    result = take(flow, dialect, CallState(), {}, verify, caller, url)
    return replace(result, path=(graph.START, *result.path))


def take(
    flow: Flow,
    dialect: Dialect,
    state: CallState,
    answers: Mapping[str, str],
    verify: VerifyFn,
    caller: str | None,
    url: str,
) -> Result:
    """The caller's answers (keys; "" for silence), and every reply until the
    call asks again or ends.

    `answers` holds the question asked (one by one) or every question the
    platform's form asked; a question left out is sent as skipped.
    """
    if platform_asks_all(dialect):
        sent = {q.name: answers.get(q.name) or NO_ANSWER for q in flow.questions}
        path = [graph.question_node(flow, q.name) for q in flow.questions if q.name in answers]
    else:
        sent = dict(answers)
        path = []
    block = flow.platform(dialect.NAME)
    replies: list[Reply] = []
    checks: list[Verdict] = []

    def check(claim: Claim, pin: str) -> Verdict:
        checks.append(verify(claim, pin))
        return checks[-1]

    for _ in range(MAX_REQUESTS):
        before = len(checks)
        decision = engine.decide(flow, state, sent, check, caller, one_by_one=dialect.ONE_BY_ONE)
        cursor = Cursor(decision.outcome, decision.index, state.turn, url)
        rendered = dialect.render(decision.steps, block, cursor)
        steps = decision.steps[: rendered.consumed]
        state = decision.after_reply(rendered.consumed)
        nodes = _nodes(flow, decision, rendered.consumed, len(checks) > before)
        replies.append(
            Reply(pretty_xml(rendered.body), decision.outcome, _heard(steps, flow), nodes)
        )
        path += nodes
        last = steps[-1] if steps else None
        if state.ended or isinstance(last, Ask):
            asks = () if state.ended else _asked(flow, last)
            return Result(tuple(replies), state, asks, state.ended, tuple(path))
        sent = {}  # the platform comes back for the rest, with no answers
    stop = Reply("", "stopped", (Heard(f"(stopped after {MAX_REQUESTS} requests)"),), ())
    return Result((*replies, stop), replace(state, ended=True), (), True, tuple(path))


def _asked(flow: Flow, step: Step | None) -> tuple[Question, ...]:
    """The questions an `Ask` puts to the caller: the one its prompt names (one by
    one), else the ones it names, else all."""
    if not isinstance(step, Ask):
        return ()
    names = (step.prompt.name,) if step.prompt else step.questions
    return tuple(q for q in flow.questions if not names or q.name in names)


def _nodes(flow: Flow, decision: engine.Decision, consumed: int, checked: bool) -> tuple[str, ...]:
    """The graph nodes of one reply: the check if one ran, the outcome and the steps sent."""
    if decision.outcome == "asking":
        step = decision.steps[0] if decision.steps else None
        prompt = step.prompt if isinstance(step, Ask) else None
        return (graph.question_node(flow, prompt.name),) if prompt else ()
    if decision.outcome not in OUTCOMES:
        return ()  # a call already over
    head = (graph.VERIFY,) if checked else ()
    stop = decision.index + consumed
    return (*head, *graph.outcome_path(flow, decision.outcome, decision.index, stop))


def _heard(steps: tuple[Step, ...], flow: Flow) -> tuple[Heard, ...]:
    return tuple(heard for step in steps if (heard := _one_heard(step, flow)) is not None)


def _one_heard(step: Step, flow: Flow) -> Heard | None:
    """What the caller hears of a step (spoken), or what happens (a note)."""
    if isinstance(step, Say):
        return Heard(step.text, spoken=True)
    if isinstance(step, SayDigits):
        return Heard(" ".join(step.digits), spoken=True)
    if isinstance(step, Ask):
        if step.prompt is not None:
            question = flow.question(step.prompt.name)
            text = step.prompt.text or (question.prompt if question else None)
            return Heard(text, spoken=True) if text else Heard(f"(asks {step.prompt.name})")
        names = step.questions or tuple(q.name for q in flow.questions)
        return Heard(f"(the platform's form asks {', '.join(names)})")
    if isinstance(step, Play):
        return Heard(f"(plays {step.sound})")
    if isinstance(step, Pause):
        return Heard(f"(pause, {step.seconds} s)")
    if isinstance(step, RunForm):
        params = ", ".join(f"{k}={v}" for k, v in step.params.items())
        return Heard(f"(runs form {step.form}{' with ' + params if params else ''})")
    if isinstance(step, Transfer):
        return Heard(f"(transferred to {step.to})")
    if isinstance(step, FindMe):
        target = f"Find Me list {step.list_id}" if step.list_id else ", ".join(step.numbers)
        return Heard(f"(rings {target})")
    if isinstance(step, VirtualReceptionist):
        return Heard(f"(goes to menu {step.menu})")
    if isinstance(step, Voicemail):
        return Heard(f"(records a voicemail, box {step.box})")
    if isinstance(step, Hangup):
        return Heard("(hangs up)")
    return None
