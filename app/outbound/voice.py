"""The voice documents the calls Glue places fetch once the user answers.

- A verification call's reads the code, once. Served only at the one-time
  code's secret token, which only the provider of that call is given; a second
  fetch, an expired or used code, or a wrong token all get the same bare
  hang-up, so the URL shows nothing to anyone else.
- A click-to-call's (Twilio, the sandbox) dials the second party: TwiML
  `<Dial><Number>`, at a token derived from the call's id with the server's
  key, while the call is under way; otherwise the same bare hang-up.

Written in didML, or TwiML for a call placed through Twilio: they differ only
in how a pause is written.
"""

from __future__ import annotations

import base64
import hmac

from flask import Blueprint, Response, current_app
from lxml import etree
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from app.db import get_session
from app.dialects.didml import DIDML
from app.dialects.twiml import TWIML
from app.directory.pins import PinHasher, get_hasher
from app.models import CallAction, OneTimeCode
from app.outbound import codes, service

bp = Blueprint("voice", __name__, url_prefix="/calls/voice")


@bp.route("/<int:code_id>/<token>", methods=["GET", "POST"])
def code_document(code_id: int, token: str) -> Response:
    """didML (TwiML for Twilio) reading a one-time code digit by digit (twice),
    then hanging up."""
    session = get_session()
    code = codes.read_once(session, get_hasher(), code_id, token[:64])
    session.commit()
    response = etree.Element("Response")
    if code is not None:
        provider = session.scalar(
            select(CallAction.provider)
            .join(OneTimeCode, OneTimeCode.action_id == CallAction.id)
            .where(OneTimeCode.id == code_id)
        )
        dialect = TWIML if provider == "twilio" else DIDML
        spaced = " ".join(code)
        voice = current_app.config["VOICE_CODE_MESSAGE"]
        for _ in range(2):
            etree.SubElement(response, "Say").text = voice.format(code=spaced)
            dialect.add_pause(response, 1)
    etree.SubElement(response, "Hangup")
    return _xml(response)


@bp.route("/dial/<int:action_id>/<token>", methods=["GET", "POST"])
def dial_document(action_id: int, token: str) -> Response:
    """TwiML connecting the answered first leg to the call's second party."""
    session = get_session()
    action = session.get(CallAction, action_id)
    response = etree.Element("Response")
    if (
        action is not None
        and hmac.compare_digest(token[:64].encode(), dial_token(get_hasher(), action_id).encode())
        and action.purpose == "connect"
        and action.to_number
        and not service.is_final(action)
    ):
        dial = etree.SubElement(response, "Dial")
        etree.SubElement(dial, "Number").text = action.to_number
    else:
        etree.SubElement(response, "Hangup")
    session.rollback()
    return _xml(response)


def dial_token(hasher: PinHasher, action_id: int) -> str:
    """The secret part of a call's dial document URL."""
    digest = hasher.derive("dial", str(action_id))
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def http_error(exc: HTTPException) -> Response:
    """Errors under /calls/voice/ (400, 404, 405, 413): the same bare hang-up, in voice XML."""
    response = etree.Element("Response")
    etree.SubElement(response, "Hangup")
    return _xml(response, exc.code or 500)


def _xml(response: etree._Element, status: int = 200) -> Response:
    body = etree.tostring(response, xml_declaration=True, encoding="utf-8")
    return Response(body, status=status, content_type="text/xml; charset=utf-8")
