"""One handler for HTTP errors, whichever part of Glue a request was for.

Routing errors (404, 405) and body-size errors (413) happen before a blueprint
is chosen, so only an app-level handler sees them. Each part registers how its
errors look under its URL prefix: platform XML, API JSON; others keep Flask's.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

Renderer = Callable[[HTTPException], Response]
EXTENSION = "glue.error_renderers"


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = {}
    app.register_error_handler(HTTPException, _render)


def register(app: Flask, prefix: str, render: Renderer) -> None:
    """Errors under `prefix` (e.g. "/api/") are answered by `render`."""
    app.extensions[EXTENSION][prefix] = render


def _render(exc: HTTPException) -> Response | HTTPException:
    for prefix, render in current_app.extensions[EXTENSION].items():
        if request.path.startswith(prefix):
            return render(exc)
    return exc
