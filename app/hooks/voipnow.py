"""VoipNow Call Interactive web hook: `/voipnow/<flow>/dial-in`, `dial-out`, `hangup`.

Each IVR "CallAPI interactive" action names one of these URLs for one event, by
GET or POST. Dial-In and Dial-Out are turns of the flow; Hangup only closes the
call's record, and VoipNow ignores its answer.
"""

from __future__ import annotations

import logging

from flask import Response, current_app

from app.db import rollback_connection
from app.dialects import voipnow
from app.dialects.base import Dialect
from app.flows.registry import get_flow
from app.flows.runner import log_not_stored, masked
from app.flows.statuses import StatusReport
from app.hooks.fields import sent_fields
from app.hooks.platform import answer, platform_blueprint, shared_secret, store_status, xml
from app.logs import request_id
from app.neutral.turn import MAX_CALL_ID

DIALECT: Dialect = voipnow  # mypy checks the module against the protocol
AUTHENTICATE = shared_secret("VOIPNOW_SECRET")
bp = platform_blueprint(DIALECT, AUTHENTICATE)

log = logging.getLogger(__name__)


@bp.route("/<flow_name>/dial-in", methods=["GET", "POST"])
@bp.route("/<flow_name>/dial-out", methods=["GET", "POST"])
def call_event(flow_name: str) -> Response:
    """Answer a Dial-In or Dial-Out event with the flow's next verbs."""
    return answer(DIALECT, flow_name)


@bp.route("/<flow_name>/hangup", methods=["GET", "POST"])
def hangup(flow_name: str) -> Response:
    """Record a Hangup event against the call; always answer an empty <Response/>."""
    config = current_app.config
    values = sent_fields()
    call_id = values.get("CallID", "").strip()
    if not call_id or len(call_id) > MAX_CALL_ID:
        log.warning("voipnow hang-up without a usable CallID: not recorded")
        return xml(DIALECT, voipnow.render_empty())
    status = values.get("CallStatus", "").strip().upper()
    caller = values.get("CallerIDNum", "")
    report = StatusReport(
        platform=voipnow.NAME,
        call_id=call_id,
        # A hang-up ends the call whatever its status says; the raw one is kept.
        status=voipnow.HANGUP_STATUSES.get(status, "completed"),
        leg="",
        caller=None if caller in voipnow.UNSET else caller,
    )
    kept = masked(values, get_flow(flow_name), voipnow.PLATFORM_FIELDS, config["MAX_FIELD_LENGTH"])
    try:
        if not store_status(report, kept):
            log.info("duplicate voipnow hang-up of call %s ignored", call_id)
    except Exception:
        # VoipNow ignores the answer, but the IVR must not wait on an error page.
        log.exception("could not record the voipnow hang-up of call %s", call_id)
        rollback_connection()
        lost = masked(values, None, voipnow.PLATFORM_FIELDS, config["MAX_FIELD_LENGTH"])
        log_not_stored(voipnow.NAME, "hangup", flow_name, request_id(), lost)
    return xml(DIALECT, voipnow.render_empty())
