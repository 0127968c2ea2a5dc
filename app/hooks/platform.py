"""What every platform blueprint shares: authentication, the runner, XML replies."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from app.db import get_session
from app.dialects.base import Dialect
from app.directory.pins import get_hasher
from app.flows.registry import get_flow
from app.flows.runner import TurnRunner
from app.hooks.auth import forbidden, has_secret
from app.logs import request_id
from app.verification.lockout import LockoutPolicy
from app.verification.service import Verifier

log = logging.getLogger(__name__)


def platform_blueprint(dialect: Dialect, secret_key: str) -> Blueprint:
    """A blueprint at /<platform> whose every route needs the platform's secret."""
    bp = Blueprint(dialect.NAME, __name__, url_prefix=f"/{dialect.NAME}")

    @bp.before_request
    def authenticate() -> Response | None:
        if not has_secret(current_app.config[secret_key]):
            log.warning("%s request refused: missing or wrong secret", dialect.NAME)
            return forbidden()
        return None

    return bp


def register(app: Flask, bp: Blueprint, dialect: Dialect, secret_key: str) -> None:
    """Mount a platform's blueprint; its errors answer in its XML."""
    app.register_blueprint(bp)
    prefixes: dict[str, tuple[Dialect, str]] = app.extensions.setdefault("glue.platforms", {})
    prefixes[f"{bp.url_prefix}/"] = (dialect, secret_key)
    if len(prefixes) == 1:
        app.register_error_handler(HTTPException, _platform_error)


def _platform_error(exc: HTTPException) -> Response | HTTPException:
    """Errors on platform routes (404, 405, 413, ...) answer XML, once authenticated."""
    for prefix, (dialect, secret_key) in current_app.extensions["glue.platforms"].items():
        if request.path.startswith(prefix):
            if exc.code == 403 or not has_secret(current_app.config[secret_key]):
                return forbidden()
            return xml(dialect, dialect.render_hangup(), status=exc.code or 500)
    return exc


def turn_runner() -> TurnRunner:
    """A runner over this request's database session and the app's settings."""
    config = current_app.config
    session = get_session()
    verifier = Verifier(
        session, get_hasher(), LockoutPolicy.from_config(config), config["DEFAULT_REGION"]
    )
    return TurnRunner(
        session,
        verifier,
        flows=get_flow,
        secret=config["SECRET_KEY"],
        request_id=request_id(),
        max_length=config["MAX_FIELD_LENGTH"],
        region=config["DEFAULT_REGION"],
    )


def answer(dialect: Dialect, flow_name: str) -> Response:
    """Run the request's turn of `flow_name` and answer in the platform's XML."""
    values = request.values.to_dict(flat=True)
    return xml(dialect, turn_runner().answer(dialect, flow_name, values))


def xml(dialect: Dialect, body: bytes, status: int = 200) -> Response:
    return Response(body, status=status, content_type=dialect.CONTENT_TYPE)
