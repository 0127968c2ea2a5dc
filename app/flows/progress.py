"""How far a caller got in a flow's verification, kept on the call for the
admin overview's funnel: the claim entered, then the PIN (claim and PIN in,
so it was checked). Only ever moves forward, whatever turns come after."""

from __future__ import annotations

from collections.abc import Mapping

from app.flows.engine import given
from app.flows.model import Flow

CLAIM = "claim"
PIN = "pin"
RANK: Mapping[str | None, int] = {None: 0, CLAIM: 1, PIN: 2}


def reached(
    before: str | None,
    flow: Flow,
    answers: Mapping[str, str],
    caller: str | None,
    checked: bool,
) -> str | None:
    """The call's new stage, or None when this turn took it no further.

    `checked`: the turn verified a claim and PIN. A caller_id flow's claim is
    the caller's number, entered by calling from it.
    """
    if checked:
        now: str | None = PIN
    elif flow.verify.by == "caller_id":
        now = CLAIM if given(caller) else None
    else:
        now = CLAIM if flow.verify.claim and given(answers.get(flow.verify.claim)) else None
    return now if RANK[now] > RANK.get(before, 0) else None
