"""didML (DIDforSale) and TwiML (Twilio) web hooks: Glue asks the questions itself."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Call, CallEvent, User, VerificationAttempt
from tests.helpers.directory import add_user
from tests.helpers.voice_xml_caller import VoiceXmlCall, says

PLATFORMS = ["didml", "twiml"]


@pytest.fixture(params=PLATFORMS)
def platform(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ada(session: Session) -> User:
    return add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")


def the_call(session: Session, call_id: str) -> Call:
    session.commit()
    return session.scalars(select(Call).where(Call.platform_call_id == call_id)).one()


def count(session: Session, model: type) -> int:
    session.commit()
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_each_question_is_a_gather_then_the_verified_caller_is_dialled(
    client: FlaskClient, session: Session, ada: User, platform: str
) -> None:
    call = VoiceXmlCall(client, platform, "verify_caller", "CA-ok")
    first = call.start()
    gather = first.find("Gather")
    assert gather is not None
    assert says(first) == ["Please enter your account number, then press pound."]
    assert (gather.get("numDigits"), gather.get("finishOnKey"), gather.get("method")) == (
        "10",
        "#",
        "POST",
    )
    assert "question=account" in gather.get("action", "")
    pin_prompt = call.press("1001")
    pin_gather = pin_prompt.find("Gather")
    assert pin_gather is not None and pin_gather.get("numDigits") == "8"
    if platform == "didml":
        assert pin_gather.get("minDigits") == "4" and pin_gather.get("tries") == "1"
    else:
        assert pin_gather.get("input") == "dtmf"

    done = call.press("2468")
    assert says(done) == ["Thank you, Ada Lovelace."]
    assert [el.tag for el in done] == ["Say", "Dial", "Hangup"]
    assert done.findtext("Dial/Number") == "+13125550101"

    row = the_call(session, "CA-ok")
    assert (row.platform, row.outcome, row.status, row.caller_number) == (
        platform,
        "verified",
        "ended",
        "+13125550199",
    )
    [attempt] = session.scalars(select(VerificationAttempt)).all()
    assert (attempt.user_id, attempt.outcome) == (ada.id, "verified")
    assert row.state["answers"] == {"account": "1001"}  # never the PIN


def test_the_pin_is_never_stored_in_events_or_state(
    client: FlaskClient, session: Session, ada: User, platform: str
) -> None:
    call = VoiceXmlCall(client, platform, "verify_caller", "CA-mask")
    call.start()
    call.press("1001")
    assert the_call(session, "CA-mask").state["answers"] == {"account": "1001"}
    call.press("2468")
    session.commit()  # see what the requests wrote
    assert count(session, CallEvent) == 3
    for event in session.scalars(select(CallEvent)):
        assert "2468" not in str(event.payload)
    pin_event = session.scalars(select(CallEvent).order_by(CallEvent.id.desc())).first()
    assert pin_event is not None and pin_event.payload["Digits"] == "***"
    assert "2468" not in str(the_call(session, "CA-mask").state)


def test_wrong_pins_retry_then_fail_to_a_recorded_voicemail(
    client: FlaskClient, session: Session, ada: User, platform: str
) -> None:
    call = VoiceXmlCall(client, platform, "verify_caller", "CA-bad")
    call.start()
    for attempt in range(2):
        call.press("1001")
        retry = call.press("0000")
        assert says(retry)[0] == "That did not match. Please try again."
        assert "question=account" in (retry.find("Gather").get("action") or "")  # type: ignore[union-attr]
        assert the_call(session, "CA-bad").state["tries_used"] == attempt + 1
    call.press("1001")
    failed = call.press("0000")
    assert says(failed) == [
        "Sorry, we could not verify you.",
        "Please leave a message after the tone.",
    ]
    record = failed.find("Record")
    assert record is not None and "recorded=200" in (record.get("action") or "")
    assert failed[-1].tag == "Hangup"
    # The platform posts the recording to the action: the call is over.
    after = call.post(record.get("action") or "", RecordingUrl="https://rec.example/1")
    assert [el.tag for el in after] == ["Hangup"]
    row = the_call(session, "CA-bad")
    assert (row.outcome, row.status) == ("failed", "ended")
    assert count(session, VerificationAttempt) == 3


def test_silence_reprompts_once_then_is_no_input(
    client: FlaskClient, session: Session, ada: User, platform: str
) -> None:
    call = VoiceXmlCall(client, platform, "verify_caller", "CA-quiet")
    call.start()
    again = call.silence()
    assert says(again) == ["Please enter your account number, then press pound."]
    goodbye = call.silence()
    assert says(goodbye) == ["We did not hear anything. Goodbye."]
    assert goodbye[-1].tag == "Hangup"
    assert the_call(session, "CA-quiet").outcome == "no_input"
    assert count(session, VerificationAttempt) == 0


def test_a_retried_delivery_is_answered_the_same_and_counted_once(
    client: FlaskClient, session: Session, ada: User, platform: str
) -> None:
    call = VoiceXmlCall(client, platform, "verify_caller", "CA-dup")
    call.start()
    call.press("1001")
    action = call.last.find("Gather").get("action")  # type: ignore[union-attr]
    first = call.raw(action, Digits="0000")
    again = call.raw(action, Digits="0000")
    assert first.data == again.data
    assert count(session, VerificationAttempt) == 1


def test_five_wrong_pins_over_calls_lock_even_the_right_one(
    client: FlaskClient, session: Session, ada: User, platform: str
) -> None:
    for call_id, tries in (("CA-l1", 3), ("CA-l2", 2)):
        call = VoiceXmlCall(client, platform, "verify_caller", call_id)
        call.start()
        for _ in range(tries):
            call.press("1001")
            last = call.press("0000")
    assert says(last)[0] == "This account is locked. Please try again later."
    call = VoiceXmlCall(client, platform, "verify_caller", "CA-l3")
    call.start()
    call.press("1001")
    assert says(call.press("2468"))[0] == "This account is locked. Please try again later."
    assert the_call(session, "CA-l3").outcome == "locked"


def test_unauthenticated_requests_get_403_without_xml(
    client: FlaskClient, session: Session, platform: str
) -> None:
    fields = {"CallSid": "CA-x", "callSid": "CA-x", "From": "+13125550199"}
    bare = client.post(f"/{platform}/verify_caller", data=fields)
    forged = client.post(
        f"/{platform}/verify_caller?key=wrong",
        data=fields,
        headers={"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
    )
    for response in (bare, forged):
        assert response.status_code == 403 and b"<" not in response.data
    assert count(session, CallEvent) == 0


def test_twilio_signatures_use_the_public_url_behind_a_proxy(
    app: Flask, client: FlaskClient, ada: User
) -> None:
    from twilio.request_validator import RequestValidator

    from tests.helpers.settings import TEST_SECRETS

    app.config["PUBLIC_URL"] = "https://glue.example.com"
    validator = RequestValidator(TEST_SECRETS["TWILIO_AUTH_TOKEN"])
    fields = {"CallSid": "CA-proxy", "From": "+13125550199"}
    for signed_url in (
        "https://glue.example.com/twiml/verify_caller",
        "https://glue.example.com:443/twiml/verify_caller",
    ):
        signature = validator.compute_signature(signed_url, fields)
        response = client.post(
            "/twiml/verify_caller", data=fields, headers={"X-Twilio-Signature": signature}
        )
        assert response.status_code == 200, signed_url
        assert b"https://glue.example.com/twiml/verify_caller?turn=1" in response.data
    local = validator.compute_signature("http://localhost/twiml/verify_caller", fields)
    refused = client.post(
        "/twiml/verify_caller", data=fields, headers={"X-Twilio-Signature": local}
    )
    assert refused.status_code == 403


def test_the_didml_secret_is_never_stored_but_replayed_replies_still_carry_it(
    client: FlaskClient, session: Session, ada: User
) -> None:
    from tests.helpers.settings import TEST_SECRETS

    secret = TEST_SECRETS["DIDML_SECRET"]
    call = VoiceXmlCall(client, "didml", "verify_caller", "CA-key")
    call.start()
    call.press("1001")
    action = call.last.find("Gather").get("action")  # type: ignore[union-attr]
    assert f"key={secret}" in action
    first = call.raw(action, Digits="0000")
    again = call.raw(action, Digits="0000")  # a retried delivery, answered from the store
    assert first.data == again.data and f"key={secret}".encode() in again.data
    session.commit()
    replies = session.scalars(select(CallEvent.reply)).all()
    assert replies and all(secret not in (reply or "") for reply in replies)
    assert any("key=***" in (reply or "") for reply in replies)


def test_a_second_post_to_an_old_gather_changes_nothing(
    client: FlaskClient, session: Session, ada: User, platform: str
) -> None:
    call = VoiceXmlCall(client, platform, "verify_caller", "CA-stale")
    call.start()
    call.press("1001")
    old_action = call.last.find("Gather").get("action")  # type: ignore[union-attr]
    current = call.press("0000")  # wrong: the account is asked again
    late = call.raw(old_action, Digits="1111")  # the same <Gather> answered again
    assert late.data == call.bodies[-1]
    assert count(session, VerificationAttempt) == 1
    assert the_call(session, "CA-stale").state["tries_used"] == 1
    stale = session.scalars(select(CallEvent).where(CallEvent.outcome == "stale")).one()
    assert stale.payload["Digits"] == "***"
    assert says(current)[0] == "That did not match. Please try again."


def test_an_answer_to_a_question_not_asked_is_ignored(
    client: FlaskClient, session: Session, ada: User, platform: str
) -> None:
    call = VoiceXmlCall(client, platform, "verify_caller", "CA-skip")
    reply = call.post(
        f"http://localhost/{platform}/verify_caller?"
        + ("key=didml-test-secret&" if platform == "didml" else "")
        + "turn=99&question=pin",
        Digits="2468",
    )
    assert "question=account" in (reply.find("Gather").get("action") or "")  # type: ignore[union-attr]
    assert count(session, VerificationAttempt) == 0


def test_a_pin_too_short_for_its_question_is_asked_again(
    client: FlaskClient, session: Session, ada: User, platform: str
) -> None:
    call = VoiceXmlCall(client, platform, "verify_caller", "CA-short")
    call.start()
    call.press("1001")
    again = call.press("12")  # Twilio does not enforce a minimum length
    assert says(again) == ["Please enter your PIN, then press pound."]
    assert says(call.press("2468")) == ["Thank you, Ada Lovelace."]
    assert count(session, VerificationAttempt) == 1
