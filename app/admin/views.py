"""The admin pages, for signed-in users with is_admin; views only orchestrate.

Signed-out visitors are sent to the sign-in page, signed-in non-admins get 403.
Every form is a FlaskForm (a CSRF token in each POST), as on the web page.
"""

from __future__ import annotations

import json
import logging
from typing import Any, cast

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from markupsafe import Markup
from werkzeug.exceptions import HTTPException
from wtforms import HiddenField, IntegerField
from wtforms.validators import AnyOf, DataRequired, Length, NumberRange

from app.admin import service
from app.auth.sign_in import WebUser, logout_button
from app.db import get_session
from app.dialects.pretty import pretty_xml
from app.flows import versions
from app.flows.graph import GraphError
from app.flows.loader import FLOW_NAME
from app.flows.registry import EXTENSION as FLOWS
from app.flows.registry import FlowRegistry
from app.models import User
from app.web.csrf import require_token

log = logging.getLogger(__name__)

bp = Blueprint("admin", __name__, url_prefix="/admin")

# The pages show callers' numbers and the platforms' requests: not for caches,
# and no script runs on them, whatever a stored payload holds.
PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# A flow's graph is drawn from YAML an admin wrote: served as an image of its
# own, under a policy that lets no script or fetch in it run even if opened
# directly.
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'"


class UnlockForm(FlaskForm):
    """One Unlock button: which record's counters to reset."""

    kind = HiddenField(validators=[AnyOf(("user", "group", "unknown"))])
    number = HiddenField(validators=[DataRequired(), Length(max=64)])
    claim_type = HiddenField(validators=[AnyOf(("", *service.CLAIM_TYPES))])


class RollbackForm(FlaskForm):
    """One Rollback button: which version of the flow to publish again."""

    number = IntegerField(validators=[DataRequired(), NumberRange(min=1, max=2**31 - 1)])


def submitted(form: FlaskForm) -> bool:
    """validate_on_submit, but a missing or wrong CSRF token is a 400, not a form error."""
    valid = bool(form.validate_on_submit())
    csrf_errors = getattr(getattr(form, "csrf_token", None), "errors", None)
    if form.is_submitted() and csrf_errors:
        raise CSRFError(csrf_errors[0])
    return valid


def current_admin() -> User:
    return cast(WebUser, current_user).user


@bp.before_request
def _admins_only() -> ResponseReturnValue | None:
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined,no-any-return]
    if not current_admin().is_admin:
        abort(403)
    return None


bp.before_request(require_token)  # after _admins_only: a non-admin hears 403, never 400


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
    return response


@bp.context_processor
def _page_context() -> dict[str, Any]:
    return {"logout_form": logout_button() if current_user.is_authenticated else None}


@bp.app_template_filter("admin_json")
def _admin_json(value: Any) -> str:
    """A stored payload as indented JSON (escaped by the template, like all text)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


@bp.app_template_filter("pretty_xml")
def _pretty_xml(value: str) -> str:
    """A stored reply indented, one element a line (escaped by the template, like all text)."""
    return pretty_xml(value)


def http_error(exc: HTTPException) -> Response:
    """Errors under /admin/, as a page."""
    if isinstance(exc, CSRFError):
        log.warning("admin form refused: %s", exc.description)
        message = (
            "This form has expired or did not come from this site. Reload the page and try again."
        )
    elif exc.code == 403:
        message = "These pages are for admins only."
    elif exc.code == 404:
        message = "There is nothing here."
    elif exc.code == 405:
        message = "That is not how this page is used."
    elif exc.code == 503:
        message = "That cannot be shown just now: see the server's log."
    else:
        message = "That request could not be understood."
    signed_in = current_user.is_authenticated
    body = render_template(
        "admin/error.html", message=message, logout_form=logout_button() if signed_in else None
    )
    response = current_app.make_response((body, exc.code or 500))
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response


def flow_registry() -> FlowRegistry:
    registry: FlowRegistry = current_app.extensions[FLOWS]
    return registry


def flow_name_or_404(name: str) -> str:
    """A flow name from the URL, or 404: never a path, never a query of anything."""
    if not FLOW_NAME.fullmatch(name):
        abort(404)
    return name


# --- pages ---------------------------------------------------------------------


@bp.get("/flows")
def flows() -> ResponseReturnValue:
    """Every flow file with its check status, checked now, and its published version."""
    statuses = service.flow_statuses(get_session(), flow_registry())
    return render_template("admin/flows.html", flows=statuses)


@bp.get("/flows/<name>")
def flow(name: str) -> ResponseReturnValue:
    """One flow: its status and its graph."""
    found = service.flow_status(get_session(), flow_registry(), flow_name_or_404(name))
    if found is None:
        abort(404)
    status, loaded = found
    return render_template("admin/flow.html", flow=status, has_graph=loaded is not None)


@bp.get("/flows/<name>.svg")
def flow_svg(name: str) -> ResponseReturnValue:
    """One flow's graph, as an SVG image (never inlined in a page)."""
    loaded = flow_registry().get(name) if FLOW_NAME.fullmatch(name) else None
    if loaded is None:
        abort(404)
    try:
        svg = service.flow_graph_svg(loaded)
    except GraphError as exc:
        log.error("flow %s not drawn: %s", name, exc)
        abort(503)
    response = Response(svg, mimetype="image/svg+xml")
    response.headers["Content-Security-Policy"] = SVG_POLICY
    return response


@bp.get("/flows/<name>/versions")
def flow_versions(name: str) -> ResponseReturnValue:
    """A flow's versions, newest first, each with a Rollback button but the published one."""
    history = versions.history(get_session(), flow_name_or_404(name))
    if not history:
        abort(404)
    return render_template("admin/versions.html", name=name, history=history, form=RollbackForm())


@bp.get("/flows/<name>/versions/<int:number>")
def flow_version(name: str, number: int) -> ResponseReturnValue:
    """One version's source, as it was published."""
    session = get_session()
    found = versions.version(session, flow_name_or_404(name), number)
    if found is None:
        abort(404)
    published = versions.published(session, name)
    return render_template(
        "admin/version.html",
        version=found,
        published=published,
        form=RollbackForm(),
    )


@bp.get("/flows/<name>/diff")
def flow_diff(name: str) -> ResponseReturnValue:
    """The diff between two versions (?a=&b=), by default the published one and the one before."""
    a, b = request.args.get("a", type=int), request.args.get("b", type=int)
    found = service.version_diff(get_session(), flow_name_or_404(name), a, b)
    if found is None:
        abort(404)
    return render_template("admin/diff.html", name=name, diff=found)


@bp.post("/flows/<name>/rollback")
def rollback(name: str) -> ResponseReturnValue:
    """Publish an older version again, as a new version, and record who did it."""
    form = RollbackForm()
    if not submitted(form):
        abort(400)
    session = get_session()
    number = form.number.data or 0
    try:
        new = service.rollback(session, current_admin(), flow_name_or_404(name), number)
    except service.AdminError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for(".flow_versions", name=name))
    session.commit()
    flow_registry().poll(force=True)  # this worker starts new calls on it now; others within a poll
    log.info(
        "admin %s rolled %s back to v%d (v%d)",
        current_admin().account_number,
        name,
        number,
        new.number,
    )
    flash(f"Rolled {name} back to version {number}: published as version {new.number}.")
    return redirect(url_for(".flow_versions", name=name))


@bp.get("/calls/<int:call_id>")
def call(call_id: int) -> ResponseReturnValue:
    """One call: every event in order, with its stored payload and reply."""
    found = service.call_detail(get_session(), call_id)
    if found is None:
        abort(404)
    record, attempts = found
    try:
        svg = service.call_path_svg(flow_registry(), record)
    except GraphError as exc:
        log.error("call %s: flow %s not drawn: %s", call_id, record.flow, exc)
        svg = None
    # Inline, so the path is lit without a script: Graphviz escapes every label.
    path = Markup(svg.decode("utf-8")) if svg else None
    return render_template("admin/call.html", call=record, attempts=attempts, path=path)


@bp.post("/locks/unlock")
def unlock() -> ResponseReturnValue:
    """Reset a record's failure counters and record who did it."""
    form = UnlockForm()
    if not submitted(form):
        abort(400)
    session = get_session()
    kind = cast(service.UnlockKind, form.kind.data)
    number = form.number.data or ""
    try:
        service.unlock(session, current_admin(), kind, number, form.claim_type.data or "")
    except service.AdminError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for(".locks"))
    session.commit()
    log.info("admin %s unlocked %s %s", current_admin().account_number, kind, number)
    label = f"unknown {form.claim_type.data}" if kind == "unknown" else kind
    flash(f"Unlocked {label} {number}.")
    return redirect(url_for(".locks"))
