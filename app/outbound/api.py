"""JSON API for host applications that embed a Call button.

Authenticated by `Authorization: Bearer <token>` (`flask api-tokens create`).
Every error is JSON: `{"error": "<code>", "message": "<what went wrong>"}`.
The requests that place a call take an `Idempotency-Key` (see `idempotent`) and
count against the call limits (a 429 with `Retry-After` beyond them).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from app.auth import tokens
from app.db import get_session
from app.directory.pins import get_hasher
from app.models import CallAction, User
from app.outbound import codes, idempotency, jobs, service
from app.outbound.destinations import DestinationPolicy
from app.rate_limits import get_call_limits

bp = Blueprint("api", __name__, url_prefix="/api/v1")
log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.retry_after = retry_after


@bp.errorhandler(ApiError)
def api_error(exc: ApiError) -> Response:
    if exc.retry_after is None:
        response = jsonify(error=exc.code, message=exc.message)
    else:
        response = jsonify(error=exc.code, message=exc.message, retry_after=exc.retry_after)
        response.headers["Retry-After"] = str(exc.retry_after)
    response.status_code = exc.status
    return response


def http_error(exc: HTTPException) -> Response:
    """Every HTTP error under /api/ (405, 413, ...) as JSON (see app.web.http_errors)."""
    code = (exc.name or "error").lower().replace(" ", "_")
    response = jsonify(error=code, message=exc.description)
    response.status_code = exc.code or 500
    return response


@bp.before_request
def authenticate() -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    found = tokens.authenticate(get_session(), token.strip()) if scheme == "Bearer" else None
    if found is None:
        raise ApiError(401, "unauthorized", "a valid Bearer token is required")
    g.api_token = found
    get_session().commit()  # the token's last_used_at, even if the request fails


def idempotent(view: Callable[..., Any]) -> Callable[..., Response]:
    """With an `Idempotency-Key`, the same request again (per token, for 24
    hours) gets the first answer and does nothing; the key with another request
    is a 422. An answer under 500 is kept, but a 429 (a later retry may pass)."""

    @functools.wraps(view)
    def answer(*args: Any, **kwargs: Any) -> Response:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return current_app.make_response(view(*args, **kwargs))
        if not idempotency.KEY_PATTERN.fullmatch(key):
            raise ApiError(
                400, "invalid_idempotency_key", "Idempotency-Key: 1-255 visible ASCII characters"
            )
        session = get_session()
        digest = idempotency.request_hash(request.method, request.path, request.get_data())
        claim = idempotency.claim(session, g.api_token.id, key, digest)
        if claim == "other_request":
            raise ApiError(
                422, "idempotency_key_reused", "this Idempotency-Key came with another request"
            )
        if claim == "in_progress":
            raise ApiError(
                409,
                "idempotency_key_in_progress",
                "the first request with this Idempotency-Key is still being answered",
                retry_after=1,
            )
        if isinstance(claim, idempotency.Replay):
            response = jsonify(claim.body)
            response.status_code = claim.status
            response.headers["Idempotent-Replayed"] = "true"
            return response
        try:
            response = current_app.make_response(view(*args, **kwargs))
        except ApiError as exc:
            response = api_error(exc)
        except BaseException:
            idempotency.release(session, claim)
            raise
        if response.status_code >= 500 or response.status_code == 429:
            idempotency.release(session, claim)
        else:
            idempotency.finish(session, claim, response.status_code, response.get_json())
        return response

    return answer


def _within_limits(user: User, code: bool = False) -> None:
    """Count a call against the limits, or refuse it (a 429, nothing placed)."""
    breach = get_call_limits().hit(user.account_number, str(g.api_token.id), code=code)
    if breach is None:
        return
    get_session().rollback()
    whose = {
        "user": f"calls for user {user.account_number}",
        "token": "calls by this token",
        "code": f"code calls to user {user.account_number}",
    }[breach.scope]
    raise ApiError(
        429,
        "too_many_calls",
        f"too many {whose} (limit {breach.limit}): retry in {breach.retry_after} s",
        retry_after=breach.retry_after,
    )


@bp.post("/calls")
@idempotent
def start_call() -> tuple[Response, int]:
    """Start a call for a user: {"user": ACCOUNT, "target": {"kind", "value"}},
    and "at" (ISO 8601 with an offset) to place it then rather than now."""
    body = _json()
    session = get_session()
    user = _user(str(body.get("user", "")))
    target = body.get("target")
    if not isinstance(target, dict):
        raise ApiError(400, "invalid_target", "target must be an object with kind and value")
    config = current_app.config
    at = None
    if body.get("at") is not None:
        try:
            at = service.schedule_time(
                body["at"], datetime.now(UTC), config["CALL_SCHEDULE_MAX_DAYS"]
            )
        except service.CallError as exc:
            raise ApiError(400, "invalid_at", str(exc)) from None
    try:
        resolved = service.resolve_target(
            session,
            str(target.get("kind", "")),
            None if target.get("value") is None else str(target.get("value")),
            originator=config["ORIGINATOR_NUMBER"],
            region=config["DEFAULT_REGION"],
        )
        action = service.record_call(
            session,
            user,
            resolved,
            config["CALL_PROVIDER"],
            via="api",
            policy=_policy(),
            at=at,
        )
        action.api_token_id = g.api_token.id
        if not service.is_refused(action):  # counted only for a call to be placed
            _within_limits(user)
    except service.NeedsPhone as exc:
        raise ApiError(409, "needs_phone", f"user {user.account_number} has {exc}") from None
    except service.CallError as exc:
        raise ApiError(400, "invalid_target", str(exc)) from None
    session.commit()
    if service.is_refused(action):
        return _refused(action)
    log.info("API token %s started call action %s", g.api_token.name, action.id)
    jobs.enqueue(session, action)
    return jsonify(service.action_view(action)), 202


@bp.get("/calls/<int:action_id>")
def call_status(action_id: int) -> Response:
    """A call's status and the status callbacks received so far (calls this
    token started only: any other looks like none at all)."""
    action = get_session().get(CallAction, action_id)
    if action is None or action.api_token_id != g.api_token.id:
        raise ApiError(404, "not_found", f"no call {action_id}")
    return jsonify(service.action_view(action))


@bp.delete("/calls/<int:action_id>")
def cancel_call(action_id: int) -> Response:
    """Cancel a call this token started: withdrawn if not yet sent, else the
    provider is asked to end it. 409 if it has ended, or cannot be ended."""
    session = get_session()
    action = session.get(CallAction, action_id)
    if action is None or action.api_token_id != g.api_token.id:
        raise ApiError(404, "not_found", f"no call {action_id}")
    by = f"api token {g.api_token.name}"
    outcome, action = service.cancel(session, action_id, by, current_app.config)
    log.info("API token %s: cancel of call action %s: %s", g.api_token.name, action_id, outcome)
    if outcome == "final":
        raise ApiError(409, "already_final", f"call {action_id} has ended ({action.status})")
    if outcome == "not_cancelled":
        raise ApiError(409, "cannot_cancel", action.cancel_result or "the call was not ended")
    return jsonify(service.action_view(action))


@bp.put("/users/<account>/phone")
def set_phone(account: str) -> Response:
    """Set the phone rung first for a user (the host application collected it):
    {"number": ...}. It replaces the one on file, and is not confirmed."""
    number = _json().get("number")
    if not isinstance(number, str):
        raise ApiError(400, "invalid_number", "number must be a string")
    session = get_session()
    user = _user(account)
    try:
        e164 = service.set_phone(
            session, user, number, current_app.config["DEFAULT_REGION"], policy=_policy()
        )
    except service.DestinationRefused as exc:
        raise ApiError(422, "destination_refused", str(exc)) from None
    except service.CallError as exc:
        raise ApiError(400, "invalid_number", str(exc)) from None
    session.commit()
    return jsonify(user=user.account_number, phone=e164)


@bp.post("/users/<account>/verifications")
@idempotent
def start_verification(account: str) -> tuple[Response, int]:
    """Call the user to verify them: {"method": "code"} reads a one-time code to
    their phone on file; {"method": "survo"} runs the verification SurVo."""
    method = _json().get("method")
    if method not in ("code", "survo"):
        raise ApiError(400, "invalid_method", "method must be code or survo")
    session = get_session()
    user = _user(account)
    if not user.phones:
        raise ApiError(409, "needs_phone", f"user {user.account_number} has no phone on file")
    config = current_app.config
    phone = user.phones[0].e164
    if method == "survo":
        action = service.record_verification_call(
            session, user, phone, "ifbyphone", "api", "verify_survo", policy=_policy()
        )
        action.api_token_id = g.api_token.id
        if service.is_refused(action):
            session.commit()
            return _refused(action)
        _within_limits(user)  # counted only for a call to be placed
        session.commit()
        jobs.enqueue(session, action)
        return jsonify(call=service.action_view(action)), 202
    action = service.record_verification_call(
        session, user, phone, config["VERIFY_PROVIDER"], "api", "verify_phone", policy=_policy()
    )
    action.api_token_id = g.api_token.id
    if service.is_refused(action):
        session.commit()
        return _refused(action)
    _within_limits(user, code=True)  # counted only for a call to be placed
    session.flush()
    issued = codes.issue(session, get_hasher(), user, phone, action)
    session.commit()
    jobs.enqueue(session, action)
    return jsonify(id=issued.record.id, call=service.action_view(action)), 202


@bp.post("/users/<account>/verifications/<int:code_id>")
@idempotent
def check_code(account: str, code_id: int) -> Response:
    """The code the user typed into the host application: {"code": "482913"}."""
    typed = _json().get("code")
    if not isinstance(typed, str):
        raise ApiError(400, "invalid_code", "code must be a string")
    session = get_session()
    outcome = codes.check(session, get_hasher(), _user(account), code_id, typed)
    session.commit()
    if outcome != "confirmed":
        status = {"wrong": 422, "unknown": 404}.get(outcome, 410)
        raise ApiError(status, outcome, f"the code is {outcome}")
    return jsonify(outcome=outcome)


def _policy() -> DestinationPolicy:
    return DestinationPolicy.from_config(current_app.config)


def _refused(action: CallAction) -> tuple[Response, int]:
    """A call the destination policy refused: recorded, never sent."""
    log.info("API token %s: call action %s refused: %s", g.api_token.name, action.id, action.detail)
    view = service.action_view(action)
    return jsonify(error="destination_refused", message=action.detail, call=view), 422


def _json() -> dict[str, Any]:
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested deeper than Python's json reads ([[[[...)
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    if _holds_nul(body):  # PostgreSQL text cannot hold it (see app.web.request_limits)
        raise ApiError(400, "invalid_json", "text may not contain NUL characters")
    return body


def _holds_nul(document: Any) -> bool:
    # Iterative: the document may be nested nearly as deep as the stack allows.
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, str) and "\x00" in item:
            return True
        if isinstance(item, dict):
            pending += [*item.keys(), *item.values()]
        elif isinstance(item, list):
            pending += item
    return False


def _user(account: str) -> User:
    user = get_session().scalar(select(User).where(User.account_number == account))
    if user is None or not user.active:
        raise ApiError(404, "unknown_user", f"no active user {account[:32]}")
    return user
