"""A test call's turns (app/flows/trial.py): the engine and a dialect, no database;
verification is a plain function here."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from app.dialects import ifbyphone, voipnow
from app.dialects.twiml import TWIML
from app.flows import trial
from app.flows.loader import load_flow
from app.flows.model import Flow
from app.verification.types import Claim, Subject, Verdict
from tests.helpers.flows import VERIFIED_PATH

URL = "https://glue.example.com/twiml/verify_caller"
ADA = Subject("user", 1, "1001", "Ada Lovelace", ("+13125550101",))
checked: list[tuple[Claim, str]] = []


def verify(claim: Claim, pin: str) -> Verdict:
    checked.append((claim, pin))
    if claim.value == "1001" and pin == "2468":
        return Verdict("verified", "pin", ADA)
    return Verdict("rejected", "wrong_pin")


@pytest.fixture
def flow(flows_dir: Path) -> Flow:
    checked.clear()
    return load_flow(flows_dir / "verify_caller.yaml")


def test_a_platform_form_asks_everything_before_glue_hears_a_thing(flow: Flow) -> None:
    started = trial.begin(flow, ifbyphone, verify, "3125550199", URL)
    assert started.replies == () and not started.ended
    assert [q.name for q in started.asks] == ["account", "pin"]
    assert started.path == ("start",)
    done = trial.take(
        flow, ifbyphone, started.state, {"account": "1001", "pin": "2468"}, verify, None, URL
    )
    # The message is read by the say SurVo, which posts back: then the transfer.
    assert [r.outcome for r in done.replies] == ["verified", "verified"]
    first, last = (etree.fromstring(r.xml.encode()) for r in done.replies)
    assert first.findtext("parameters/user_parameters/message") == "Thank you, Ada Lovelace."
    assert last.findtext("app") == "transfer"
    assert [h.text for h in done.replies[0].heard if h.spoken] == ["Thank you, Ada Lovelace."]
    assert [h.text for h in done.replies[1].heard] == ["(transferred to +13125550101)"]
    assert done.ended and done.asks == ()
    assert done.path == VERIFIED_PATH[1:]  # a call it went on (start was the turn before)


def test_a_skipped_question_is_sent_as_the_platform_sends_it(flow: Flow) -> None:
    done = trial.take(
        flow, voipnow, trial.CallState(), {"account": "1001", "pin": ""}, verify, None, URL
    )
    assert done.replies[0].outcome == "no_input"
    assert checked == []  # no PIN: nothing to check
    assert "verify" not in done.path


def test_one_question_a_reply_and_the_pin_never_kept(flow: Flow) -> None:
    started = trial.begin(flow, TWIML, verify, "+13125550199", URL)
    [reply] = started.replies
    gather = etree.fromstring(reply.xml.encode()).find("Gather")
    assert gather is not None and gather.get("action", "").startswith(URL + "?")
    assert started.path == ("start", "question 1")
    asked = trial.take(flow, TWIML, started.state, {"account": "1001"}, verify, None, URL)
    assert [q.name for q in asked.asks] == ["pin"] and asked.path == ("question 2",)
    wrong = trial.take(flow, TWIML, asked.state, {"pin": "0000"}, verify, None, URL)
    assert wrong.state.outcome == "retry" and wrong.state.tries_used == 1
    assert "0000" not in str(wrong.state.to_json())
    assert [q.name for q in wrong.asks] == ["account"]  # asked again, from the first
    assert wrong.path[:3] == ("verify", "outcome retry", "retry step 1")
    assert checked == [(Claim("account", "1001"), "0000")]
