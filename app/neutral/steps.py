"""Neutral steps: what happens next on a call, whatever the platform.

In a flow file a step may hold templates (`Say("Thank you, {name}.")`) and
symbolic targets (`Transfer("verified")`); the flow engine resolves them against
the verified record before a dialect renders them, so dialects only ever see
concrete text and E.164 numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Transfer/FindMe target meaning "the verified user's or group's phone(s)".
VERIFIED = "verified"


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class SayDigits:
    digits: str


@dataclass(frozen=True)
class Play:
    """Play a recorded sound: a URL, or a sound's name on platforms that store them."""

    sound: str


@dataclass(frozen=True)
class Pause:
    seconds: int = 1


@dataclass(frozen=True)
class Prompt:
    """One question as a platform that asks it itself needs it (a `<Gather>`)."""

    name: str
    text: str | None = None
    min_digits: int | None = None
    max_digits: int | None = None
    timeout: int | None = None
    finish_on_key: str = "#"
    reprompt: bool = False  # asked again after silence


@dataclass(frozen=True)
class Ask:
    """Ask the flow's questions (again).

    `prompt` is the first of them to ask now, filled in by the engine for
    platforms where Glue asks one question per request; others run a whole form.
    """

    questions: tuple[str, ...] = ()
    prompt: Prompt | None = None


@dataclass(frozen=True)
class RunForm:
    """Run another voice form (an IfbyPhone SurVo) with parameters it can read aloud."""

    form: str
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Transfer:
    to: str  # VERIFIED or an E.164 number


@dataclass(frozen=True)
class FindMe:
    """Ring a list of phones: a platform Find Me list by id, or numbers."""

    list_id: str | None = None
    numbers: tuple[str, ...] = ()
    to_verified: bool = False


@dataclass(frozen=True)
class VirtualReceptionist:
    menu: str


@dataclass(frozen=True)
class Voicemail:
    box: str


@dataclass(frozen=True)
class Hangup:
    pass


Step = (
    Say
    | SayDigits
    | Play
    | Pause
    | Ask
    | RunForm
    | Transfer
    | FindMe
    | VirtualReceptionist
    | Voicemail
    | Hangup
)

# Steps that hand the call over for good: nothing of the flow runs after them.
CALL_ENDING_STEPS = (Transfer, FindMe, VirtualReceptionist, Voicemail, Hangup)
# Final in a sequence: the call leaves the flow, or (Ask) waits for new answers.
FINAL_STEPS = (Ask, *CALL_ENDING_STEPS)


def is_final(step: Step) -> bool:
    return isinstance(step, FINAL_STEPS)


def ends_call(step: Step) -> bool:
    return isinstance(step, CALL_ENDING_STEPS)
