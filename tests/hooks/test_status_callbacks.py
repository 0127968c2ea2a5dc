"""Status callbacks of DIDforSale (/didml/status) and Twilio (/twiml/status) end to
end: requests as the platforms send them, and the rows they leave (on SQLite and
PostgreSQL)."""

from __future__ import annotations

import base64
import itertools
import threading
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from app.auth.passwords import hash_password
from app.models import Call, CallAction, CallEvent
from tests.helpers.database import database_down
from tests.helpers.directory import add_user
from tests.helpers.settings import TEST_SECRETS
from tests.helpers.voice_xml_caller import VoiceXmlCall
from tests.helpers.web_client import PASSWORDS, sign_in

KEY = TEST_SECRETS["DIDML_SECRET"]
TOKEN = TEST_SECRETS["TWILIO_AUTH_TOKEN"]
TWIML_URL = "http://localhost/twiml/status"  # what the test client requests


def didml(
    client: FlaskClient, fields: dict[str, str], key: str | None = KEY, method: str = "POST"
) -> TestResponse:
    query = {"key": key} if key is not None else {}
    if method == "GET":
        return client.get("/didml/status", query_string={**query, **fields})
    return client.post("/didml/status", query_string=query, data=fields)


def progress(call_sid: str, status: str, **more: str) -> dict[str, str]:
    """A DIDforSale call-progress event, fields as its docs name them."""
    return {
        "Called": "+13125550101",
        "CallStatus": status,
        "Direction": "Outbound",
        "callSid": call_sid,
        "CallbackSource": "call-progress-event",
        **more,
    }


def twiml(
    client: FlaskClient,
    fields: dict[str, str],
    signed_url: str = TWIML_URL,
    token: str = TOKEN,
) -> TestResponse:
    signature = RequestValidator(token).compute_signature(signed_url, fields)
    return client.post("/twiml/status", data=fields, headers={"X-Twilio-Signature": signature})


def twilio_status(call_sid: str, status: str, **more: str) -> dict[str, str]:
    return {
        "AccountSid": "AC0123",
        "CallSid": call_sid,
        "CallStatus": status,
        "Direction": "outbound-api",
        "From": "+13125550199",
        "To": "+13125550101",
        "ApiVersion": "2010-04-01",
        **more,
    }


def stored(response: TestResponse) -> None:
    assert response.status_code == 204
    assert response.data == b""


def refused(response: TestResponse) -> None:
    assert response.status_code == 403
    assert b"<" not in response.data  # no XML


def events(session: Session) -> list[CallEvent]:
    session.commit()  # end the test's read snapshot, to see what requests wrote
    return list(session.scalars(select(CallEvent).order_by(CallEvent.id)))


def the_call(session: Session, call_sid: str) -> Call:
    session.commit()
    return session.scalars(select(Call).where(Call.platform_call_id == call_sid)).one()


def count(session: Session, model: type) -> int:
    session.commit()
    return session.scalar(select(func.count()).select_from(model)) or 0


# DIDforSale


def test_every_status_of_a_call_is_kept_and_the_last_one_wins(
    client: FlaskClient, session: Session
) -> None:
    for status in ("initiated", "ringing", "answered"):
        stored(didml(client, progress("d-1", status)))
    stored(
        didml(
            client,
            progress(
                "d-1",
                "completed",
                CallDuration="42",
                RecordingURL="https://rec.example/d-1.mp3",
            ),
        )
    )
    rows = events(session)
    assert [(e.kind, e.platform, e.outcome) for e in rows] == [
        ("status", "didml", s) for s in ("initiated", "ringing", "answered", "completed")
    ]
    call = the_call(session, "d-1")
    assert {e.call_id for e in rows} == {call.id}
    assert (call.platform, call.platform_status, call.status) == ("didml", "completed", "ended")
    assert (call.duration_seconds, call.recording_url) == (42, "https://rec.example/d-1.mp3")
    # DIDforSale names only the number dialled (Called): the caller is unknown.
    assert call.caller_number is None and call.ended_at is not None
    assert all(e.request_id for e in rows)


def test_reports_of_a_known_call_use_up_no_ids(client: FlaskClient, session: Session) -> None:
    # PostgreSQL takes a sequence value for each upsert, conflict or not: a call
    # with many reports would use up ids many times faster than calls come.
    for status in ("initiated", "ringing", "answered", "completed"):
        stored(didml(client, progress("d-first", status)))
    stored(didml(client, progress("d-next", "initiated")))
    assert the_call(session, "d-next").id == the_call(session, "d-first").id + 1


def test_a_repeated_delivery_is_stored_once(client: FlaskClient, session: Session) -> None:
    fields = progress("d-dup", "ringing")
    stored(didml(client, fields))
    stored(didml(client, fields))
    stored(didml(client, {**fields, "CallbackSource": "retry"}))  # same call, status, leg
    assert len(events(session)) == 1
    assert count(session, Call) == 1


def test_concurrent_identical_deliveries_are_stored_once(app: Flask, session: Session) -> None:
    fields = progress("d-race", "completed", CallDuration="7")
    barrier = threading.Barrier(8, timeout=30)
    codes: list[int] = []

    def deliver() -> None:
        client = app.test_client()
        barrier.wait()
        codes.append(didml(client, fields).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [204] * 8
    assert len(events(session)) == 1
    assert count(session, Call) == 1
    # No `answered` was ever reported: nobody answered.
    assert the_call(session, "d-race").platform_status == "no-answer"


def test_a_late_ringing_does_not_undo_completed(client: FlaskClient, session: Session) -> None:
    stored(didml(client, progress("d-late", "answered")))
    stored(didml(client, progress("d-late", "completed", CallDuration="9")))
    stored(didml(client, progress("d-late", "ringing")))
    assert [e.outcome for e in events(session)] == ["answered", "completed", "ringing"]
    call = the_call(session, "d-late")
    assert (call.platform_status, call.status, call.duration_seconds) == ("completed", "ended", 9)


def test_the_b_leg_is_a_report_of_its_own(client: FlaskClient, session: Session) -> None:
    """Both legs post to the same URL, with the same call id and status."""
    stored(didml(client, progress("d-leg", "answered")))
    stored(didml(client, progress("d-leg", "answered", ParentCallSid="d-parent")))
    stored(didml(client, progress("d-leg", "answered", ParentCallSid="d-parent")))
    rows = events(session)
    assert [(e.outcome, e.payload.get("ParentCallSid")) for e in rows] == [
        ("answered", None),
        ("answered", "d-parent"),
    ]


def test_field_spellings_and_case_as_didforsale_sends_them(
    client: FlaskClient, session: Session
) -> None:
    stored(didml(client, {"CallSid": "d-case", "CallStatus": "Answered"}))
    stored(
        didml(
            client,
            {"CallSid": "d-case", "CallStatus": "Completed", "CallDurartion": "15"},
        )
    )
    call = the_call(session, "d-case")
    assert (call.platform_status, call.duration_seconds) == ("completed", 15)


def test_get_callbacks_work_like_post(client: FlaskClient, session: Session) -> None:
    stored(didml(client, progress("d-get", "ringing"), method="GET"))
    assert the_call(session, "d-get").platform_status == "ringing"


def test_the_payload_keeps_known_fields_and_masks_the_rest(
    client: FlaskClient, session: Session
) -> None:
    fields = progress(
        "d-mask", "completed", optional="ticket-77", apikey=KEY, Pin="2468", CallDuration="x"
    )
    stored(didml(client, fields))
    [event] = events(session)
    assert event.payload["optional"] == "ticket-77"
    assert event.payload["Called"] == "+13125550101"
    assert event.payload["Pin"] == "***"
    assert "apikey" not in event.payload and "key" not in event.payload
    assert KEY not in str(event.payload)
    assert the_call(session, "d-mask").duration_seconds is None  # not a number: not stored


def test_long_values_are_capped_in_the_payload(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    app.config["MAX_FIELD_LENGTH"] = 10
    stored(didml(client, progress("d-long", "ringing", optional="o" * 50)))
    [event] = events(session)
    assert event.payload["optional"] == "o" * 10 + "…[truncated 40 chars]"


# DIDforSale authentication


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"didml:{password}".encode()).decode()}


def test_authenticated_by_key_basic_or_apikey(client: FlaskClient, session: Session) -> None:
    stored(didml(client, progress("d-auth", "initiated")))
    stored(client.post("/didml/status", data=progress("d-auth", "ringing"), headers=basic(KEY)))
    stored(didml(client, progress("d-auth", "answered", apikey=KEY), key=None))
    stored(didml(client, progress("d-auth", "completed", apikey=KEY), key=None, method="GET"))
    assert [e.outcome for e in events(session)] == ["initiated", "ringing", "answered", "completed"]


@pytest.mark.parametrize(
    ("key", "extra", "headers"),
    [
        (None, {}, {}),
        ("", {}, {}),
        ("wrong", {}, {}),
        (KEY + "x", {}, {}),
        (None, {"apikey": "wrong"}, {}),
        (None, {"apikey": ""}, {}),
        (None, {"key": KEY}, {}),  # the secret as a body field is not `?key=`
        (None, {}, basic("wrong")),
    ],
    ids=["none", "empty", "wrong", "longer", "wrong apikey", "empty apikey", "body key", "basic"],
)
def test_without_the_secret_didml_is_refused_and_nothing_stored(
    client: FlaskClient,
    session: Session,
    key: str | None,
    extra: dict[str, str],
    headers: dict[str, str],
) -> None:
    query = {"key": key} if key is not None else {}
    response = client.post(
        "/didml/status",
        query_string=query,
        data=progress("d-no", "completed", **extra),
        headers=headers,
    )
    refused(response)
    assert count(session, CallEvent) == 0 and count(session, Call) == 0


def test_an_unset_secret_lets_nobody_in(app: Flask, client: FlaskClient, session: Session) -> None:
    app.config["DIDML_SECRET"] = ""
    refused(didml(client, progress("d-unset", "ringing", apikey=""), key=""))
    assert count(session, CallEvent) == 0


# Bad input and faults


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"CallStatus": "ringing"}, b"missing call id"),
        ({"callSid": "d-bad"}, b"missing CallStatus"),
        ({"callSid": "d-bad", "CallStatus": "exploded"}, b"unknown CallStatus"),
        ({"callSid": "d" * 129, "CallStatus": "ringing"}, b"call id too long"),
    ],
)
def test_unreadable_callbacks_get_400_and_store_nothing(
    client: FlaskClient, session: Session, fields: dict[str, str], reason: bytes
) -> None:
    response = didml(client, fields)
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    assert reason in response.data
    assert count(session, CallEvent) == 0 and count(session, Call) == 0


@pytest.mark.parametrize(
    "action",
    [
        "0",
        "-1",
        "2147483648",  # one past INTEGER: PostgreSQL refuses the query
        "9" * 20,  # past SQLite's 64-bit integers
        "9" * 5000,  # int() refuses it
        "\u0663",  # Arabic-Indic 3: int() reads it
        "\u00b2",  # superscript two: isdigit() says yes, int() raises
        "1.0",
    ],
)
def test_an_action_that_is_no_id_is_an_unknown_action_and_the_report_is_kept(
    client: FlaskClient, session: Session, caplog: pytest.LogCaptureFixture, action: str
) -> None:
    """Glue's own callback URLs name the action (`?action=`); any other value
    names none. A 500 would have the platform retry it for ever."""
    stored(
        client.post(
            "/didml/status",
            query_string={"key": KEY, "action": action},
            data=progress("d-act", "ringing"),
        )
    )
    stored(twiml(client, twilio_status("CA-act", "ringing", action=action)))
    assert [(e.platform, e.outcome) for e in events(session)] == [
        ("didml", "ringing"),
        ("twiml", "ringing"),
    ]
    assert the_call(session, "d-act").action_id is None
    assert the_call(session, "CA-act").action_id is None
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= 40]


def test_a_callback_full_of_fields_glue_does_not_read_is_kept_capped(
    client: FlaskClient, session: Session
) -> None:
    """Unknown fields stay masked; of the fields Glue does not read, the first 50
    are kept and the rest counted; long values are cut, saying so."""
    unknown = {f"Extra{i:03d}": str(i) for i in range(80)}
    stored(
        twiml(
            client,
            twilio_status("CA-many", "completed", Called="+1" * 300, **{"x" * 300: "1"}, **unknown),
        )
    )
    [event] = events(session)
    assert event.payload["Called"] == "+1" * 128 + "…[truncated 344 chars]"
    assert event.payload["x" * 256 + "…[truncated 44 chars]"] == "***"
    assert event.payload["Extra048"] == "***" and "Extra049" not in event.payload
    assert event.notes == {"dropped": 31}
    assert the_call(session, "CA-many").platform_status == "completed"


def test_a_sent_field_named_like_a_note_is_kept_as_sent(
    client: FlaskClient, session: Session
) -> None:
    """Glue's count of fields not stored is a note apart: a field the platform
    sends as `_dropped` is one of its fields like any other."""
    unknown = {f"Extra{i:03d}": str(i) for i in range(60)}
    stored(twiml(client, twilio_status("CA-named", "completed", _dropped="7", **unknown)))
    [event] = events(session)
    assert event.payload["_dropped"] == "***"  # unread, so masked: but the platform's
    assert "Extra048" in event.payload and "Extra049" not in event.payload
    assert event.notes == {"dropped": 11}


def test_a_storage_failure_answers_500_so_the_platform_retries(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with database_down(app):
        response = client.post(
            "/didml/status",
            query_string={"key": KEY},
            data=progress("d-down", "completed"),
            headers={"X-Request-ID": "req-down-1"},
        )
    assert response.status_code == 500
    assert response.mimetype == "text/plain" and b"<" not in response.data
    [failure] = [r for r in caplog.records if r.exc_info]
    assert "req-down-1" in failure.getMessage() and "d-down" in failure.getMessage()


def test_an_oversized_body_answers_plain_text(client: FlaskClient) -> None:
    huge = client.post(f"/didml/status?key={KEY}", data={"x": "1" * 200_000})
    assert huge.status_code == 413
    assert huge.mimetype == "text/plain"


# Twilio


def test_a_signed_twilio_callback_is_stored(client: FlaskClient, session: Session) -> None:
    stored(twiml(client, twilio_status("CA-1", "ringing")))
    stored(
        twiml(
            client,
            twilio_status(
                "CA-1",
                "completed",
                CallDuration="31",
                RecordingUrl="https://api.twilio.com/rec/RE1",
                SipResponseCode="200",
            ),
        )
    )
    rows = events(session)
    assert [(e.platform, e.kind, e.outcome) for e in rows] == [
        ("twiml", "status", "ringing"),
        ("twiml", "status", "completed"),
    ]
    assert rows[1].payload["AccountSid"] == "AC0123"
    assert rows[1].payload["SipResponseCode"] == "***"  # not a field we know
    call = the_call(session, "CA-1")
    assert (call.platform, call.platform_status, call.status) == ("twiml", "completed", "ended")
    assert (call.duration_seconds, call.recording_url) == (31, "https://api.twilio.com/rec/RE1")
    assert call.caller_number == "+13125550199"


@pytest.mark.parametrize(
    "status",
    ["queued", "in-progress", "busy", "failed", "no-answer", "canceled"],
)
def test_every_twilio_status_is_accepted(
    client: FlaskClient, session: Session, status: str
) -> None:
    stored(twiml(client, twilio_status("CA-s", status)))
    assert the_call(session, "CA-s").platform_status == status


def test_a_twilio_child_leg_is_its_own_report(client: FlaskClient, session: Session) -> None:
    stored(twiml(client, twilio_status("CA-parent", "in-progress")))
    stored(twiml(client, twilio_status("CA-child", "in-progress", ParentCallSid="CA-parent")))
    stored(twiml(client, twilio_status("CA-child", "in-progress", ParentCallSid="CA-parent")))
    assert len(events(session)) == 2
    assert the_call(session, "CA-child").platform_status == "in-progress"


def test_a_get_status_callback_is_signed_over_its_query(
    client: FlaskClient, session: Session
) -> None:
    fields = twilio_status("CA-get", "ringing")
    response = client.get("/twiml/status", query_string=fields)
    signed_url = response.request.url  # the URL exactly as the client encoded it
    assert response.status_code == 403  # unsigned
    signature = RequestValidator(TOKEN).compute_signature(signed_url, {})
    stored(
        client.get("/twiml/status", query_string=fields, headers={"X-Twilio-Signature": signature})
    )
    assert the_call(session, "CA-get").platform_status == "ringing"


@pytest.mark.parametrize(
    "send",
    [
        lambda c, f: twiml(c, f, token="not-the-token"),
        lambda c, f: twiml(c, f, signed_url="http://localhost/twiml/other"),
        lambda c, f: twiml(c, f, signed_url="https://localhost/twiml/status"),
        lambda c, f: c.post("/twiml/status", data=f),
        lambda c, f: c.post("/twiml/status", data=f, headers={"X-Twilio-Signature": ""}),
        lambda c, f: c.post(f"/twiml/status?key={KEY}", data=f),
    ],
    ids=["token", "path", "scheme", "no header", "empty header", "didml key"],
)
def test_a_bad_twilio_signature_is_refused(
    client: FlaskClient, session: Session, send: Any
) -> None:
    refused(send(client, twilio_status("CA-bad", "completed")))
    assert count(session, CallEvent) == 0 and count(session, Call) == 0


def test_a_tampered_field_breaks_the_signature(client: FlaskClient, session: Session) -> None:
    fields = twilio_status("CA-t", "completed")
    signature = RequestValidator(TOKEN).compute_signature(TWIML_URL, fields)
    response = client.post(
        "/twiml/status",
        data={**fields, "CallStatus": "failed"},
        headers={"X-Twilio-Signature": signature},
    )
    refused(response)
    assert count(session, CallEvent) == 0


def test_behind_a_proxy_the_public_url_is_signed(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    app.config["PUBLIC_URL"] = "https://glue.example.com"
    stored(
        twiml(client, twilio_status("CA-p1", "ringing"), "https://glue.example.com/twiml/status")
    )
    stored(
        twiml(
            client, twilio_status("CA-p2", "ringing"), "https://glue.example.com:443/twiml/status"
        )
    )
    refused(twiml(client, twilio_status("CA-p3", "ringing"), TWIML_URL))
    assert [e.payload["CallSid"] for e in events(session)] == ["CA-p1", "CA-p2"]


def test_an_unset_token_lets_nobody_in(app: Flask, client: FlaskClient, session: Session) -> None:
    app.config["TWILIO_AUTH_TOKEN"] = ""
    refused(twiml(client, twilio_status("CA-u", "ringing"), token=""))
    assert count(session, CallEvent) == 0


def test_a_didforsale_recording_url_in_either_spelling_is_kept_as_sent(
    client: FlaskClient, session: Session
) -> None:
    url = "https://rec.example/d-9.mp3"
    stored(didml(client, progress("d-9", "completed", CallDuration="3", RecordingUrl=url)))
    [event] = events(session)
    assert event.payload["RecordingUrl"] == url
    assert the_call(session, "d-9").recording_url == url


# Calls nobody answered: DIDforSale reports them `completed` too


def an_action(session: Session) -> int:
    """A click-to-call Ada placed through DIDforSale: accepted, now calling her."""
    ada = add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    ada.password_hash = hash_password(PASSWORDS["1001"])
    action = CallAction(
        user=ada,
        via="web",
        purpose="connect",
        target_kind="number",
        from_number="+13125550101",
        to_number="+13125550102",
        provider="didforsale",
        status="calling",
        provider_call_ids=["A-1"],
    )
    session.add(action)
    session.commit()
    return action.id


def leg(client: FlaskClient, action_id: int, status: str, parent: str = "", **more: str) -> None:
    """A report of the action's call (A-1) or, with a parent, of its second leg (B-1)."""
    fields = progress("B-1" if parent else "A-1", status, **more)
    if parent:
        fields["ParentCallSid"] = parent
    query = {"key": KEY, "action": str(action_id)}
    stored(client.post("/didml/status", query_string=query, data=fields))


def action_status(session: Session, action_id: int) -> str:
    session.commit()
    action = session.get(CallAction, action_id, populate_existing=True)
    assert action is not None
    return action.status


def row(session: Session, call_sid: str) -> tuple[str | None, str, int | None]:
    call = the_call(session, call_sid)
    return call.platform_status, call.status, call.action_id


def test_a_second_leg_that_completes_unanswered_is_no_answer_for_the_caller(
    client: FlaskClient, session: Session
) -> None:
    action_id = an_action(session)
    for status in ("initiated", "ringing", "answered"):
        leg(client, action_id, status)
    assert action_status(session, action_id) == "connected"
    leg(client, action_id, "initiated", parent="A-1")
    leg(client, action_id, "ringing", parent="A-1")
    leg(client, action_id, "completed", parent="A-1", CallDurartion="0")
    assert action_status(session, action_id) == "no_answer"
    leg(client, action_id, "completed", CallDurartion="25")  # Ada hangs up
    assert action_status(session, action_id) == "no_answer"
    assert row(session, "B-1") == ("no-answer", "ended", action_id)
    assert row(session, "A-1") == ("completed", "ended", action_id)
    # Each report is kept as DIDforSale sent it.
    assert [e.outcome for e in the_call(session, "B-1").events] == [
        "initiated",
        "ringing",
        "completed",
    ]
    # What Ada reads on her call's page and in her history.
    sign_in(client, "1001")
    assert client.get(f"/calls/{action_id}.json").get_json()["status"] == "no_answer"
    assert "No answer" in client.get("/").get_data(as_text=True)


def test_a_second_leg_answered_then_completed_is_a_completed_call(
    client: FlaskClient, session: Session
) -> None:
    action_id = an_action(session)
    leg(client, action_id, "answered")
    leg(client, action_id, "answered", parent="A-1")
    leg(client, action_id, "completed", parent="A-1", CallDurartion="40")
    assert action_status(session, action_id) == "completed"
    leg(client, action_id, "completed", CallDurartion="45")
    assert action_status(session, action_id) == "completed"
    assert row(session, "B-1") == ("completed", "ended", action_id)
    assert row(session, "A-1") == ("completed", "ended", action_id)


@pytest.mark.parametrize(
    "order",
    list(itertools.permutations(["a answered", "a completed", "b ringing", "b completed"])),
)
def test_in_any_order_a_second_leg_never_answered_reads_no_answer(
    client: FlaskClient, session: Session, order: tuple[str, ...]
) -> None:
    action_id = an_action(session)
    for report in order:
        which, status = report.split()
        leg(client, action_id, status, parent="A-1" if which == "b" else "")
    assert action_status(session, action_id) == "no_answer"
    assert row(session, "B-1")[0] == "no-answer"
    assert row(session, "A-1")[0] == "completed"


def test_a_call_nobody_answered_is_no_answer(client: FlaskClient, session: Session) -> None:
    action_id = an_action(session)
    leg(client, action_id, "initiated")
    leg(client, action_id, "ringing")
    leg(client, action_id, "completed", CallDurartion="30")  # 30 s of ringing, say
    assert action_status(session, action_id) == "no_answer"
    assert row(session, "A-1") == ("no-answer", "ended", action_id)


def test_a_late_answered_corrects_a_completed_read_as_no_answer(
    client: FlaskClient, session: Session
) -> None:
    action_id = an_action(session)
    leg(client, action_id, "completed", CallDurartion="60")
    assert action_status(session, action_id) == "no_answer"
    assert row(session, "A-1")[0] == "no-answer"
    leg(client, action_id, "answered")  # delivered late
    assert action_status(session, action_id) == "completed"
    assert row(session, "A-1") == ("completed", "ended", action_id)
    assert [e.outcome for e in events(session)] == ["completed", "answered"]


def test_a_late_answered_of_the_second_leg_corrects_it_too(
    client: FlaskClient, session: Session
) -> None:
    action_id = an_action(session)
    leg(client, action_id, "answered")
    leg(client, action_id, "completed", parent="A-1", CallDurartion="40")
    assert action_status(session, action_id) == "no_answer"
    leg(client, action_id, "answered", parent="A-1")  # delivered late
    assert action_status(session, action_id) == "completed"
    assert row(session, "B-1") == ("completed", "ended", action_id)


def test_retried_deliveries_do_not_change_the_reading(
    client: FlaskClient, session: Session
) -> None:
    action_id = an_action(session)
    leg(client, action_id, "answered")
    for _ in range(2):
        leg(client, action_id, "completed", parent="A-1")
        leg(client, action_id, "completed")
    assert action_status(session, action_id) == "no_answer"
    assert [e.outcome for e in events(session)] == ["answered", "completed", "completed"]
    assert row(session, "A-1")[0] == "completed" and row(session, "B-1")[0] == "no-answer"


def test_a_call_glue_ran_its_flow_for_was_answered(client: FlaskClient, session: Session) -> None:
    """DIDforSale fetches the call's voice document once the call is answered."""
    VoiceXmlCall(client, "didml", "verify_caller", "A-flow").start()
    stored(didml(client, progress("A-flow", "completed", CallDurartion="20")))
    assert the_call(session, "A-flow").platform_status == "completed"


def test_twilio_completed_stays_completed_it_says_no_answer_itself(
    client: FlaskClient, session: Session
) -> None:
    action_id = an_action(session)
    url = f"/twiml/status?action={action_id}"
    fields = twilio_status("CA-t1", "completed", CallDuration="12")
    signature = RequestValidator(TOKEN).compute_signature(f"http://localhost{url}", fields)
    stored(client.post(url, data=fields, headers={"X-Twilio-Signature": signature}))
    assert action_status(session, action_id) == "completed"
    assert row(session, "CA-t1") == ("completed", "ended", action_id)
    stored(twiml(client, twilio_status("CA-t2", "no-answer")))
    assert the_call(session, "CA-t2").platform_status == "no-answer"
