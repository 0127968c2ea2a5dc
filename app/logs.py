"""Logging: every line names its request and, once known, the call it is about.

GLUE_LOG_FORMAT=text (the default) writes one readable line per event;
GLUE_LOG_FORMAT=json writes one JSON object per line for a log collector.
Either way an event is one line, whatever a request put in it: control
characters (a %0a decoded from a URL, a raw byte) are escaped, a traceback's
line breaks too (`one_line`), so no sender can start a line of its choosing.

The call is bound in a context variable (`bind_call`, `bind_action`), so the
flow runner, the status callbacks and the jobs name it once, without importing
Flask, and every later line of that request or job carries it. Only ids are
bound, never request fields: a line can carry no PIN it was not given.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

from flask import Flask, Response, g, has_request_context, request

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
FORMATS = ("text", "json")

# What ends or hides a line in a log file or viewer: the C0 and C1 controls
# (CR, LF, NEL among them) and Unicode's line and paragraph separators.
_BREAKERS = [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]
_TEXT_ESCAPES = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _BREAKERS} | {
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
}
# json.dumps escapes C0 itself; the rest would go out raw with ensure_ascii=False.
_JSON_ESCAPES = {c: f"\\u{c:04x}" for c in _BREAKERS if c >= 0x7F}
# The colours werkzeug's development server gives its lines (select graphic
# rendition sequences): they move no line, so they are kept wherever they are.
_COLOUR = re.compile(r"(\x1b\[[0-9;]*m)")

# What a server's own messages may quote of a raw request (a refused request
# line, a refused header line, the bytes read before a client went away) and
# must not log: a query string (IfbyPhone's `?key=`, a SurVo's answers sent by
# GET), every `=` value (a raw space in a query leaves its tail outside the
# `?...` run; gunicorn's own `ip=` is kept), and the headers that carry
# credentials. A quoted request line has a space before its version.
_QUERY = re.compile(r"\?\S+")
_VALUE = re.compile(r"(?<!\bip)=[^\s&;'\"\\]+")
# A credential header, from its name to the end of its line: a line break, one
# quoted by repr() (`\r`, `\n`: a buffer's next header), or the end of the
# text. Its name counts after a colon anywhere, and with or without one where a
# line or quoted text starts (gunicorn quotes a header line with no colon whole).
# Any other escape (`\x85`, `\\`, `\'`) is part of the value.
_CREDENTIAL_NAME = r"(?:proxy-)?authorization|cookie"
_CREDENTIAL_HEADER = re.compile(
    rf"(?i)(?:(?:^|(?<=['\"\r\n])|(?<=\\[rn]))[ \t]*(?:{_CREDENTIAL_NAME})[ \t]*:?"
    rf"|\b(?:{_CREDENTIAL_NAME})[ \t]*:)[ \t]*"
    r"(?P<value>(?:\\[^rn\r\n]|[^\\\r\n])*)"
)
# What closes the quoted text a header line ends: kept, as it is no part of it.
_CLOSING_QUOTE = re.compile(r"['\"]\)?$")
REDACTED = "<redacted>"

# Glue's ids (calls.id, call_actions.id): integers, so safe to write anywhere.
_call_id: ContextVar[int | None] = ContextVar("glue_call_id", default=None)
_action_id: ContextVar[int | None] = ContextVar("glue_action_id", default=None)


def bind_call(call_id: int) -> None:
    """Lines logged from now on, in this request or job, are about call `call_id`."""
    _call_id.set(call_id)


def bind_action(action_id: int) -> None:
    """Lines logged from now on, in this request or job, are about call action `action_id`."""
    _action_id.set(action_id)


def clear_bindings() -> None:
    """A new request or job: nothing bound by the previous one carries over."""
    _call_id.set(None)
    _action_id.set(None)


def one_line(text: str) -> str:
    """`text` with its control characters and line separators escaped (`\\n`,
    `\\x1b`, `\\u2028`): it stays on the line it was written on."""
    return text if text.isprintable() else text.translate(_TEXT_ESCAPES)


def redact_request(text: str) -> str:
    """`text` without the query strings, `=` values and credential headers it quotes."""
    text = _CREDENTIAL_HEADER.sub(_redact_credential, text)
    text = _QUERY.sub("?" + REDACTED, text)
    return _VALUE.sub("=" + REDACTED, text)


def _redact_credential(match: re.Match[str]) -> str:
    value = match["value"]
    ends_line = match.string[match.end() : match.end() + 1] in ("", "\r", "\n")
    closing = _CLOSING_QUOTE.search(value) if ends_line else None
    kept = closing[0] if closing else ""
    if len(kept) == len(value):  # nothing after the name but its closing quote
        return match[0]
    return f"{match.string[match.start() : match.start('value')]}{REDACTED}{kept}"


class ServerMessageFilter(logging.Filter):
    """For a server's own logger, whose messages quote raw requests: no query
    string or credential in them, whatever the handler's format, and each
    record on one line, its traceback included. `colours`: the server's own
    colour sequences (werkzeug's) are left as they are."""

    def __init__(self, colours: bool = False) -> None:
        super().__init__()
        self.colours = colours

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.stack_info:
            text += "\n" + record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        # Redacted first: a line break still ends a query string there.
        text = redact_request(text)
        if self.colours:
            # Split on the colours, kept at the odd places: the rest is escaped.
            pieces = _COLOUR.split(text)
            record.msg = "".join(p if i % 2 else one_line(p) for i, p in enumerate(pieces))
        else:
            record.msg = one_line(text)
        record.args = None
        return True


def request_id() -> str:
    return str(g.get("request_id", "-"))


class ContextFilter(logging.Filter):
    """Puts the request id and the bound call on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        record.call_id = _call_id.get()
        record.action_id = _action_id.get()
        return True


class TextFormatter(logging.Formatter):
    """`time LEVEL [request-id call=N action=N] logger: message`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s [%(context)s] %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        context = [str(getattr(record, "request_id", "-"))]
        for name in ("call", "action"):
            value = getattr(record, f"{name}_id", None)
            if value is not None:
                context.append(f"{name}={value}")
        record.context = " ".join(context)
        return one_line(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ids absent from the context are null."""

    def format(self, record: logging.LogRecord) -> str:
        request = getattr(record, "request_id", "-")
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": None if request == "-" else request,
            "call_id": getattr(record, "call_id", None),
            "action_id": getattr(record, "action_id", None),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str).translate(_JSON_ESCAPES)


def make_formatter(name: str) -> logging.Formatter:
    if name not in FORMATS:
        raise ValueError(f"GLUE_LOG_FORMAT must be one of {', '.join(FORMATS)}, not {name!r}")
    return JsonFormatter() if name == "json" else TextFormatter()


def init_app(app: Flask) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(make_formatter(app.config["LOG_FORMAT"]))
    logger = logging.getLogger("app")
    logger.handlers[:] = [handler]
    logger.setLevel(app.config["LOG_LEVEL"])
    logger.propagate = False
    # werkzeug's development server (`flask run`) logs each request line, query
    # string and all. It escapes C0 and C1 in it, not U+2028 (which it decodes
    # from %E2%80%A8), logs a failed request's traceback over many lines, and
    # colours its lines with escape sequences of its own: those are left alone.
    server_log = logging.getLogger("werkzeug")
    if not any(isinstance(f, ServerMessageFilter) for f in server_log.filters):
        server_log.addFilter(ServerMessageFilter(colours=True))  # the process's logger

    @app.before_request
    def assign_request_id() -> None:
        clear_bindings()  # a worker thread serves many requests, one after another
        # Keep a proxy's id when it is safe to echo; otherwise make our own.
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _SAFE_ID.match(given) else uuid.uuid4().hex

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        response.headers["X-Request-ID"] = request_id()
        return response

    @app.teardown_request
    def forget_bindings(_exc: BaseException | None) -> None:
        clear_bindings()  # nor into whatever the thread runs next (a command, a test)
