"""IfbyPhone SurVo web hook: `/ifbyphone/<flow>` by GET, POST or PUT."""

from __future__ import annotations

from flask import Response

from app.dialects import ifbyphone
from app.dialects.base import Dialect
from app.hooks.platform import answer, platform_blueprint, shared_secret

DIALECT: Dialect = ifbyphone  # mypy checks the module against the protocol
AUTHENTICATE = shared_secret("IFBYPHONE_SECRET")
bp = platform_blueprint(DIALECT, AUTHENTICATE)


@bp.route("/<flow_name>", methods=["GET", "POST", "PUT"])
def survo_result(flow_name: str) -> Response:
    """Answer a SurVo result with the next building block."""
    return answer(DIALECT, flow_name)
