"""What every platform blueprint shares: authentication, the runner, XML replies."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import lru_cache
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException
from werkzeug.sansio.utils import get_current_url

from app.db import get_connection, session_on
from app.dialects.base import Dialect
from app.directory.pins import get_hasher
from app.flows.registry import get_flow, get_flow_version
from app.flows.runner import Kept, TurnRunner, read_turn, shed
from app.flows.statuses import StatusReport, record_status
from app.hooks.auth import forbidden, has_secret
from app.hooks.fields import sent_fields
from app.logs import request_id
from app.neutral.phones import try_e164
from app.neutral.turn import MalformedRequest, Turn
from app.rate_limits import Breach, get_limits
from app.verification.lockout import LockoutPolicy
from app.verification.service import Verifier
from app.web import http_errors, queue_wait

log = logging.getLogger(__name__)


Authenticator = Callable[[], bool]


def shared_secret(config_key: str) -> Authenticator:
    """Authenticate by the secret in `config_key` (`?key=` or HTTP Basic)."""
    return lambda: has_secret(current_app.config[config_key])


def platform_blueprint(dialect: Dialect, authenticate: Authenticator) -> Blueprint:
    """A blueprint at /<platform> whose every route must pass `authenticate`."""
    bp = Blueprint(dialect.NAME, __name__, url_prefix=f"/{dialect.NAME}")

    @bp.before_request
    def require_authentication() -> Response | None:
        if not authenticate():
            log.warning("%s request refused: not authenticated", dialect.NAME)
            return forbidden()
        return None

    return bp


def register(app: Flask, bp: Blueprint, dialect: Dialect, authenticate: Authenticator) -> None:
    """Mount a platform's blueprint; its errors (404, 405, 413, ...) answer in
    its XML, to an authenticated request only."""
    app.register_blueprint(bp)

    def platform_error(exc: HTTPException) -> Response:
        if exc.code == 403 or not authenticate():
            return forbidden()
        return xml(dialect, dialect.render_hangup(), status=exc.code or 500)

    http_errors.register(app, f"{bp.url_prefix}/", platform_error)


def public_url() -> str:
    """This request's URL as the platform sees it, without its query string.

    Behind a proxy the app sees its own address: GLUE_PUBLIC_URL names the
    public one (https://glue.example.com), so callback URLs and Twilio
    signatures use what the platform used.
    """
    base = current_app.config["PUBLIC_URL"].rstrip("/")
    if base:
        return f"{base}{request.path}"
    return _base_url(request.scheme, request.host, request.root_path, request.path)


@lru_cache(maxsize=256)
def _base_url(scheme: str, host: str, root_path: str, path: str) -> str:
    """werkzeug's `request.base_url`, made once per address: platforms post every
    turn of every call to the same few, and making it quotes and decodes each part."""
    return get_current_url(scheme, host, root_path, path)


def callback_url() -> str:
    """Where the platform should send this call's next request: this URL, with
    the `key` it authenticated with (platforms repeat a URL's query verbatim)."""
    url = public_url()
    if "key" in request.args:
        url = f"{url}?{urlencode({'key': request.args['key']})}"
    return url


def turn_runner(started: float | None = None) -> TurnRunner:
    """A runner over this request's database connection and the app's settings;
    `started` (time.perf_counter()) times the request in its stored event."""
    config = current_app.config
    hasher, policy = get_hasher(), LockoutPolicy.from_config(config)
    return TurnRunner(
        get_connection,
        lambda connection: Verifier(connection, hasher, policy, config["DEFAULT_REGION"]),
        session_on,
        flows=get_flow,
        secret=config["SECRET_KEY"],
        request_id=request_id(),
        max_length=config["MAX_FIELD_LENGTH"],
        region=config["DEFAULT_REGION"],
        versions=get_flow_version,
        started=started,
    )


def answer(dialect: Dialect, flow_name: str) -> Response:
    """Run the request's turn of `flow_name` and answer in the platform's XML."""
    started = time.perf_counter()
    values = sent_fields()
    limit = current_app.config["MAX_FIELD_LENGTH"]
    standing = current_app.extensions[queue_wait.EXTENSION]
    waited = queue_wait.too_late(request.environ, current_app.config, standing, dialect.NAME)
    if waited is not None:
        reply = shed(
            dialect,
            get_flow(flow_name),
            values,
            flow_name=flow_name,
            url=callback_url(),
            waited=waited,
            request_id=request_id(),
            max_length=limit,
        )
        return xml(dialect, reply)
    turn = read_turn(dialect, values, limit)
    breach = get_limits().hit(request.remote_addr or "-", caller_key(turn))
    if breach is not None:
        return refuse(dialect, flow_name, breach)
    reply = turn_runner(started).answer(dialect, flow_name, values, turn, callback_url())
    return xml(dialect, reply)


def store_status(report: StatusReport, kept: Kept, started: float | None = None) -> bool:
    """Keep a status report once, on this request's connection (`record_status`);
    False for a copy of one kept before."""
    return record_status(
        get_connection(),
        session_on,
        report,
        kept,
        secret=current_app.config["SECRET_KEY"],
        request_id=request_id(),
        started=started,
    )


def caller_key(turn: Turn | MalformedRequest) -> str | None:
    """The caller's number as rate limits count it; None when the request names no call."""
    if isinstance(turn, MalformedRequest):
        return None
    if not turn.caller:
        return "withheld"  # all withheld numbers share one allowance
    return try_e164(turn.caller, current_app.config["DEFAULT_REGION"]) or turn.caller


def refuse(dialect: Dialect, flow_name: str, breach: Breach) -> Response:
    """A hang-up, with 200: platforms obey a 200's XML, whereas on an error status
    they play their own message or call their fallback URL, which is Glue again."""
    log.warning(
        "%s request for %s refused: over the per-%s limit %s",
        dialect.NAME,
        flow_name[:64],
        breach.scope,
        breach.limit,
    )
    response = xml(dialect, dialect.render_hangup())
    response.headers["Retry-After"] = str(breach.retry_after)
    return response


def xml(dialect: Dialect, body: bytes, status: int = 200) -> Response:
    return Response(body, status=status, content_type=dialect.CONTENT_TYPE)
