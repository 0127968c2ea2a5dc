"""Generated hostile bytes, sent raw to a real gunicorn serving Glue
(gunicorn.conf.py): request lines, header blocks, chunked bodies and
multipart bodies, each around requests a platform could send (its key in the
query or in HTTP Basic, a PIN in the query or the body).

Whatever arrives, the answer is a well-formed HTTP response (or none, when the
head never ended), never a 500; on a platform's routes Glue answers its XML or
a bare 403; and no line of the log, gunicorn's or Glue's, carries a secret or
was begun by the sender (each is one of Glue's or gunicorn's).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st
from lxml import etree

from tests.helpers.fuzz.profiles import examples
from tests.helpers.fuzz.strategies import SENT_PINS, encoded, hostile_text, multipart, urlencoded
from tests.helpers.raw_http import (
    PLATFORM_PREFIXES,
    STATUS_ROUTES,
    XML_ROOTS,
    LogReader,
    exchange,
    glue_server,
    log_problems,
    parse_reply,
)
from tests.helpers.servers import Server
from tests.helpers.settings import TEST_SECRETS

HOST = b"glue.test"
KEYS = {
    "/ifbyphone/": TEST_SECRETS["IFBYPHONE_SECRET"],
    "/voipnow/": TEST_SECRETS["VOIPNOW_SECRET"],
    "/didml/": TEST_SECRETS["DIDML_SECRET"],
}
BASIC = {prefix: base64.b64encode(f"ivr:{key}".encode()).decode() for prefix, key in KEYS.items()}
SECRETS = (*TEST_SECRETS.values(), *SENT_PINS, *BASIC.values())
TARGETS = (
    "/ifbyphone/verify_caller",
    "/voipnow/verify_caller/dial-in",
    "/voipnow/verify_caller/hangup",
    "/didml/verify_caller",
    "/twiml/verify_caller",
    "/didml/status",
    "/twiml/status",
    "/healthz",
    "/readyz",
    "/login",
    "/api/calls",
    "/admin/calls/1",
    "/nowhere",
)
PROBES = ("/healthz", "/readyz")
METHODS = (b"GET", b"POST", b"POST", b"HEAD", b"PUT", b"OPTIONS", b"DELETE")


@dataclass(frozen=True)
class Request:
    """What is sent, and what it aims at (the route, before any hostile suffix)."""

    data: bytes
    method: bytes
    target: str

    @property
    def platform(self) -> str | None:
        """The platform prefix whose XML (or bare 403) answers, if any."""
        if self.target in STATUS_ROUTES:
            return None
        return next((p for p in PLATFORM_PREFIXES if self.target.startswith(p)), None)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Debug level: gunicorn's debug lines quote the most of a request.
    env = {"GUNICORN_CMD_ARGS": "--log-level debug", "GLUE_RATE_LIMIT_ENABLED": "false"}
    with glue_server(tmp_path_factory.mktemp("fuzz-raw-http"), env) as server:
        yield server


@pytest.fixture(scope="module")
def log(server: Server) -> LogReader:
    """The log past start-up (test_the_log_after_all_the_fuzzing reads that too)."""
    reader = LogReader(server)
    reader.new_lines()
    return reader


# --- pieces -----------------------------------------------------------------------

# What a URL's path may carry past its route: escaped line breaks and controls,
# escaped bytes that are no UTF-8, hostile text escaped, raw bytes (any: a raw
# space or CR splits the line, most others gunicorn refuses).
ESCAPES = st.sampled_from(
    (b"%0a", b"%0d%0a", b"%00", b"%85", b"%c2%85", b"%e2%80%a8", b"%1b[31m", b"%ff", b"%")
)
PATH_PIECES = st.one_of(
    ESCAPES,
    ESCAPES,
    st.sampled_from((b"/", b"//", b"/..", b";x=1", b"?", b"#frag", b"%2f", b"%25")),
    hostile_text.map(lambda text: quote_from_bytes(encoded(text, "utf-8"), safe="/").encode()),
    st.binary(min_size=1, max_size=3),
)
suffixes = st.lists(PATH_PIECES, max_size=3).map(b"".join)
fields = st.lists(st.tuples(hostile_text, hostile_text), max_size=3)


@st.composite
def queries(draw: st.DrawFn, target: str) -> bytes:
    """The platform's key where it puts it, a PIN, hostile fields; escaped or raw."""
    pairs = draw(fields)
    prefix = next((p for p in KEYS if target.startswith(p)), None)
    if prefix and draw(st.booleans()):
        pairs.insert(draw(st.integers(0, len(pairs))), ("key", KEYS[prefix]))
    if draw(st.booleans()):
        pairs.append(("pin", draw(st.sampled_from(SENT_PINS))))
    if not pairs:
        return b""
    return b"?" + urlencoded(pairs, "utf-8", raw=draw(st.integers(0, 5)) == 0)


@st.composite
def request_lines(draw: st.DrawFn) -> tuple[bytes, bytes, str]:
    """(method, request line with its end, target): sometimes well-formed."""
    target = draw(st.sampled_from(TARGETS))
    method = draw(
        st.one_of(
            *[st.sampled_from(METHODS)] * 6,
            st.sampled_from((b"get", b"GE T", b"G\x00T", b"CONNECT", b"PRI", b"X" * 25, b"")),
            st.binary(max_size=6),
        )
    )
    uri = target.encode() + draw(suffixes) + draw(queries(target))
    version = draw(
        st.sampled_from(
            (b"HTTP/1.1",) * 18
            + (b"HTTP/1.0", b"HTTP/1.2", b"HTTP/2.0", b"HTTP/0.9", b"http/1.1", b"HTTP/1.1 x")
            + (b"", b"HTTP/1.1\x00", b"HTTP/11")
        )
    )
    space = draw(st.sampled_from((b" ",) * 18 + (b"  ", b"\t", b"")))
    end = draw(st.sampled_from((b"\r\n",) * 18 + (b"\n", b"\r", b"")))
    return method, method + space + uri + space + version + end, target


def plain_line(method: bytes, target: str, query: bytes = b"") -> bytes:
    return method + b" " + target.encode() + query + b" HTTP/1.1\r\n"


def credentials(target: str) -> bytes:
    prefix = next((p for p in KEYS if target.startswith(p)), None)
    return f"?key={KEYS[prefix]}".encode() if prefix else b""


HEADER_NAMES = (
    b"Content-Type",
    b"Content-Length",
    b"Transfer-Encoding",
    b"Expect",
    b"Connection",
    b"X-Request-ID",
    b"Authorization",
    b"Cookie",
    b"X-Forwarded-For",
    b"Forwarded",
    b"Host",
    b"Upgrade",
    b"X-Twilio-Signature",
    b"TE",
    b"Trailer",
)
HEADER_VALUES = st.one_of(
    hostile_text.map(lambda text: encoded("".join(filter(str.isprintable, text)), "utf-8")),
    st.sampled_from(
        (
            *(b"chunked", b"gzip, chunked", b"chunked, gzip", b"identity", b"0", b"-1", b"1 1"),
            *(b"100-continue", b"h2c", b"close", b"\xff\xfe", b"a\x00b", b"x" * 9000),
        )
    ),
    hostile_text.map(lambda text: encoded(text, "utf-8")),
    st.binary(max_size=12),
)


@st.composite
def header_blocks(draw: st.DrawFn, target: str) -> bytes:
    """Header lines, well-formed or not, and the blank line (or not) that ends them."""
    lines = [b"Host: " + HOST]
    prefix = next((p for p in KEYS if target.startswith(p)), None)
    if prefix and draw(st.booleans()):
        lines.append(f"Authorization: Basic {BASIC[prefix]}".encode())
    for _ in range(draw(st.integers(0, 4))):
        name = draw(
            st.one_of(*[st.sampled_from(HEADER_NAMES)] * 3, st.binary(min_size=1, max_size=8))
        )
        value = draw(HEADER_VALUES)
        style = draw(st.sampled_from(("plain",) * 8 + ("tight", "spaced", "folded", "bare")))
        if style == "tight":
            lines.append(name + b":" + value)
        elif style == "spaced":
            lines.append(name + b" : " + value)
        elif style == "folded":
            lines.append(name + b": x\r\n " + value)
        elif style == "bare":
            lines.append(name + b": " + value + b"\n")
        else:
            lines.append(name + b": " + value)
    order = draw(st.permutations(lines))
    return b"".join(line + b"\r\n" for line in order) + draw(
        st.sampled_from((b"\r\n",) * 12 + (b"", b"\n"))
    )


@st.composite
def chunked_bodies(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` in chunks, each framed right or broken, the end there or not."""
    pieces = []
    rest = data
    while rest:
        size = len(rest) - draw(st.integers(0, len(rest) - 1))  # shrinks to one chunk
        chunk, rest = rest[:size], rest[size:]
        size_line = draw(
            st.sampled_from(
                (b"%x" % len(chunk),) * 36
                + (b"%X" % len(chunk), b"%x;ext=1" % len(chunk), b"%x ;e" % len(chunk))
                + (b"-%x" % len(chunk), b"zz", b"", b"0x%x" % len(chunk), b"%x;=" % len(chunk))
                + (b"%x" % (len(chunk) + 5), b"f" * 20, b"%x\x00" % len(chunk))
            )
        )
        after = draw(st.sampled_from((b"\r\n",) * 36 + (b"\n", b"", b"XX", b"\r")))
        pieces.append(size_line + b"\r\n" + chunk + after)
    end = draw(
        st.sampled_from(
            (b"0\r\n\r\n",) * 8
            + (b"0\r\nX-Trailer: 1\r\n\r\n", b"0\r\nContent-Length: 5\r\n\r\n")
            + (b"0\r\n", b"0", b"", b"0\r\nbad trailer\r\n\r\n")
        )
    )
    body = b"".join(pieces) + end
    if draw(st.integers(0, 7)) == 0:
        body = body[: draw(st.integers(0, len(body)))]  # the connection ends there
    return body


@st.composite
def form_fields(draw: st.DrawFn) -> list[tuple[str, str]]:
    """A turn's fields around hostile ones: a session id and a PIN."""
    pairs = draw(fields)
    pairs.append(("session_id", "raw-1"))
    pairs.append(("pin", draw(st.sampled_from(SENT_PINS))))
    return draw(st.permutations(pairs))


# --- the property -------------------------------------------------------------------


def check(server: Server, log: LogReader, request: Request) -> None:
    raw = exchange(server, request.data)
    if not raw:
        # gunicorn answers nothing when the head never ended (the client went away).
        assert b"\r\n\r\n" not in request.data, f"no answer to {request.data[:300]!r}"
        event("no answer")
        lines = log.new_lines()
    else:
        reply = parse_reply(raw, head_request=request.method == b"HEAD")
        event(f"{reply.status} from {'Glue' if reply.from_glue else 'gunicorn'}")
        assert reply.status < 500 or (reply.status == 501 and not reply.from_glue), reply.raw
        assert b"Traceback" not in reply.body, reply.raw
        lines = log.new_lines()
        if reply.from_glue:
            rid = reply.headers["x-request-id"]
            quiet_probe = reply.status < 300 and request.target in PROBES
            if not quiet_probe and not any(rid in line for line in lines):
                lines += log.wait_for(f"rid={rid}")
                assert any(line.endswith(f"rid={rid}") for line in lines), lines
            if request.platform:
                check_platform_answer(request, reply.status, reply.mimetype, reply.body)
    problems = log_problems(lines, SECRETS)
    assert not problems, "\n".join(problems)


def check_platform_answer(request: Request, status: int, mimetype: str, body: bytes) -> None:
    if status == 403 and body in (b"Forbidden\n", b""):
        return  # unauthenticated: nothing about the flow
    if not body and request.method in (b"HEAD", b"OPTIONS"):
        return
    assert mimetype == "text/xml", f"{status} {mimetype}: {body[:300]!r}"
    root = etree.fromstring(body)
    assert request.platform is not None
    assert etree.QName(root).localname == XML_ROOTS[request.platform], body


# --- the tests ----------------------------------------------------------------------


@examples()
@given(case=request_lines())
@example(  # a line break in the path starts no log line of the sender's
    case=(
        b"GET",
        b"GET /ifbyphone/verify_caller%0aforged%85?key="
        + KEYS["/ifbyphone/"].encode()
        + b" HTTP/1.1\r\n",
        "/ifbyphone/verify_caller",
    )
)
@example(  # a raw byte in the query: logged without its key and PIN
    case=(
        b"GET",
        b"GET /ifbyphone/verify_caller?key="
        + KEYS["/ifbyphone/"].encode()
        + b"&pin=73914682&n=\xff HTTP/1.1\r\n",
        "/ifbyphone/verify_caller",
    )
)
def test_fuzz_request_lines(server: Server, log: LogReader, case: tuple[bytes, bytes, str]) -> None:
    method, line, target = case
    data = line + b"Host: " + HOST + b"\r\n\r\n"
    check(server, log, Request(data, method, target))


@examples()
@given(target=st.sampled_from(TARGETS), method=st.sampled_from(METHODS), data=st.data())
def test_fuzz_header_blocks(
    server: Server, log: LogReader, target: str, method: bytes, data: st.DataObject
) -> None:
    head = plain_line(method, target, credentials(target)) + data.draw(header_blocks(target))
    body = urlencoded(data.draw(form_fields()), "utf-8") if method == b"POST" else b""
    check(server, log, Request(head + body, method, target))


@examples()
@given(target=st.sampled_from(TARGETS), data=st.data())
@example(target="/healthz", data=None)  # a chunk size that is not hex: no 500
def test_fuzz_chunked_bodies(
    server: Server, log: LogReader, target: str, data: st.DataObject | None
) -> None:
    if data is None:
        body = b"zz\r\npin=73914682\r\n0\r\n\r\n"
    else:
        body = data.draw(chunked_bodies(urlencoded(data.draw(form_fields()), "utf-8")))
    head = plain_line(b"POST", target, credentials(target)) + (
        b"Host: glue.test\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
    )
    check(server, log, Request(head + body, b"POST", target))


@examples()
@given(target=st.sampled_from(TARGETS), data=st.data())
def test_fuzz_multipart_bodies(
    server: Server, log: LogReader, target: str, data: st.DataObject
) -> None:
    boundary = data.draw(st.sampled_from(("glue", "x" * 71, "a b", "\u00e9", "--", "")))
    body = multipart(data.draw(form_fields()), "utf-8", boundary, data.draw(st.booleans()))
    body = data.draw(
        st.sampled_from(
            (
                body,
                body[: len(body) // 2],  # no closing boundary
                body.replace(b"\r\n", b"\n"),
                body.replace(b"Content-Disposition", b"Content-Dispositio"),
                body.replace(b'name="', b"name="),
                b"--" + boundary.encode() + b"\r\n" + b"x" * 100,
            )
        )
    )
    content_type = data.draw(
        st.sampled_from(
            (f"multipart/form-data; boundary={boundary}".encode(),) * 3
            + (b"multipart/form-data", b'multipart/form-data; boundary="unterminated')
            + (b"multipart/form-data; boundary=" + b"b" * 300,)
        )
    )
    if data.draw(st.booleans()):
        framing = b"Transfer-Encoding: chunked\r\n"
        body = data.draw(chunked_bodies(body))
    else:
        length = len(body) + data.draw(st.sampled_from((0, 0, 0, -1, 10)))
        framing = b"Content-Length: %d\r\n" % max(0, length)
    head = plain_line(b"POST", target, credentials(target)) + (
        b"Host: glue.test\r\n" + framing + b"Content-Type: " + content_type + b"\r\n\r\n"
    )
    check(server, log, Request(head + body, b"POST", target))


def test_the_log_after_all_the_fuzzing(server: Server) -> None:
    """Every line the fuzz left, start-up's included, once more as a whole."""
    lines = server.log().split("\n")[:-1]
    assert not log_problems(lines, SECRETS), "\n".join(log_problems(lines, SECRETS))
