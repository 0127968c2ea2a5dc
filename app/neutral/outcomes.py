"""The outcomes a flow ends in, and their steps where a flow does not say otherwise."""

from __future__ import annotations

from collections.abc import Mapping

from app.neutral.steps import Hangup, Say, Step

OUTCOMES = ("verified", "retry", "failed", "locked", "no_input", "error")

# Used where a flow does not say otherwise.
DEFAULT_OUTCOMES: Mapping[str, tuple[Step, ...]] = {
    "retry": (),  # filled in by the loader: ask the flow's questions again
    "locked": (Say("This account is locked. Please try again later."), Hangup()),
    "no_input": (Hangup(),),
    "error": (Say("We are sorry, something went wrong. Please call again later."), Hangup()),
}
