"""Status callbacks: DIDforSale's `/didml/status` and Twilio's `/twiml/status`.

Separate blueprints from the flows' ones at the same prefixes. Each callback is
authenticated first (fail closed, bare 403), read into a StatusReport and kept
once by app.flows.statuses; the platforms ignore the body, so the answer is a
204 whether the report is new or a retried delivery.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from flask import Blueprint, Flask, Response, current_app
from werkzeug.exceptions import HTTPException

from app.db import rollback_connection
from app.flows.runner import log_not_stored, masked
from app.flows.statuses import RANK, StatusReport
from app.hooks.auth import forbidden, has_field_secret, has_secret
from app.hooks.fields import sent_fields
from app.hooks.platform import store_status
from app.hooks.twilio_signature import twilio_signature
from app.logs import request_id
from app.neutral.turn import MAX_CALL_ID, MAX_ID, read_number

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallbackFields:
    """Where a platform's status callback puts each part of a report."""

    platform: str
    call_id: tuple[str, ...]
    duration: tuple[str, ...]
    recording_url: tuple[str, ...]
    # Stored as sent; any other field is masked (nobody knows what it holds).
    known: frozenset[str]


DIDML = CallbackFields(
    platform="didml",
    call_id=("callSid", "CallSid"),  # DIDforSale writes callSid, TwiML CallSid
    duration=("CallDuration", "CallDurartion"),  # DIDforSale may send it misspelled
    recording_url=("RecordingURL", "RecordingUrl"),
    known=frozenset(
        {
            "Called",
            "ParentCallSid",
            "CallStatus",
            "Direction",
            "callSid",
            "CallSid",
            "CallbackSource",
            "CallDuration",
            "CallDurartion",
            "RecordingURL",
            "RecordingUrl",
            "From",
            "To",
            "optional",  # the token given to the call API, echoed back
        }
    ),
)
TWIML = CallbackFields(
    platform="twiml",
    call_id=("CallSid",),
    duration=("CallDuration",),
    recording_url=("RecordingUrl",),
    known=frozenset(
        {
            "CallSid",
            "ParentCallSid",
            "CallStatus",
            "CallDuration",
            "RecordingUrl",
            "Direction",
            "From",
            "To",
            # Twilio's standard request fields: identifiers and numbers, no secrets.
            "AccountSid",
            "ApiVersion",
            "Called",
            "Caller",
            "CallbackSource",
            "SequenceNumber",
            "Timestamp",
        }
    ),
)


class NotAReport(ValueError):
    """The callback cannot be read as a status report."""


def read_report(fields: CallbackFields, values: Mapping[str, str]) -> StatusReport:
    """The report a callback's fields describe; NotAReport says what is wrong."""
    call_id = _first(values, fields.call_id)
    if not call_id:
        raise NotAReport("missing call id")
    if len(call_id) > MAX_CALL_ID:
        raise NotAReport("call id too long")
    status = values.get("CallStatus", "").strip().lower()
    if not status:
        raise NotAReport("missing CallStatus")
    if status not in RANK:
        raise NotAReport("unknown CallStatus")
    return StatusReport(
        platform=fields.platform,
        call_id=call_id,
        status=status,
        leg=values.get("ParentCallSid", ""),
        # Both columns are INTEGER: a number past it is no duration nor id.
        duration_seconds=read_number(_first(values, fields.duration).strip(), MAX_ID),
        recording_url=_first(values, fields.recording_url) or None,
        caller=values.get("From") or None,
        # Glue's own status callback URLs name the click-to-call action; any other
        # `action` (ids start at 1) names none, and the report is kept for the call.
        action_id=read_number(values.get("action", ""), MAX_ID) or None,
    )


def receive(fields: CallbackFields) -> Response:
    """Keep the request's status report once; 204 for a new and a repeated one alike."""
    started = time.perf_counter()
    values = sent_fields()
    try:
        report = read_report(fields, values)
    except NotAReport as exc:
        log.warning("%s status callback not stored: %s", fields.platform, exc)
        return _text(f"{exc}\n", 400)
    config = current_app.config
    kept = masked(values, None, fields.known, config["MAX_FIELD_LENGTH"])
    try:
        stored = store_status(report, kept, started)
    except Exception:
        # 500, so the platform may retry: the report is not dropped in silence.
        log.exception(
            "%s status %s of call %s not stored (request %s)",
            fields.platform,
            report.status,
            report.call_id,
            request_id(),
        )
        rollback_connection()
        log_not_stored(fields.platform, "status", "-", request_id(), kept)
        return _text("status not stored\n", 500)
    if not stored:
        log.info("repeated %s status %s of call %s", fields.platform, report.status, report.call_id)
    return Response(status=204)


def _authenticate_didml() -> bool:
    """`?key=` or Basic with GLUE_DIDML_SECRET, or the call's secretKey sent back as apikey."""
    secret = current_app.config["DIDML_SECRET"] or ""
    return has_secret(secret) or has_field_secret("apikey", secret)


_authenticate_twiml = twilio_signature("TWILIO_AUTH_TOKEN")

didml_status_bp = Blueprint("didml_status", __name__, url_prefix="/didml")
twiml_status_bp = Blueprint("twiml_status", __name__, url_prefix="/twiml")


@didml_status_bp.before_request
def _require_didml() -> Response | None:
    if _authenticate_didml():
        return None
    log.warning("didml status callback refused: not authenticated")
    return forbidden()


@twiml_status_bp.before_request
def _require_twiml() -> Response | None:
    if _authenticate_twiml():
        return None
    log.warning("twiml status callback refused: not authenticated")
    return forbidden()


@didml_status_bp.route("/status", methods=["GET", "POST"])
def didml_status() -> Response:
    """Record a DIDforSale call-progress event."""
    return receive(DIDML)


@twiml_status_bp.route("/status", methods=["POST", "GET"])
def twiml_status() -> Response:
    """Record a Twilio status callback."""
    return receive(TWIML)


def _plain_error(exc: HTTPException) -> Response:
    # Not the platform's XML: nobody reads a status callback's answer but a log.
    return _text(f"{exc.name}\n", exc.code or 500)


didml_status_bp.register_error_handler(HTTPException, _plain_error)
twiml_status_bp.register_error_handler(HTTPException, _plain_error)


def init_app(app: Flask) -> None:
    app.register_blueprint(didml_status_bp)
    app.register_blueprint(twiml_status_bp)


def _first(values: Mapping[str, str], names: tuple[str, ...]) -> str:
    return next((values[name] for name in names if values.get(name)), "")


def _text(body: str, status: int) -> Response:
    return Response(body, status=status, mimetype="text/plain")
