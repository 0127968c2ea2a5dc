"""The test phone: an admin calls a flow from the browser, through the real engine
and a platform's real dialect, and nothing is stored (app/flows/trial.py).

GET /admin/flows/<name>/try is the phone beside the flow's graph; POST runs one
of the caller's turns and answers in JSON. The POST is a form (it carries the
CSRF token as every admin POST does). Where the call stands travels in a token
signed with the app's secret: the browser holds the trial, the database holds
nothing of it.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict
from typing import Any

from flask import abort, current_app, jsonify, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import generate_csrf
from itsdangerous import BadSignature, URLSafeTimedSerializer
from markupsafe import Markup

from app.admin.views import bp, current_admin, flow_name_or_404
from app.db import get_session
from app.dialects.base import Dialect
from app.dialects.registry import DIALECTS
from app.directory.pins import get_hasher
from app.flows import graph, trial, versions
from app.flows.engine import CallState
from app.flows.graph import GraphError
from app.flows.model import Flow
from app.flows.registry import current_registry
from app.rate_limits import get_limits
from app.verification.dry_run import DryRunVerifier, TrialCounts
from app.verification.lockout import LockoutPolicy
from app.verification.types import Claim, Verdict

log = logging.getLogger(__name__)

SALT = "glue.admin.test-phone"
TOKEN_SECONDS = 24 * 3600
KEYS = re.compile(r"[0-9*#]{0,64}")
MAX_CALLER = 32


class TrialError(ValueError):
    """A request the test phone cannot run: said back to the admin, status 400."""


class TrialLimited(Exception):
    """The admin's allowance of PIN checks is spent: said back with status 429."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=SALT)


def _dialect(name: str, flow: Flow) -> Dialect:
    dialect = next((d for d in DIALECTS if name == d.NAME), None)
    if dialect is None:
        raise TrialError("no such platform")
    if dialect.NEEDS_SETTINGS and not flow.platform(name):
        raise TrialError(f"the flow has no {name} block")
    return dialect


def platforms_of(flow: Flow | None) -> list[str]:
    """The platforms the flow can run on (every one, for a flow not published yet)."""
    if flow is None:
        return [d.NAME for d in DIALECTS]
    return [d.NAME for d in DIALECTS if not d.NEEDS_SETTINGS or flow.platform(d.NAME)]


def _hook_url(platform: str, name: str) -> str:
    """The platform's URL for the flow, as Glue names it in callback URLs (no key)."""
    path = f"/{platform}/{name}" + ("/dial-in" if platform == "voipnow" else "")
    base = current_app.config["PUBLIC_URL"].rstrip("/") or request.host_url.rstrip("/")
    return base + path


def _answers(raw: str) -> dict[str, str]:
    try:
        answers = json.loads(raw or "{}")
    except ValueError:
        raise TrialError("answers are not JSON") from None
    if not isinstance(answers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and KEYS.fullmatch(v) for k, v in answers.items()
    ):
        raise TrialError("answers are keys of a phone: 0-9, * and #")
    return answers


def _load(name: str, form: Any) -> tuple[Flow, str]:
    """The flow to try (a draft's source, checked, or a version) and what names it."""
    source = form.get("source")
    if source is not None:
        draft = versions.check(name, source, f"{name} (draft)")  # PublishError: its problems
        return draft, "draft:" + versions.checksum(source)
    number = form.get("version", type=int)
    found = current_registry().get_version(name, number) if number else None
    if found is None:
        raise TrialError("no such version")
    return found, f"v{number}"


@bp.get("/flows/<name>/try")
def try_flow(name: str) -> ResponseReturnValue:
    """The test phone beside the graph of a version of the flow (the published one by default)."""
    session = get_session()
    history = versions.history(session, flow_name_or_404(name))
    if not history:
        abort(404)
    number = request.args.get("version", type=int) or history[0].number
    flow = current_registry().get_version(name, number)
    if flow is None:
        abort(404)
    try:
        svg: Markup | None = Markup(graph.render(flow, "svg").decode("utf-8"))
    except GraphError as exc:
        log.error("flow %s not drawn: %s", name, exc)
        svg = None
    platform = request.args.get("platform", "")
    platforms = platforms_of(flow)
    return render_template(
        "admin/try.html",
        name=name,
        version=number,
        svg=svg,
        phone=phone_context(name, [v.number for v in history], number, platforms, platform),
    )


def phone_context(
    name: str, numbers: list[int], version: int, platforms: list[str], platform: str = ""
) -> dict[str, Any]:
    """What `admin/_test_phone.html` needs (see that template)."""
    return {
        "name": name,
        "url": url_for("admin.try_turn", name=name),
        "page": url_for("admin.try_flow", name=name),
        "versions": numbers,
        "version": version,
        "platforms": platforms,
        "platform": platform if platform in platforms else (platforms[0] if platforms else ""),
        "csrf": generate_csrf(),
    }


@bp.post("/flows/<name>/try")
def try_turn(name: str) -> ResponseReturnValue:
    """Run one of the test caller's turns; the replies, the path and the next token, in JSON."""
    flow_name_or_404(name)
    form = request.form
    try:
        flow, identity = _load(name, form)
        dialect = _dialect(form.get("platform", ""), flow)
        caller = form.get("caller", "").strip()[:MAX_CALLER] or None
        state, counts, restart = _restore(form.get("token", ""), identity, dialect.NAME)
        answers = _answers(form.get("answers", ""))
    except versions.PublishError as exc:
        return jsonify(
            error="The draft does not pass the check.", problems=[str(p) for p in exc.problems]
        ), 422
    except TrialError as exc:
        return jsonify(error=str(exc)), 400
    config = current_app.config
    verifier = DryRunVerifier(
        get_session(),
        get_hasher(),
        LockoutPolicy.from_config(config),
        counts,
        config["DEFAULT_REGION"],
    )

    admin = current_admin().account_number
    limits = get_limits()

    def verify(claim: Claim, pin: str) -> Verdict:
        # The trial's own counts travel with the client, which may drop them: each
        # check also spends the admin's allowance of the PIN routes' limits (as a
        # caller would), and is logged, so the phone is no way to guess PINs.
        breach = limits.hit(request.remote_addr or "", f"test-phone:{admin}")
        if breach is not None:
            raise TrialLimited(breach.retry_after)
        verdict = verifier.verify(claim, pin, caller)
        log.info(
            "test phone: admin %s checked %s %s: %s (%s)",
            admin,
            claim.kind,
            claim.value,
            verdict.outcome,
            verdict.reason,
        )
        return verdict

    url = _hook_url(dialect.NAME, name)
    restart = restart or bool(form.get("restart"))
    try:
        if restart:
            result = trial.begin(flow, dialect, verify, caller, url)
        else:
            result = trial.take(flow, dialect, state, answers, verify, caller, url)
    except TrialLimited as limited:
        get_session().rollback()
        wait = limited.retry_after
        answer = jsonify(error=f"Too many PIN checks from the test phone: retry in {wait} s.")
        return answer, 429, {"Retry-After": str(wait)}
    get_session().rollback()  # it only read: end the transaction now
    token = _signer().dumps(
        {
            "flow": identity,
            "platform": dialect.NAME,
            "state": result.state.to_json(),
            "counts": counts.to_json(),
        }
    )
    return jsonify(
        replies=[asdict(reply) for reply in result.replies],
        asks=[
            {"name": q.name, "prompt": q.prompt, "secret": q.secret, "max_digits": q.max_digits}
            for q in result.asks
        ],
        ended=result.ended,
        new_call=restart,
        platform_form=trial.platform_asks_all(dialect),
        path=list(result.path),
        outcome=result.state.outcome,
        version=flow.version,
        platform=dialect.NAME,
        token=token,
    )


def _restore(token: str, identity: str, platform: str) -> tuple[CallState, TrialCounts, bool]:
    """The call's state and the trial's counts from the token; a new call (True)
    when there is none, or it was another flow's or platform's."""
    if not token:
        return CallState(), TrialCounts(), True
    try:
        data = _signer().loads(token, max_age=TOKEN_SECONDS)
    except BadSignature:
        raise TrialError("the test call's token is not valid: start a new call") from None
    counts = TrialCounts.from_json(data.get("counts"))
    if data.get("flow") != identity or data.get("platform") != platform:
        return CallState(), counts, True
    return CallState.from_json(data.get("state")), counts, False
