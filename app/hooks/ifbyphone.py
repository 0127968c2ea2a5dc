"""IfbyPhone SurVo web hook: `/ifbyphone/<flow>` by GET, POST or PUT."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException

from app.db import get_session
from app.dialects import ifbyphone
from app.dialects.base import Cursor, MalformedRequest, Rendered
from app.dialects.steps import Step
from app.directory.pins import get_hasher
from app.flows.model import Flow
from app.flows.registry import get_flow
from app.flows.runner import TurnRunner, fallback_reply
from app.hooks.auth import forbidden, has_secret
from app.logs import request_id
from app.verification.lockout import LockoutPolicy
from app.verification.service import Verifier

bp = Blueprint("ifbyphone", __name__, url_prefix="/ifbyphone")
log = logging.getLogger(__name__)


@bp.before_request
def authenticate() -> Response | None:
    """Every IfbyPhone route needs the IfbyPhone shared secret."""
    if not has_secret(current_app.config["IFBYPHONE_SECRET"]):
        log.warning("IfbyPhone request refused: missing or wrong secret")
        return forbidden()
    return None


@bp.route("/<flow_name>", methods=["GET", "POST", "PUT"])
def survo_result(flow_name: str) -> Response:
    """Answer a SurVo result with the next building block."""
    flow = get_flow(flow_name)
    values = request.values.to_dict(flat=True)
    try:
        if flow is None:
            raise MalformedRequest(f"unknown flow {flow_name[:64]!r}")
        turn = ifbyphone.parse(values, current_app.config["MAX_FIELD_LENGTH"])
        reply = _runner().take_turn(flow, turn, _renderer(flow))
    except MalformedRequest as exc:
        log.warning("IfbyPhone request is not a turn of a call: %s", exc)
        reply = _keep_malformed(flow, values, str(exc))
    except Exception:
        # The caller still hears the flow's apology; the log keeps the request id.
        log.exception("IfbyPhone turn failed; answered with the flow's fallback")
        get_session().rollback()
        reply = _fallback(flow, values)
    return _xml(reply)


def _keep_malformed(flow: Flow | None, values: dict[str, str], why: str) -> bytes:
    reply = _fallback(flow, values)
    try:
        return _runner().record_malformed(
            ifbyphone.NAME, flow, values, ifbyphone.PLATFORM_FIELDS, reply, why
        )
    except Exception:
        log.exception("could not store a malformed IfbyPhone request")
        get_session().rollback()
        return reply


def _fallback(flow: Flow | None, values: dict[str, str]) -> bytes:
    """The flow's error steps, or a bare hang-up when there is no usable flow."""
    if flow is None:
        return ifbyphone.render_hangup()
    try:
        pass_through = ifbyphone.decode_pass_through(values.get("p_t", ""))
        return fallback_reply(flow, pass_through, _renderer(flow))
    except Exception:
        log.exception("flow %s has no usable fallback; hanging up", flow.name)
        return ifbyphone.render_hangup()


@bp.app_errorhandler(HTTPException)
def platform_error(exc: HTTPException) -> Response | HTTPException:
    """Errors on IfbyPhone routes (405, 413, ...) still answer well-formed XML."""
    if not request.path.startswith(bp.url_prefix or ""):
        return exc
    if exc.code == 403:
        return forbidden()
    return _xml(ifbyphone.render_hangup(), status=exc.code or 500)


def _renderer(flow: Flow) -> Callable[[Sequence[Step], Cursor], Rendered]:
    block = flow.platform(ifbyphone.NAME)
    return lambda steps, cursor: ifbyphone.render(steps, block, cursor)


def _runner() -> TurnRunner:
    config = current_app.config
    session = get_session()
    verifier = Verifier(
        session, get_hasher(), LockoutPolicy.from_config(config), config["DEFAULT_REGION"]
    )
    return TurnRunner(
        session,
        verifier,
        secret=config["SECRET_KEY"],
        request_id=request_id(),
        max_length=config["MAX_FIELD_LENGTH"],
        platform_fields=ifbyphone.PLATFORM_FIELDS,
        region=config["DEFAULT_REGION"],
    )


def _xml(body: bytes, status: int = 200) -> Response:
    return Response(body, status=status, content_type=ifbyphone.CONTENT_TYPE)
