"""Raw bytes to a real gunicorn serving Glue, its answers parsed strictly, and
its log (gunicorn's and Glue's lines, one file) read back line by line.

Sockets, not an HTTP client: a client library would refuse to send most of
what these tests send (a chunk size that is not hex, a raw byte in a URL).
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.db import make_engine, upgrade
from tests.helpers.servers import Server, gunicorn

# Where a platform's requests go: its voice-flow routes and the errors under
# its prefix answer its XML (or a bare 403); /didml/status and /twiml/status,
# which nobody but a log reads, answer text.
PLATFORM_PREFIXES = ("/ifbyphone/", "/voipnow/", "/didml/", "/twiml/")
STATUS_ROUTES = ("/didml/status", "/twiml/status")
XML_ROOTS = {
    "/ifbyphone/": "action",
    "/voipnow/": "Response",
    "/didml/": "Response",
    "/twiml/": "Response",
}

_STATUS_LINE = re.compile(rb"HTTP/1\.\d ([1-5]\d\d) [\x20-\x7e]*")
_HEADER_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\x20-\x7e\t\x80-\xff]*)")

# Every line of the server's output is one of these (never one a sender began):
LOG_LINE_SHAPES = (
    # gunicorn's own: [2026-12-07 05:49:57 +0000] [32271] [INFO] Starting gunicorn
    re.compile(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[[A-Z]+\] \S.*"),
    # gunicorn's access log (gunicorn.conf.py): 127.0.0.1 "GET /path" 200 73 7ms rid=…
    re.compile(r'\S+ ".*" \d{3} \S+ \d+ms rid=\S+'),
    # Glue's text format: 2026-12-07 05:50:05,624 ERROR [rid call=1] app.x: message
    re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \[[^\]]*\] [\w.]+: .*"),
)
# What ends or hides a line: no log line may hold one raw.
LINE_BREAKERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class RawReply:
    """One HTTP/1.x response as sent, checked well-formed while parsed."""

    status: int
    headers: Mapping[str, str]  # names lowercased; a repeated one keeps its last value
    body: bytes
    raw: bytes

    @property
    def from_glue(self) -> bool:
        """Answered by the app (it names every request), not by gunicorn's parser."""
        return "x-request-id" in self.headers

    @property
    def mimetype(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()


def exchange(server: Server, data: bytes, timeout: float = 10) -> bytes:
    """Send `data`, close our side (gunicorn then sees the end of the request,
    wherever it stopped), and read until the server closes."""
    host, port = server.base.removeprefix("http://").rsplit(":", 1)
    received = bytearray()
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it answered and closed before reading all: its answer is still there
        while True:
            try:
                piece = sock.recv(65536)
            except ConnectionResetError:
                break
            if not piece:
                break
            received += piece
    return bytes(received)


def parse_reply(raw: bytes, head_request: bool = False) -> RawReply:
    """The final response in `raw` (after any 1xx), asserting it well-formed:
    status line, header lines, a body that matches its framing, nothing after."""
    while True:
        head, separator, rest = raw.partition(b"\r\n\r\n")
        assert separator, f"no end of head: {raw[:300]!r}"
        lines = head.split(b"\r\n")
        status_line = _STATUS_LINE.fullmatch(lines[0])
        assert status_line, f"bad status line: {lines[0]!r}"
        status = int(status_line.group(1))
        if status >= 200:
            break
        raw = rest  # an interim answer (100 Continue): the final one follows
    headers: dict[str, str] = {}
    for line in lines[1:]:
        header = _HEADER_LINE.fullmatch(line)
        assert header, f"bad header line: {line!r} in {head[:300]!r}"
        headers[header.group(1).decode().lower()] = header.group(2).decode("latin-1").strip()
    if status in (204, 304) or (head_request and rest == b""):
        # An answer to HEAD has none; gunicorn's own refusal of one still does.
        assert rest == b"", f"a body where none may be: {rest[:100]!r}"
        return RawReply(status, headers, b"", raw)
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(rest)
    elif "content-length" in headers:
        length = headers["content-length"]
        assert length.isdigit(), f"Content-Length {length!r}"
        assert len(rest) == int(length), f"Content-Length {length}, body {len(rest)}: {rest!r}"
        body = rest
    else:
        body = rest  # delimited by the close
    return RawReply(status, headers, body, raw)


def _dechunk(data: bytes) -> bytes:
    body = bytearray()
    while True:
        size_line, separator, data = data.partition(b"\r\n")
        assert separator and re.fullmatch(rb"[0-9a-fA-F]+", size_line), size_line
        size = int(size_line, 16)
        if size == 0:
            assert data == b"\r\n", f"after the last chunk: {data!r}"
            return bytes(body)
        assert data[size : size + 2] == b"\r\n", f"chunk without its CRLF: {data[: size + 2]!r}"
        body += data[:size]
        data = data[size + 2 :]


def database_url(server: Server) -> str:
    """The database of a `glue_server`: beside its log, named alike."""
    return f"sqlite:///{server.output.with_suffix('.db')}"


@contextmanager
def glue_server(
    workdir: Path, env: Mapping[str, str] | None = None, name: str = "raw"
) -> Iterator[Server]:
    """gunicorn (one worker, gunicorn.conf.py) serving Glue on a migrated SQLite file."""
    url = f"sqlite:///{workdir}/{name}.db"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    with gunicorn(url, workdir, name=name, env=env) as server:
        yield server


class LogReader:
    """The server's log, line by line as it grows; only whole lines."""

    def __init__(self, server: Server) -> None:
        self.path = server.output
        self.offset = 0

    def new_lines(self) -> list[str]:
        with self.path.open("rb") as log:
            log.seek(self.offset)
            data = log.read()
        whole = data[: data.rfind(b"\n") + 1]
        self.offset += len(whole)
        # Split at LF only: a CR, NEL or U+2028 left raw stays inside its line.
        return whole.decode("utf-8", errors="replace").split("\n")[:-1]

    def wait_for(self, text: str, seconds: float = 5) -> list[str]:
        """New lines up to the one that holds `text` (it is written after the answer)."""
        lines: list[str] = []
        deadline = time.monotonic() + seconds
        while True:
            lines += self.new_lines()
            if any(text in line for line in lines) or time.monotonic() > deadline:
                return lines
            time.sleep(0.01)


def log_problems(lines: Iterable[str], secrets: Iterable[str]) -> list[str]:
    """Lines that hold a raw line breaker or a secret, or that no logger of
    Glue's or gunicorn's starts (a line the sender began)."""
    secrets = tuple(secrets)
    problems = []
    for line in lines:
        if LINE_BREAKERS.search(line):
            problems.append(f"raw control character: {line!r}")
        elif not any(shape.fullmatch(line) for shape in LOG_LINE_SHAPES):
            problems.append(f"not a line of Glue's or gunicorn's: {line!r}")
        if any(secret in line for secret in secrets):
            problems.append(f"a secret: {line!r}")
    return problems
