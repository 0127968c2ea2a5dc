"""What any request may carry, checked before a route sees it.

- The body limit (GLUE_MAX_CONTENT_LENGTH) holds on every route, whatever the
  framing. Werkzeug refuses a declared Content-Length over the limit only when
  a route reads the body, and reads a chunked body (no Content-Length) only up
  to the limit, then parses the truncated part as if it were whole. So a body
  is measured here, before any route: 413 if it is larger (answered in the
  route's own format by app.http_errors), else buffered whole.
- A chunked body whose framing is broken (a chunk size that is not hex, a
  chunk without its CRLF, the connection closed mid-body) is a bad request:
  400, in the route's own format. The server raises it from the stream while
  the body is read here, once: nothing after this reads the server's stream.
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
from typing import IO, Any

from flask import Flask, abort, request
from gunicorn.http.errors import ParseException
from werkzeug.routing import IntegerConverter, Map

MAX_ID = 2**31 - 1  # INTEGER on PostgreSQL; SQLite's is larger

# How a server says the chunked body it is reading for us is broken: gunicorn
# raises its parser's errors (InvalidChunkSize, ChunkMissingTerminator,
# InvalidChunkExtension) and, when the connection ends mid-body, NoMoreData,
# an OSError; werkzeug's development server raises OSError for both.
BROKEN_BODY = (ParseException, OSError)


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
    declared = request.content_length
    if declared is not None:
        if limit is not None and declared > limit:
            abort(413)
        return
    if "wsgi.input_terminated" not in request.environ:
        return  # no length and no server framing: werkzeug reads no body at all
    stream = request.environ["wsgi.input"]
    request.environ["wsgi.input"] = io.BytesIO()  # if refused, the rest is never read
    try:
        body = _read_body(stream, limit)
    except BROKEN_BODY:
        abort(400, "The request body's chunked framing is broken.")
    if limit is not None and len(body) > limit:
        abort(413)
    request.environ["wsgi.input"] = io.BytesIO(body)


def _read_body(stream: IO[bytes], limit: int | None) -> bytes:
    """The whole body, or its first `limit` + 1 bytes: enough to know it is over."""
    if limit is None:
        return stream.read()
    body = b""
    while len(body) <= limit:
        chunk = stream.read(limit + 1 - len(body))
        if not chunk:
            break
        body += chunk
    return body


def check_text() -> None:
    fields = request.values.items(multi=True)
    if "\x00" in request.path or any("\x00" in f"{name}{value}" for name, value in fields):
        abort(400)
