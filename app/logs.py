"""Logging: every line names its request and, once known, the call it is about.

GLUE_LOG_FORMAT=text (the default) writes one readable line per event;
GLUE_LOG_FORMAT=json writes one JSON object per line for a log collector.

The call is bound in a context variable (`bind_call`, `bind_action`), so the
flow runner, the status callbacks and the jobs name it once, without importing
Flask, and every later line of that request or job carries it. Only ids are
bound, never request fields: a line can carry no PIN it was not given.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

from flask import Flask, Response, g, has_request_context, request

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
FORMATS = ("text", "json")

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
        return super().format(record)


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
        return json.dumps(entry, ensure_ascii=False, default=str)


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
