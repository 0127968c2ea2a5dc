"""DIDforSale voice web hook: `/didml/<flow>`, authenticated by a shared secret."""

from __future__ import annotations

from flask import Response

from app.dialects.base import Dialect
from app.dialects.didml import DIDML
from app.hooks.platform import answer, platform_blueprint, shared_secret

DIALECT: Dialect = DIDML
AUTHENTICATE = shared_secret("DIDML_SECRET")
bp = platform_blueprint(DIALECT, AUTHENTICATE)


@bp.route("/<flow_name>", methods=["GET", "POST"])
def voice(flow_name: str) -> Response:
    """Answer a call's request with the didML of its next steps."""
    return answer(DIALECT, flow_name)
