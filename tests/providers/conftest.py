"""Fixtures for the provider clients: a real local HTTP server as the provider
(pytest-httpserver), a port with nothing listening, and a raw socket server
that drops the connection. Pure tests: no app, no database."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from tests.helpers.providers import DroppingServer


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
