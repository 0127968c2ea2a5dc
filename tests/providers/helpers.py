"""What the provider tests share: the numbers, a complete request, and a wait
for a slow handler to finish."""

from __future__ import annotations

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
