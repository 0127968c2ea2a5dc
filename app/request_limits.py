"""What any request may carry, checked before a route sees it.

- The body limit (GLUE_MAX_CONTENT_LENGTH) holds on every route, whatever the
  framing. Werkzeug refuses a declared Content-Length over the limit only when
  a route reads the body, and reads a chunked body (no Content-Length) only up
  to the limit, then parses the truncated part as if it were whole. So a body
  is measured here, before any route: 413 if it is larger (answered in the
  route's own format by app.http_errors), else buffered whole.
- An id in a URL (`<int:...>`) larger than the database's INTEGER is no id:
  404, where the database would have refused the query (a 500).
- Doubled slashes are not merged by a redirect: a platform's misconfigured URL
  gets its own XML 404 rather than an HTML redirect.
- A NUL character in the path, the query or a form field is refused (400): no
  platform, browser or API client sends one, and PostgreSQL text cannot hold
  it (the query would fail: a 500, or a platform's request lost).
"""

from __future__ import annotations

import io
from typing import Any

from flask import Flask, abort, request
from werkzeug.routing import IntegerConverter, Map

MAX_ID = 2**31 - 1  # INTEGER on PostgreSQL; SQLite's is larger


class IdConverter(IntegerConverter):
    """`<int:...>`, bounded by what an id column holds."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def init_app(app: Flask) -> None:
    """Before any blueprint: rules take their converters when they are added."""
    app.url_map.converters["int"] = IdConverter
    app.url_map.merge_slashes = False
    app.before_request(check_body)
    app.before_request(check_text)  # after: a body too large is not parsed


def check_body() -> None:
    limit = request.max_content_length
    if limit is None:
        return
    declared = request.content_length
    if declared is not None:
        if declared > limit:
            abort(413)
        return
    if "wsgi.input_terminated" not in request.environ:
        return  # no length and no server framing: werkzeug reads no body at all
    # Chunked: read one byte past the limit to know whether it is over.
    stream = request.environ["wsgi.input"]
    body = b""
    while len(body) <= limit:
        chunk = stream.read(limit + 1 - len(body))
        if not chunk:
            break
        body += chunk
    if len(body) > limit:
        request.environ["wsgi.input"] = io.BytesIO()  # the rest is never read
        abort(413)
    request.environ["wsgi.input"] = io.BytesIO(body)


def check_text() -> None:
    fields = request.values.items(multi=True)
    if "\x00" in request.path or any("\x00" in f"{name}{value}" for name, value in fields):
        abort(400)
