"""The flow engine with plain data and a fake verifier (no Flask, no database)."""

from __future__ import annotations

from app.flows.engine import CallState, decide, resume
from app.flows.model import Flow, Question, Verify
from app.neutral.steps import Ask, FindMe, Hangup, RunForm, Say, SayDigits, Transfer, Voicemail
from app.verification.types import Claim, Subject, Verdict

FLOW = Flow(
    name="verify_caller",
    questions=(
        Question("account", "digits", max_digits=10),
        Question("pin", "digits", min_digits=4, max_digits=8, secret=True),
    ),
    verify=Verify(by="account", claim="account", pin="pin", tries=3),
    outcomes={
        "verified": (Say("Thank you, {name}."), SayDigits("{account}"), Transfer("verified")),
        "retry": (Say("That did not match."), Ask(("account", "pin"))),
        "failed": (Voicemail("200"),),
        "locked": (Say("Locked."), Hangup()),
        "no_input": (Hangup(),),
        "error": (Say("Sorry."), Hangup()),
    },
)

ADA = Subject(kind="user", id=1, number="1001", name="Ada", phones=("+13125550101",))


class FakeVerifier:
    def __init__(self, *verdicts: Verdict) -> None:
        self.verdicts = list(verdicts)
        self.claims: list[tuple[Claim, str]] = []

    def __call__(self, claim: Claim, pin: str) -> Verdict:
        self.claims.append((claim, pin))
        return self.verdicts.pop(0)


def test_verified_caller_gets_templated_steps_and_a_transfer_to_their_phone() -> None:
    verifier = FakeVerifier(Verdict("verified", "pin", ADA))
    decision = decide(FLOW, CallState(), {"account": "1001", "pin": "2468"}, verifier)
    assert verifier.claims == [(Claim("account", "1001"), "2468")]
    assert decision.outcome == "verified"
    assert decision.steps == (Say("Thank you, Ada."), SayDigits("1001"), Transfer("+13125550101"))


def test_wrong_pin_retries_until_tries_run_out_then_fails() -> None:
    state = CallState()
    outcomes = []
    for _ in range(3):
        decision = decide(
            FLOW,
            state,
            {"account": "1001", "pin": "0000"},
            FakeVerifier(Verdict("rejected", "wrong_pin")),
        )
        outcomes.append(decision.outcome)
        state = decision.after_reply(len(decision.steps))
    assert outcomes == ["retry", "retry", "failed"]
    assert state.tries_used == 3
    assert state.ended  # voicemail hands the call over


def test_locked_verdict_runs_the_locked_steps() -> None:
    decision = decide(
        FLOW,
        CallState(),
        {"account": "1001", "pin": "2468"},
        FakeVerifier(Verdict("locked", "locked")),
    )
    assert decision.outcome == "locked"
    assert decision.steps == (Say("Locked."), Hangup())


def test_na_or_empty_answers_are_no_input_and_never_verified() -> None:
    verifier = FakeVerifier()
    for answers in ({"account": "NA", "pin": "NA"}, {"account": "1001", "pin": ""}):
        decision = decide(FLOW, CallState(), answers, verifier)
        assert decision.outcome == "no_input"
    assert verifier.claims == []


def test_malformed_answers_take_the_error_fallback() -> None:
    verifier = FakeVerifier()
    for answers in (
        {"account": "1001"},  # PIN field missing
        {"account": "1001", "pin": "12ab"},  # not digits
        {"account": "12345678901", "pin": "2468"},  # longer than max_digits
        {"account": "1001", "pin": "12"},  # shorter than min_digits
    ):
        assert decide(FLOW, CallState(), answers, verifier).outcome == "error"
    assert verifier.claims == []


def test_sequence_is_carried_over_round_trips() -> None:
    decision = decide(
        FLOW,
        CallState(),
        {"account": "1001", "pin": "2468"},
        FakeVerifier(Verdict("verified", "pin", ADA)),
    )
    state = decision.after_reply(2)  # a dialect that sent the two messages
    assert state.pending == ("verified", 2) and not state.ended
    follow_up = decide(FLOW, state, {}, FakeVerifier())  # no answers in a continuation
    assert follow_up.steps == (Transfer("+13125550101"),)
    final = follow_up.after_reply(1)
    assert final.pending is None and final.ended and final.turn == 2


def test_a_turn_after_the_call_ended_hangs_up() -> None:
    state = CallState(ended=True, turn=3)
    assert decide(FLOW, state, {"account": "1", "pin": "1234"}, FakeVerifier()).steps == (Hangup(),)


def test_verified_record_without_phone_falls_back_to_error() -> None:
    phoneless = Subject(kind="user", id=2, number="1002", name="Bo")
    decision = decide(
        FLOW,
        CallState(),
        {"account": "1002", "pin": "2468"},
        FakeVerifier(Verdict("verified", "pin", phoneless)),
    )
    assert decision.outcome == "error"
    assert decision.steps == (Say("Sorry."), Hangup())


def test_caller_id_flow_claims_by_the_callers_number() -> None:
    flow = Flow(
        name="by_phone",
        questions=(Question("pin", "digits"),),
        verify=Verify(by="caller_id", pin="pin"),
        outcomes={**FLOW.outcomes, "verified": (FindMe(to_verified=True),)},
    )
    verifier = FakeVerifier(Verdict("verified", "pin", ADA))
    decision = decide(flow, CallState(), {"pin": "2468"}, verifier, caller="3125550101")
    assert verifier.claims == [(Claim("caller_id", "3125550101"), "2468")]
    assert decision.steps == (FindMe(numbers=("+13125550101",)),)
    assert decide(flow, CallState(), {"pin": "2468"}, FakeVerifier()).outcome == "no_input"


def test_state_round_trips_through_json() -> None:
    state = CallState(
        turn=2,
        tries_used=1,
        pending=("verified", 1),
        outcome="verified",
        subject={"fields": {"name": "Ada"}, "phones": ["+13125550101"]},
    )
    assert CallState.from_json(state.to_json()) == state
    assert CallState.from_json(None) == CallState()


def test_resume_past_the_end_hangs_up() -> None:
    assert resume(FLOW, CallState(), "error", 7).steps == (Hangup(),)


def test_a_survo_at_the_end_of_a_sequence_leaves_a_resume_point() -> None:
    flow = Flow(
        name="f",
        questions=FLOW.questions,
        verify=FLOW.verify,
        outcomes={**FLOW.outcomes, "verified": (RunForm("4300"),)},
    )
    decision = decide(
        flow,
        CallState(),
        {"account": "1001", "pin": "2468"},
        FakeVerifier(Verdict("verified", "pin", ADA)),
    )
    state = decision.after_reply(1)
    assert state.pending == ("verified", 1) and not state.ended
    assert decide(flow, state, {}, FakeVerifier()).steps == (Hangup(),)


# One question per request (didML, TwiML): Glue asks, in flow order.


def test_one_by_one_asks_each_question_then_verifies_without_storing_the_pin() -> None:
    verifier = FakeVerifier(Verdict("verified", "pin", ADA))
    first = decide(FLOW, CallState(), {}, verifier, one_by_one=True)
    [ask] = first.steps
    assert isinstance(ask, Ask) and ask.prompt is not None and ask.prompt.name == "account"
    state = first.after_reply(1)
    assert state.asking == "account"

    second = decide(FLOW, state, {"account": "1001"}, verifier, one_by_one=True)
    [ask] = second.steps
    assert isinstance(ask, Ask) and ask.prompt and ask.prompt.name == "pin"
    assert ask.prompt.min_digits == 4 and ask.prompt.max_digits == 8
    state = second.after_reply(1)
    assert state.answers == {"account": "1001"} and state.asking == "pin"

    third = decide(FLOW, state, {"pin": "2468"}, verifier, one_by_one=True)
    assert verifier.claims == [(Claim("account", "1001"), "2468")]
    assert third.outcome == "verified"
    assert "2468" not in str(third.after_reply(len(third.steps)).to_json())


def test_one_by_one_silence_reprompts_once_then_is_no_input() -> None:
    state = decide(FLOW, CallState(), {}, FakeVerifier(), one_by_one=True).after_reply(1)
    again = decide(FLOW, state, {"account": "NA"}, FakeVerifier(), one_by_one=True)
    [ask] = again.steps
    assert isinstance(ask, Ask) and ask.prompt and ask.prompt.reprompt
    state = again.after_reply(1)
    assert state.reprompts == 1 and state.asking == "account"
    assert decide(FLOW, state, {"account": ""}, FakeVerifier(), one_by_one=True).outcome == (
        "no_input"
    )


def test_one_by_one_retry_forgets_the_answers_it_asks_again() -> None:
    state = CallState(answers={"account": "1001"}, asking="pin")
    retry = decide(
        FLOW,
        state,
        {"pin": "0000"},
        FakeVerifier(Verdict("rejected", "wrong_pin")),
        one_by_one=True,
    )
    assert retry.outcome == "retry"
    say, ask = retry.steps
    assert say == Say("That did not match.")
    assert isinstance(ask, Ask) and ask.prompt and ask.prompt.name == "account"
    after = retry.after_reply(2)
    assert after.answers == {} and after.asking == "account" and after.tries_used == 1


def test_one_by_one_unusable_keys_are_asked_again_then_the_error_fallback() -> None:
    state = CallState(asking="pin", answers={"account": "1001"})
    again = decide(FLOW, state, {"pin": "12"}, FakeVerifier(), one_by_one=True)
    [ask] = again.steps
    assert isinstance(ask, Ask) and ask.prompt and ask.prompt.name == "pin" and ask.prompt.reprompt
    state = again.after_reply(1)
    assert decide(FLOW, state, {"pin": "1*34"}, FakeVerifier(), one_by_one=True).outcome == (
        "error"
    )


def test_one_by_one_only_the_question_asked_may_be_answered() -> None:
    verifier = FakeVerifier()
    # A first request that claims to answer the PIN: nothing was asked yet.
    first = decide(FLOW, CallState(), {"pin": "2468"}, verifier, one_by_one=True)
    [ask] = first.steps
    assert isinstance(ask, Ask) and ask.prompt and ask.prompt.name == "account"
    # Asked for the account, answered for the PIN: ignored, the account is asked again.
    state = first.after_reply(1)
    again = decide(FLOW, state, {"pin": "2468"}, verifier, one_by_one=True)
    [ask] = again.steps
    assert isinstance(ask, Ask) and ask.prompt and ask.prompt.name == "account"
    assert verifier.claims == []


def test_one_by_one_retry_of_the_pin_alone_keeps_the_claim() -> None:
    flow = Flow(
        name="pin_again",
        questions=FLOW.questions,
        verify=FLOW.verify,
        outcomes={**FLOW.outcomes, "retry": (Say("Wrong PIN."), Ask(("pin",)))},
    )
    state = CallState(answers={"account": "1001"}, asking="pin")
    retry = decide(
        flow,
        state,
        {"pin": "0000"},
        FakeVerifier(Verdict("rejected", "wrong_pin")),
        one_by_one=True,
    )
    _say, ask = retry.steps
    assert isinstance(ask, Ask) and ask.prompt and ask.prompt.name == "pin"
    state = retry.after_reply(2)
    assert state.answers == {"account": "1001"} and state.asking == "pin"
    verifier = FakeVerifier(Verdict("verified", "pin", ADA))
    assert decide(flow, state, {"pin": "2468"}, verifier, one_by_one=True).outcome == "verified"
    assert verifier.claims == [(Claim("account", "1001"), "2468")]
