"""What the provider tests share: the numbers, a complete request, and a wait
for a slow handler to finish."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from pytest_httpserver import HTTPServer

from app.outbound.providers.base import CallRequest

USER = "+18772955100"  # rung first
TARGET = "+13125551212"  # connected next
CALLER_ID = "+18005551212"


def call(**changes: Any) -> CallRequest:
    """A click-to-call request with every common field set; tests change some."""
    fields: dict[str, Any] = {
        "to_number": USER,
        "connect_to": TARGET,
        "caller_id": CALLER_ID,
        "reference": "42",
        "page": "glue",
    }
    fields.update(changes)
    return CallRequest(**fields)


def wait_for_log(httpserver: HTTPServer, count: int = 1, timeout: float = 5.0) -> None:
    """Wait until the server has logged `count` requests.

    A client that gave up (read timeout) leaves the server's handler running;
    pytest-httpserver logs the request only once the handler has returned. The
    server is shared by every test, so a test with a slow handler waits here
    before ending: otherwise its request lands in the next test's log.
    """
    deadline = time.monotonic() + timeout
    while len(httpserver.log) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(httpserver.log)} of {count} requests logged in {timeout}s")
        time.sleep(0.01)


class DroppingServer:
    """Reads one request per connection, sends `reply` (maybe part of an
    answer, maybe nothing) and closes the connection."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.requests: list[bytes] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/api"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(2)
                self.requests.append(_read_request(conn))
                if self.reply:
                    conn.sendall(self.reply)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(4096)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body
