"""Hostile bytes sent raw to a real gunicorn serving Glue (gunicorn.conf.py):
a broken chunked body is a bad request (400, a platform's XML), and no log
line, gunicorn's or Glue's, is split by a sender or carries a secret."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from app.db import make_engine
from app.models import Call, CallEvent
from tests.helpers.raw_http import (
    XML_ROOTS,
    LogReader,
    RawReply,
    database_url,
    exchange,
    glue_server,
    log_problems,
    parse_reply,
)
from tests.helpers.servers import Server
from tests.helpers.settings import TEST_SECRETS

HOST = "glue.test"
PIN = "90817263"  # distinctive: in no id, port or time the log holds
SECRETS = (*(TEST_SECRETS[f"{p}_SECRET"] for p in ("IFBYPHONE", "VOIPNOW", "DIDML")), PIN)
TWIML = "/twiml/verify_caller"
DIDML_STATUS = f"/didml/status?key={TEST_SECRETS['DIDML_SECRET']}"
TWIML_SIGNATURE = RequestValidator(TEST_SECRETS["TWILIO_AUTH_TOKEN"]).compute_signature(
    f"http://{HOST}{TWIML}", {}
)

# Each platform's voice route, authenticated as the platform does it.
PLATFORM_TARGETS = {
    "ifbyphone": (f"/ifbyphone/verify_caller?key={TEST_SECRETS['IFBYPHONE_SECRET']}", b""),
    "voipnow": (f"/voipnow/verify_caller/dial-in?key={TEST_SECRETS['VOIPNOW_SECRET']}", b""),
    "didml": (f"/didml/verify_caller?key={TEST_SECRETS['DIDML_SECRET']}", b""),
    "twiml": (TWIML, f"X-Twilio-Signature: {TWIML_SIGNATURE}\r\n".encode()),
}

# Chunked bodies whose framing is broken; each ends where the connection does.
BROKEN_CHUNKED = {
    "size-not-hex": b"zz\r\npin=1\r\n0\r\n\r\n",
    "size-negative": b"-5\r\npin=1\r\n0\r\n\r\n",
    "size-empty": b"\r\npin=1\r\n0\r\n\r\n",
    "cut-mid-chunk": b"10\r\npin=1",
    "cut-before-last-chunk": b"5\r\npin=1\r\n",
    "cut-in-size-line": b"5\r\npin=1\r\n3",
    "no-crlf-after-chunk": b"5\r\npin=1XX0\r\n\r\n",
    "lf-only-after-chunk": b"5\r\npin=1\n0\r\n\r\n",
    "bad-extension": b"5;=\r\npin=1\r\n0\r\n\r\n",
    "no-trailer-end": b"5\r\npin=1\r\n0\r\n",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # At debug level: gunicorn's debug lines quote more of a request than its warnings.
    env = {"GUNICORN_CMD_ARGS": "--log-level debug", "GLUE_RATE_LIMIT_ENABLED": "false"}
    with glue_server(tmp_path_factory.mktemp("raw-http"), env) as server:
        yield server


@pytest.fixture
def log(server: Server) -> LogReader:
    """The log from this test on."""
    reader = LogReader(server)
    reader.new_lines()
    return reader


def post_chunked(server: Server, target: str, body: bytes, headers: bytes = b"") -> RawReply:
    head = (
        f"POST {target} HTTP/1.1\r\nHost: {HOST}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n"
    ).encode()
    return parse_reply(exchange(server, head + headers + b"\r\n" + body))


@pytest.mark.parametrize("body", BROKEN_CHUNKED.values(), ids=BROKEN_CHUNKED.keys())
@pytest.mark.parametrize("platform", PLATFORM_TARGETS)
def test_a_broken_chunked_body_gets_the_platforms_xml_400(
    server: Server, log: LogReader, platform: str, body: bytes
) -> None:
    target, headers = PLATFORM_TARGETS[platform]
    reply = post_chunked(server, target, body, headers)

    assert reply.status == 400, reply.raw
    assert reply.mimetype in ("text/xml", "application/xml"), reply.raw
    root = etree.fromstring(reply.body)
    assert etree.QName(root).localname == XML_ROOTS[f"/{platform}/"]
    lines = log.wait_for(f"rid={reply.headers['x-request-id']}")
    assert not [line for line in lines if "Traceback" in line or " ERROR " in line], lines


@pytest.mark.parametrize("body", BROKEN_CHUNKED.values(), ids=BROKEN_CHUNKED.keys())
@pytest.mark.parametrize(
    "target",
    ["/healthz", "/login", "/api/calls", "/ifbyphone/x", DIDML_STATUS],
    ids=["healthz", "login", "api", "unauthenticated-platform", "status-callback"],
)
def test_a_broken_chunked_body_is_a_bad_request_on_any_route(
    server: Server, target: str, body: bytes
) -> None:
    """Unauthenticated on a platform's prefix: the bare 403, no XML; a status
    callback, whose answer only a log reads: text."""
    reply = post_chunked(server, target, body)

    if target.startswith("/ifbyphone/"):
        assert (reply.status, reply.body) == (403, b"Forbidden\n"), reply.raw
    elif target == DIDML_STATUS:
        assert (reply.status, reply.body) == (400, b"Bad Request\n"), reply.raw
    else:
        assert reply.status == 400, reply.raw


def test_a_whole_chunked_body_is_still_read(server: Server) -> None:
    """The control: the same route and framing, well-formed, reaches the flow."""
    target, _ = PLATFORM_TARGETS["ifbyphone"]
    fields = b"session_id=chunked-1&account=1001"
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(fields), fields)
    reply = post_chunked(server, target, body)

    assert reply.status == 200, reply.raw
    root = etree.fromstring(reply.body)
    assert root.findtext("app") == "survo"  # a question asked: the turn was read


@pytest.mark.parametrize("platform", PLATFORM_TARGETS)
def test_a_body_shorter_than_its_content_length_is_a_bad_request(
    server: Server, log: LogReader, platform: str
) -> None:
    """The connection ended mid-body: the PIN may be cut short, so nothing of
    the turn is run or stored (a wrong try would count toward a lockout)."""
    target, headers = PLATFORM_TARGETS[platform]
    session = f"short-{platform}"
    fields = f"session_id={session}&CallID={session}&CallSid={session}&account=1001&pin=12"
    head = (
        f"POST {target} HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len(fields) + 2}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
    ).encode()
    reply = parse_reply(exchange(server, head + headers + b"\r\n" + fields.encode()))

    assert reply.status == 400, reply.raw
    root = etree.fromstring(reply.body)
    assert etree.QName(root).localname == XML_ROOTS[f"/{platform}/"]
    engine = make_engine(database_url(server))
    try:
        with Session(engine) as db:
            calls = db.scalars(select(Call).where(Call.platform_call_id == session)).all()
            rid = reply.headers["x-request-id"]
            events = db.scalars(select(CallEvent).where(CallEvent.request_id == rid)).all()
    finally:
        engine.dispose()
    assert (calls, events) == ([], [])


# A decoded URL's line breaks and other controls, and the log line they would forge.
INJECTED = "%0d%0a127.0.0.1%20%22GET%20/forged%22%20200%200%200ms%20rid=x%0aB%85C%e2%80%a8D%1b[0m"


@pytest.mark.parametrize(
    "target",
    [
        f"/nowhere{INJECTED}",  # a 404 for everyone
        f"/ifbyphone/verify_caller{INJECTED}?key={TEST_SECRETS['IFBYPHONE_SECRET']}",
        f"/login{INJECTED}",
        f"/admin/calls/1{INJECTED}",
    ],
    ids=["404", "platform", "login", "admin"],
)
def test_a_control_character_in_a_url_stays_inside_its_log_line(
    server: Server, log: LogReader, target: str
) -> None:
    request = f"GET {target} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    reply = parse_reply(exchange(server, request))
    assert reply.from_glue, reply.raw
    lines = log.wait_for(f"rid={reply.headers['x-request-id']}")

    assert not log_problems(lines, SECRETS), "\n".join(lines)
    access = [line for line in lines if line.endswith(reply.headers["x-request-id"])]
    assert len(access) == 1, lines
    assert '\\r\\n127.0.0.1 \\"GET /forged\\"' in access[0]  # escaped, visibly
    assert "\\x85C" in access[0] and "\\x1b[0m" in access[0]


# Requests gunicorn refuses before Glue sees them, quoting what it read. Each
# carries a platform's key and a PIN where a platform puts them.
KEY = TEST_SECRETS["IFBYPHONE_SECRET"]
QUERY = f"key={KEY}&account=1001&pin={PIN}"
# Unpadded: a redacted `=` would hide the padding, not the credential before it.
BASIC = base64.b64encode(f":{KEY}".encode()).decode().rstrip("=")
REFUSED = {
    "raw-byte-in-query": f"GET /ifbyphone/verify_caller?{QUERY}&name=Ren\xe9e HTTP/1.1".encode(
        "latin-1"
    ),
    "control-in-query": f"GET /ifbyphone/verify_caller?{QUERY}\x01 HTTP/1.1".encode(),
    "bad-version": f"GET /ifbyphone/verify_caller?{QUERY} HTTP/1.1x".encode(),
    "unknown-version": f"GET /ifbyphone/verify_caller?{QUERY} HTTP/3.0".encode(),
    "space-in-query": f"GET /ifbyphone/verify_caller?name=Ada L&{QUERY} HTTP/1.1".encode(),
    "space-before-key": f"GET /ifbyphone/verify_caller?name=Ada {QUERY} HTTP/1.1".encode(),
    "lowercase-method": f"get /ifbyphone/verify_caller?{QUERY} HTTP/1.1".encode(),
    "no-version": f"GET /ifbyphone/verify_caller?{QUERY}".encode(),
    "line-too-long": f"GET /ifbyphone/verify_caller?{QUERY}&x={'y' * 5000} HTTP/1.1".encode(),
}


@pytest.mark.parametrize("line", REFUSED.values(), ids=REFUSED.keys())
def test_a_refused_request_line_is_logged_without_its_secrets(
    server: Server, log: LogReader, line: bytes
) -> None:
    reply = parse_reply(exchange(server, line + f"\r\nHost: {HOST}\r\n\r\n".encode()))
    assert 400 <= reply.status < 500 and not reply.from_glue, reply.raw
    lines = log.wait_for("Invalid request from")

    assert any("Invalid request from" in line for line in lines), lines  # it was logged
    assert not log_problems(lines, [*SECRETS, BASIC]), "\n".join(lines)


# What gunicorn read before it gave up (the connection ended mid-head, a header
# it refuses), after a key, a PIN and credentials, and what it logs about it.
GIVEN_UP = {
    "query": (
        f"GET /ifbyphone/verify_caller?{QUERY} HTTP/1.1\r\nHost: {HOST}\r\n",
        "[DEBUG] Ignored premature client disconnection",
    ),
    "credentials": (
        f"GET /ifbyphone/x HTTP/1.1\r\nAuthorization: Basic {BASIC}\r\nCookie: s={KEY}",
        "[DEBUG] Ignored premature client disconnection",
    ),
    "bad-header": (
        f"GET /ifbyphone/x?{QUERY} HTTP/1.1\r\nAuthorization: Basic {BASIC}\r\nB\x01: x\r\n\r\n",
        "[WARNING] Invalid request from",
    ),
    "credentials-without-colon": (
        f"GET /ifbyphone/x HTTP/1.1\r\nHost: {HOST}\r\nAuthorization Basic {BASIC}\r\n\r\n",
        "[WARNING] Invalid request from",
    ),
    "credentials-after-a-raw-byte": (
        f"GET /ifbyphone/x HTTP/1.1\r\nAuthorization: \x85Basic {BASIC}",
        "[DEBUG] Ignored premature client disconnection",
    ),
    "folded-header": (
        f"GET /ifbyphone/x?{QUERY} HTTP/1.1\r\nHost: a\r\n folded: {KEY}\r\n\r\n",
        "[WARNING] Invalid request from",
    ),
}


@pytest.mark.parametrize(("head", "logged"), GIVEN_UP.values(), ids=GIVEN_UP.keys())
def test_what_gunicorn_read_before_giving_up_is_logged_without_secrets(
    server: Server, log: LogReader, head: str, logged: str
) -> None:
    raw = exchange(server, head.encode())
    if raw:
        assert not parse_reply(raw).from_glue, raw
    lines = log.wait_for(logged)  # written before gunicorn closed the connection

    assert any(logged in line for line in lines), lines
    assert not log_problems(lines, [*SECRETS, BASIC]), "\n".join(lines)


def test_the_whole_log_is_one_line_per_event(server: Server) -> None:
    """After the tests above (whichever ran): every line of the file, start-up
    included, is one of Glue's or gunicorn's, none with a secret."""
    lines = server.log().split("\n")[:-1]  # the last may not be whole yet

    assert lines
    assert not log_problems(lines, [*SECRETS, BASIC]), "\n".join(lines)
