"""The reply without the database: the flow's `error` steps, when the database
is down or slow (the runner's fallback) and when a request is shed.

Under either, every request needs one, and they are few: one per flow, URL and
point in the apology. So each is rendered once and kept.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import NamedTuple

from app.dialects.base import Cursor, Dialect
from app.flows import engine
from app.flows.engine import CallState
from app.flows.model import Flow
from app.neutral.turn import MAX_COUNTER, read_number

log = logging.getLogger(__name__)


def fallback_reply(
    dialect: Dialect, flow: Flow | None, values: Mapping[str, str], url: str
) -> bytes:
    """The flow's `error` steps, without the database (it may be down).

    Resumes where the pass-through says an earlier apology stopped, so a
    caller hears it once and then the next step, not the apology in a loop.
    """
    if flow is None or (dialect.NEEDS_SETTINGS and not flow.platform(dialect.NAME)):
        return dialect.render_hangup()
    try:
        pass_through = dialect.parse_pass_through(values)
        turn = read_number(pass_through.get("turn", ""), MAX_COUNTER) or 0
        state = resume_from_mirror(CallState(turn=turn), pass_through)
        key = _Fallback(dialect, flow, state.turn, state.pending, state.outcome, url)
        return _rendered_fallback(key)
    except Exception:
        log.exception("flow %s has no usable fallback; hanging up", flow.name)
        return dialect.render_hangup()


class _Fallback(NamedTuple):
    """What a fallback reply depends on; the same dialect and flow objects, not
    equal ones (a flow edited and published again is a new object)."""

    dialect: Dialect
    flow: Flow
    turn: int
    pending: tuple[str, int] | None
    outcome: str | None
    url: str

    def __hash__(self) -> int:
        return hash((id(self.dialect), id(self.flow), *self[2:]))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _Fallback)
            and self.dialect is other.dialect
            and self.flow is other.flow
            and self[2:] == other[2:]
        )


@lru_cache(maxsize=1024)
def _rendered_fallback(key: _Fallback) -> bytes:
    """The cache holds its keys' flows, so an id here is never a later object's."""
    state = CallState(turn=key.turn, pending=key.pending, outcome=key.outcome)
    if state.pending is None:
        decision = engine.start(key.flow, state, "error")
    else:
        decision = engine.resume(key.flow, state, *state.pending)
    cursor = Cursor(decision.outcome, decision.index, state.turn, key.url)
    return key.dialect.render(decision.steps, key.flow.platform(key.dialect.NAME), cursor).body


def resume_from_mirror(state: CallState, pass_through: Mapping[str, str]) -> CallState:
    """Pick up an apology sequence that was sent while the database was unreachable.

    Only the `error` outcome is taken from the platform's pass-through: it needs
    no verified record, so a forged `p_t` can lead nowhere but to an apology.
    """
    outcome, _, index = pass_through.get("next", "").partition(":")
    position = read_number(index, MAX_COUNTER)
    if state.pending is None and outcome == "error" and position is not None:
        return CallState(turn=state.turn, pending=("error", position), outcome="error")
    return state
