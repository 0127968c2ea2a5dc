"""A loaded, validated flow: plain immutable data the engine runs on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from app.neutral.steps import Step
from app.verification.types import ClaimKind

QuestionType = Literal["digits", "yes_no", "multiple_choice", "date", "time", "recording"]


@dataclass(frozen=True)
class Question:
    name: str
    type: QuestionType
    prompt: str | None = None  # read by platforms where Glue runs the survey itself
    min_digits: int | None = None
    max_digits: int | None = None
    choices: tuple[str, ...] = ()  # multiple_choice
    secret: bool = False  # masked in stored events and logs
    timeout: int | None = None  # seconds of silence before no input
    finish_on_key: str = "#"


@dataclass(frozen=True)
class Verify:
    by: ClaimKind  # account: user by account number; group; caller_id: registered phone
    pin: str  # question holding the PIN
    claim: str | None = None  # question naming the record (None for caller_id)
    tries: int = 3  # wrong PINs per call before `failed`


@dataclass(frozen=True)
class Flow:
    name: str
    questions: tuple[Question, ...]
    verify: Verify
    outcomes: Mapping[str, tuple[Step, ...]]  # one entry for each name in OUTCOMES
    platforms: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    description: str = ""
    source: str = ""  # file it was loaded from
    version: int | None = None  # the published version's number (None: read from its file)

    def question(self, name: str) -> Question | None:
        return next((q for q in self.questions if q.name == name), None)

    def platform(self, name: str) -> Mapping[str, Any]:
        return self.platforms.get(name, {})
