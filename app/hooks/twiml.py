"""Twilio voice web hook: `/twiml/<flow>`, authenticated by Twilio's signature."""

from __future__ import annotations

from flask import Response

from app.dialects.base import Dialect
from app.dialects.twiml import TWIML
from app.hooks.platform import answer, platform_blueprint
from app.hooks.twilio_signature import twilio_signature

DIALECT: Dialect = TWIML
AUTHENTICATE = twilio_signature("TWILIO_AUTH_TOKEN")
bp = platform_blueprint(DIALECT, AUTHENTICATE)


@bp.route("/<flow_name>", methods=["GET", "POST"])
def voice(flow_name: str) -> Response:
    """Answer a call's request with the TwiML of its next steps."""
    return answer(DIALECT, flow_name)
