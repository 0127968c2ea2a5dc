"""The fields a platform sent, as one flat mapping."""

from __future__ import annotations

from flask import request


def sent_fields() -> dict[str, str]:
    """Query and form fields, the first value of each.

    A multipart part whose name cannot be read comes keyed `None` from werkzeug;
    it names no field we know, so it is dropped rather than breaking the sorting
    and storing of fields downstream.
    """
    return {name: value for name, value in request.values.items() if name is not None}
