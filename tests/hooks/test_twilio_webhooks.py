"""Twilio's signatures through the app's routes (/twiml/<flow> and /twiml/status), made
by twilio-python's RequestValidator: each scheme it checks, tampered requests, and
bodies werkzeug reads oddly. The check itself: tests/hooks/test_twilio_signature.py."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from app.models import Call, CallEvent
from tests.helpers.raw_http import exchange, glue_server, parse_reply
from tests.helpers.servers import Server
from tests.helpers.settings import TEST_SECRETS
from tests.helpers.voice_xml_caller import says

TOKEN = TEST_SECRETS["TWILIO_AUTH_TOKEN"]
SECONDARY = "twilio-secondary-token"
SIGNING_KEY = "twilio-shared-key-secret"
KEY_ID = "webhooks_sharedkey_0123456789abcdef"
BASE = "http://localhost"  # what the test client requests
FIRST_PROMPT = "Please enter your account number, then press pound."


@dataclass(frozen=True)
class Scheme:
    secret: str
    algorithm: str | None
    settings: str | None  # X-Twilio-Webhooks-Signature-Settings

    def sign(self, url: str, fields: dict[str, str]) -> dict[str, str]:
        signature = RequestValidator(self.secret).compute_signature(url, fields, self.algorithm)
        headers = {"X-Twilio-Signature": signature}
        if self.settings is not None:
            headers["X-Twilio-Webhooks-Signature-Settings"] = self.settings
        return headers


SCHEMES = {
    "auth token": Scheme(TOKEN, None, None),
    "secondary token": Scheme(SECONDARY, None, None),
    "shared key": Scheme(SIGNING_KEY, "HMAC_SHA256", f"key={KEY_ID},algorithm=HMAC_SHA256"),
}


@pytest.fixture
def twilio_app(app: Flask) -> Flask:
    app.config.update(TWILIO_AUTH_TOKEN_SECONDARY=SECONDARY, TWILIO_WEBHOOK_SIGNING_KEY=SIGNING_KEY)
    return app


@pytest.fixture(params=list(SCHEMES))
def scheme(request: pytest.FixtureRequest) -> Scheme:
    return SCHEMES[request.param]


def call_fields(call_sid: str) -> dict[str, str]:
    return {
        "CallSid": call_sid,
        "AccountSid": "AC0123",
        "From": "+13125550199",
        "To": "+18005551212",
        "CallStatus": "in-progress",
        "Direction": "inbound",
    }


def first_question(response: TestResponse) -> etree._Element:
    """The TwiML of a call's first turn: the account number asked in a <Gather>."""
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/xml"
    root = etree.fromstring(response.data)
    assert root.tag == "Response"
    gather = root.find("Gather")
    assert gather is not None and "question=account" in gather.get("action", "")
    assert says(root) == [FIRST_PROMPT]
    return root


def refused(response: TestResponse) -> None:
    assert response.status_code == 403
    assert b"<" not in response.data  # no XML, no HTML


def count(session: Session, model: type) -> int:
    session.commit()
    return session.scalar(select(func.count()).select_from(model)) or 0


def the_call(session: Session, call_sid: str) -> Call:
    session.commit()  # end the test's read snapshot, to see what requests wrote
    return session.scalars(select(Call).where(Call.platform_call_id == call_sid)).one()


def status_events(session: Session) -> list[CallEvent]:
    session.commit()
    return list(session.scalars(select(CallEvent).order_by(CallEvent.id)))


def test_each_scheme_is_answered_on_the_voice_route(
    twilio_app: Flask, client: FlaskClient, session: Session, scheme: Scheme
) -> None:
    fields = call_fields("CA-voice")
    url = f"{BASE}/twiml/verify_caller"
    first_question(
        client.post("/twiml/verify_caller", data=fields, headers=scheme.sign(url, fields))
    )
    call = the_call(session, "CA-voice")
    assert (call.platform, call.caller_number) == ("twiml", "+13125550199")


def test_each_scheme_is_stored_on_the_status_route(
    twilio_app: Flask, client: FlaskClient, session: Session, scheme: Scheme
) -> None:
    fields = {**call_fields("CA-status"), "CallStatus": "completed", "CallDuration": "31"}
    headers = scheme.sign(f"{BASE}/twiml/status", fields)
    response = client.post("/twiml/status", data=fields, headers=headers)
    assert (response.status_code, response.data) == (204, b"")
    [event] = status_events(session)
    assert (event.payload["CallSid"], event.payload["CallStatus"]) == ("CA-status", "completed")


@pytest.mark.parametrize(
    "tamper",
    [
        "field changed",
        "field added",
        "other path",
        "https",
        "shared key without its header",
        "auth token under the shared key's header",
        "the key id as the key",
        "unsupported algorithm",
    ],
)
@pytest.mark.parametrize("route", ["/twiml/verify_caller", "/twiml/status"])
def test_tampered_requests_are_refused(
    twilio_app: Flask, client: FlaskClient, session: Session, route: str, tamper: str
) -> None:
    fields = call_fields("CA-tampered")
    url = BASE + route
    shared = SCHEMES["shared key"]
    sent = dict(fields)
    headers = SCHEMES["auth token"].sign(url, fields)
    if tamper == "field changed":
        sent["From"] = "+13125550101"
    elif tamper == "field added":
        sent["Digits"] = "1001"
    elif tamper == "other path":
        headers = SCHEMES["auth token"].sign(f"{BASE}/twiml/other", fields)
    elif tamper == "https":
        headers = SCHEMES["auth token"].sign(url.replace("http:", "https:"), fields)
    elif tamper == "shared key without its header":
        headers = Scheme(SIGNING_KEY, "HMAC_SHA256", None).sign(url, fields)
    elif tamper == "auth token under the shared key's header":
        headers = Scheme(TOKEN, "HMAC_SHA256", shared.settings).sign(url, fields)
    elif tamper == "the key id as the key":
        headers = Scheme(KEY_ID, "HMAC_SHA256", shared.settings).sign(url, fields)
    else:
        headers = Scheme(SIGNING_KEY, "HMAC_SHA1", f"key={KEY_ID},algorithm=HMAC_MD5").sign(
            url, fields
        )
    refused(client.post(route, data=sent, headers=headers))
    assert count(session, CallEvent) == 0 and count(session, Call) == 0


def test_a_json_body_is_authenticated_by_its_hash(
    twilio_app: Flask, client: FlaskClient, session: Session
) -> None:
    """A status callback whose fields are in the query and whose JSON body is hashed
    into the signed URL: the body's hash is checked, the URL alone is signed."""
    body = json.dumps({"CallSid": "CA-json", "CallStatus": "completed", "Note": "é"}).encode()
    digest = hashlib.sha256(body).hexdigest()
    path = f"/twiml/status?CallSid=CA-json&CallStatus=completed&bodySHA256={digest}"
    for scheme in SCHEMES.values():
        headers = scheme.sign(BASE + path, {})
        changed = body.replace(b"completed", b"canceled")
        refused(client.post(path, data=changed, content_type="application/json", headers=headers))
        response = client.post(path, data=body, content_type="application/json", headers=headers)
        assert response.status_code == 204, response.data
    events = status_events(session)
    assert [(e.payload["CallSid"], e.payload["CallStatus"]) for e in events] == [
        ("CA-json", "completed")  # the same report three times: stored once
    ]


def test_the_voice_route_answers_a_json_body_signed_with_its_hash(
    twilio_app: Flask, client: FlaskClient
) -> None:
    body = b'{"Caller": "+13125550199"}'
    path = "/twiml/verify_caller?CallSid=CA-jv&From=%2B13125550199"
    path += f"&bodySHA256={hashlib.sha256(body).hexdigest()}"
    headers = SCHEMES["auth token"].sign(BASE + path, {})
    first_question(client.post(path, data=body, content_type="application/json", headers=headers))
    refused(client.post(path, data=body + b" ", content_type="application/json", headers=headers))


# A multipart body with a part werkzeug can name no field for (it keys it None).
NAMED = b'--B\r\nContent-Disposition: form-data; name="CallSid"\r\n\r\nCA-mp\r\n'
FROM = b'--B\r\nContent-Disposition: form-data; name="From"\r\n\r\n+13125550199\r\n'
NAMELESS = b"--B\r\nContent-Disposition: form-data\r\n\r\nno name\r\n"
NO_DISPOSITION = b"--B\r\nContent-Type: text/plain\r\n\r\nno disposition\r\n"
END = b"--B--\r\n"
MULTIPART = "multipart/form-data; boundary=B"
NAMED_FIELDS = {"CallSid": "CA-mp", "From": "+13125550199"}


@pytest.mark.parametrize("nameless", [NAMELESS, NAMELESS + NAMELESS], ids=["one", "two"])
def test_a_part_without_a_name_gets_403_unsigned_and_xml_signed(
    twilio_app: Flask, client: FlaskClient, session: Session, nameless: bytes
) -> None:
    """It used to break the signature check before authentication (sorting None with
    the field names), and then the error handler, which checks it again: gunicorn
    answered its own HTML 500."""
    body = NAMED + nameless + FROM + END
    url = f"{BASE}/twiml/verify_caller"
    forged = {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}
    for headers in ({}, forged, SCHEMES["auth token"].sign(url, {})):
        refused(
            client.post("/twiml/verify_caller", data=body, content_type=MULTIPART, headers=headers)
        )
    assert count(session, Call) == 0
    headers = SCHEMES["auth token"].sign(url, NAMED_FIELDS)
    first_question(
        client.post("/twiml/verify_caller", data=body, content_type=MULTIPART, headers=headers)
    )
    call = the_call(session, "CA-mp")
    assert call.caller_number == "+13125550199"


def test_a_status_callback_with_a_nameless_part(
    twilio_app: Flask, client: FlaskClient, session: Session
) -> None:
    body = NAMED + NAMELESS + b'--B\r\nContent-Disposition: form-data; name="CallStatus"'
    body += b"\r\n\r\nringing\r\n" + END
    url = f"{BASE}/twiml/status"
    refused(client.post("/twiml/status", data=body, content_type=MULTIPART))
    fields = {"CallSid": "CA-mp", "CallStatus": "ringing"}
    headers = SCHEMES["shared key"].sign(url, fields)
    response = client.post("/twiml/status", data=body, content_type=MULTIPART, headers=headers)
    assert (response.status_code, response.data) == (204, b"")
    [event] = status_events(session)
    assert (event.payload["CallSid"], event.payload["CallStatus"]) == ("CA-mp", "ringing")
    assert None not in event.payload and "None" not in event.payload


def test_a_part_without_content_disposition_signs_no_field(
    twilio_app: Flask, client: FlaskClient, session: Session
) -> None:
    """werkzeug reads no field of such a body: a signature over its named fields does
    not match, and nothing breaks."""
    body = NAMED + NO_DISPOSITION + FROM + END
    headers = SCHEMES["auth token"].sign(f"{BASE}/twiml/verify_caller", NAMED_FIELDS)
    refused(client.post("/twiml/verify_caller", data=body, content_type=MULTIPART, headers=headers))
    assert count(session, Call) == 0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with glue_server(tmp_path_factory.mktemp("twilio"), {"GLUE_RATE_LIMIT_ENABLED": "false"}) as s:
        yield s


def test_gunicorn_answers_a_nameless_part_from_glue_never_its_own_500(server: Server) -> None:
    """The same body through a real gunicorn, where the crash came out as gunicorn's
    own HTML 500 page."""
    body = NAMED + NAMELESS + FROM + END
    host = "glue.test"
    signed = SCHEMES["auth token"].sign(f"http://{host}/twiml/verify_caller", NAMED_FIELDS)
    replies = {}
    for name, signature in [("unsigned", "forged"), ("signed", signed["X-Twilio-Signature"])]:
        head = (
            f"POST /twiml/verify_caller HTTP/1.1\r\nHost: {host}\r\nContent-Type: {MULTIPART}"
            f"\r\nContent-Length: {len(body)}\r\nX-Twilio-Signature: {signature}\r\n\r\n"
        )
        replies[name] = parse_reply(exchange(server, head.encode() + body))
    for reply in replies.values():
        assert reply.from_glue, reply.raw[:300]
    assert replies["unsigned"].status == 403 and b"<" not in replies["unsigned"].body
    signed_reply = replies["signed"]
    assert (signed_reply.status, signed_reply.mimetype) == (200, "text/xml")
    root = etree.fromstring(signed_reply.body)
    assert root.tag == "Response" and says(root) == [FIRST_PROMPT]
