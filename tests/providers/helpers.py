"""What the provider tests share: the numbers and a complete request."""

from __future__ import annotations

from typing import Any

from app.calls.providers.base import CallRequest

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
