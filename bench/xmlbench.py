"""XML micro-benchmark: a typical reply rendered by our TwiML dialect (lxml) and
built with twilio-python's VoiceResponse, same process, same document.

Both sides start from the same inputs (texts, numbers, the call's URL and
turn) and end with the bytes of the reply, callback URLs included, so both do
the same work. Each document is checked to be the same XML both ways (canonical
form) before it is timed.

    python -m bench xml [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from lxml import etree

URL = "https://glue.example.com/twiml/verify_caller"
TURN = 3
RETRY = "That did not match. Please try again."
PROMPT = "Please enter your account number, then press pound."
THANKS = "Thank you, Ada Lovelace."
NUMBER = "+13125550101"


@dataclass
class DocResult:
    doc: str
    description: str
    ours_us: float  # median µs per document
    twilio_us: float
    bytes: int

    @property
    def speedup(self) -> float:
        """twilio-python's time over ours: >= 1 means ours is at least as fast."""
        return self.twilio_us / self.ours_us


def _ours(doc: str) -> Callable[[], bytes]:
    from app.dialects.base import Cursor
    from app.dialects.twiml import TWIML
    from app.neutral.steps import Ask, Prompt, Say, Step, Transfer

    prompt = Prompt(name="account", text=PROMPT, min_digits=1, max_digits=10)
    ask = Ask(questions=("account", "pin"), prompt=prompt)
    documents: dict[str, list[Step]] = {
        "gather": [Say(RETRY), ask],
        "dial": [Say(THANKS), Transfer(NUMBER)],
        "combined": [ask, Say(THANKS), Transfer(NUMBER)],
    }
    steps = documents[doc]
    cursor = Cursor("retry", 0, TURN, URL)
    block: dict[str, object] = {}

    def render() -> bytes:
        return TWIML.render(steps, block, cursor).body

    return render


def _twilio(doc: str) -> Callable[[], bytes]:
    from twilio.twiml.voice_response import VoiceResponse

    def callback(**query: str) -> str:
        return f"{URL}?{urlencode({'turn': TURN + 1, **query})}"

    def gather(response: VoiceResponse) -> None:
        g = response.gather(
            input="dtmf",
            action=callback(question="account"),
            method="POST",
            timeout=5,
            finish_on_key="#",
            num_digits=10,
        )
        g.say(PROMPT)
        response.redirect(callback(question="account", silence="1"), method="POST")

    def dial(response: VoiceResponse) -> None:
        response.say(THANKS)
        response.dial().number(NUMBER)
        response.hangup()

    def build() -> bytes:
        response = VoiceResponse()
        if doc == "gather":
            response.say(RETRY)
            gather(response)
        elif doc == "dial":
            dial(response)
        else:
            gather(response)
            dial(response)
        return response.to_xml(xml_declaration=True).encode()

    return build


DOCS = {
    "gather": "Say, then Gather (with Say) + Redirect",
    "dial": "Say, then Dial Number + Hangup",
    "combined": "Gather (with Say) + Redirect, Say, Dial Number, Hangup",
}


def canonical(body: bytes) -> bytes:
    return etree.tostring(etree.fromstring(body), method="c14n")


def check_same(doc: str) -> int:
    ours, theirs = _ours(doc)(), _twilio(doc)()
    if canonical(ours) != canonical(theirs):
        raise AssertionError(f"{doc}: not the same document\nours:   {ours!r}\ntwilio: {theirs!r}")
    return len(ours)


def _time(fn: Callable[[], bytes], repeat: int, rounds: int) -> float:
    """Median over `rounds` of the µs per call, each round `repeat` calls."""
    fn()
    return statistics.median(timeit.repeat(fn, number=repeat, repeat=rounds)) / repeat * 1e6


def run(repeat: int = 3000, rounds: int = 5) -> list[DocResult]:
    results = []
    for doc, description in DOCS.items():
        size = check_same(doc)
        ours, theirs = _ours(doc), _twilio(doc)
        # Interleaved, so that noise from other processes falls on both alike.
        ours_times, twilio_times = [], []
        for _ in range(rounds):
            ours_times.append(_time(ours, repeat, 1))
            twilio_times.append(_time(theirs, repeat, 1))
        results.append(
            DocResult(
                doc,
                description,
                statistics.median(ours_times),
                statistics.median(twilio_times),
                size,
            )
        )
    return results


def table(results: list[DocResult]) -> str:
    head = (
        f"{'XML reply (TwiML)':<66} {'ours µs':>8} {'twilio µs':>9} {'twilio/ours':>11}"
        f" {'target':>7}  result"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        verdict = "PASS" if r.speedup >= 1.0 else "FAIL"
        lines.append(
            f"{r.doc + ': ' + r.description:<66} {r.ours_us:>8.1f} {r.twilio_us:>9.1f}"
            f" {r.speedup:>11.2f} {'>= 1':>7}  {verdict}"
        )
    lines.append(
        "ours: app.dialects.twiml.TWIML.render (lxml); twilio: "
        "twilio.twiml.voice_response.VoiceResponse().to_xml(); same process, same document "
        "(checked in canonical form), callback URLs built on both sides; medians."
    )
    return "\n".join(lines)


def main(options: argparse.Namespace) -> int:
    results = run(repeat=options.repeat, rounds=options.rounds)
    print(table(results))
    return 0
