"""What any request may carry, checked before a route sees it.

- The body limit (GLUE_MAX_CONTENT_LENGTH) holds on every route, whatever the
  framing. Werkzeug refuses a declared Content-Length over the limit only when
  a route reads the body, and reads a chunked body (no Content-Length) only up
  to the limit, then parses the truncated part as if it were whole. So a body
  is measured here, before any route: 413 if it is larger (answered in the
  route's own format by app.web.http_errors), else buffered whole.
- A body whose framing is broken is a bad request: 400, in the route's own
  format. Chunked: a chunk size that is not hex, a chunk without its CRLF, the
  connection closed mid-body (the server raises it from the stream). With a
  Content-Length: fewer bytes before the connection closed (the server says
  nothing; werkzeug, trusting a server that frames the body, would parse the
  part as if it were whole: a PIN cut short, a wrong try counted). The body is
  read here once, from a server that frames it: nothing after reads its stream.
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

from app.neutral.turn import MAX_ID

# How a server says the body it is reading for us is broken: gunicorn
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
    if declared is not None and limit is not None and declared > limit:
        abort(413)
    if "wsgi.input_terminated" not in request.environ:
        # werkzeug reads the body: no more than a Content-Length, and a shorter
        # one is a 400 (ClientDisconnected); none at all without a length.
        return
    stream = request.environ["wsgi.input"]
    request.environ["wsgi.input"] = io.BytesIO()  # if refused, the rest is never read
    # With no length, read one byte past the limit to know whether it is over.
    wanted = declared if declared is not None else None if limit is None else limit + 1
    try:
        body = _read(stream, wanted)
    except BROKEN_BODY:
        abort(400, "The request body's framing is broken.")
    if declared is not None and len(body) < declared:
        abort(400, "The request body ended before its Content-Length.")
    if declared is None and limit is not None and len(body) > limit:
        abort(413)
    request.environ["wsgi.input"] = io.BytesIO(body)


def _read(stream: IO[bytes], size: int | None) -> bytes:
    """`size` bytes, fewer if the stream ends first; all of it if `size` is None."""
    if size is None:
        return stream.read()
    body = b""
    while len(body) < size:
        chunk = stream.read(size - len(body))
        if not chunk:
            break
        body += chunk
    return body


def check_text() -> None:
    fields = request.values.items(multi=True)
    if "\x00" in request.path or any("\x00" in f"{name}{value}" for name, value in fields):
        abort(400)
