"""Fixtures for the provider clients: a real local HTTP server as the provider
(pytest-httpserver), a port with nothing listening, and a raw socket server
that drops the connection. Pure tests: no app, no database."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    # IPv4 loopback, so "localhost" resolving to ::1 first cannot matter.
    return ("127.0.0.1", 0)


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL where nothing listens: the connection is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"


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


@pytest.fixture
def dropping_server() -> Iterator[Callable[[bytes], DroppingServer]]:
    """Make a server that drops connections after sending the given bytes."""
    servers: list[DroppingServer] = []

    def make(reply: bytes = b"") -> DroppingServer:
        server = DroppingServer(reply)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
