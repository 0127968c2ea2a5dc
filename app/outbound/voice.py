"""The voice document a verification call fetches: it reads the code, once.

Served only at the one-time code's secret token, which only the provider of
that call is given; a second fetch, an expired or used code, or a wrong token
all get the same bare hang-up, so the URL shows nothing to anyone else.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from lxml import etree
from werkzeug.exceptions import HTTPException

from app.db import get_session
from app.dialects.didml import DIDML
from app.directory.pins import get_hasher
from app.outbound import codes

bp = Blueprint("voice", __name__, url_prefix="/calls/voice")


@bp.route("/<int:code_id>/<token>", methods=["GET", "POST"])
def code_document(code_id: int, token: str) -> Response:
    """didML reading a one-time code digit by digit (twice), then hanging up."""
    session = get_session()
    code = codes.read_once(session, get_hasher(), code_id, token[:64])
    session.commit()
    response = etree.Element("Response")
    if code is not None:
        spaced = " ".join(code)
        voice = current_app.config["VOICE_CODE_MESSAGE"]
        for _ in range(2):
            etree.SubElement(response, "Say").text = voice.format(code=spaced)
            DIDML.add_pause(response, 1)  # only DIDforSale calls fetch a voice document
    etree.SubElement(response, "Hangup")
    return _xml(response)


def http_error(exc: HTTPException) -> Response:
    """Errors under /calls/voice/ (400, 404, 405, 413): the same bare hang-up, in voice XML."""
    response = etree.Element("Response")
    etree.SubElement(response, "Hangup")
    return _xml(response, exc.code or 500)


def _xml(response: etree._Element, status: int = 200) -> Response:
    body = etree.tostring(response, xml_declaration=True, encoding="utf-8")
    return Response(body, status=status, content_type="text/xml; charset=utf-8")
