"""The flow editor ("studio") on the admin blueprint: write a flow in the browser, check
it as you type, see its graph, keep a draft, see its diff and publish it.

Every page works as a plain form; app/static/admin/studio.js (CodeMirror, built
from studio/ by `make studio-bundle`) replaces the textarea and asks the JSON
endpoints here for the check and the graph of the text as typed. Those pages
run only scripts of this site (no inline script), under their own policy.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length, Optional, Regexp

from app.admin import drafts, platform_urls, service, test_phone
from app.admin.views import (
    SVG_POLICY,
    bp,
    current_admin,
    flow_name_or_404,
    flow_registry,
    submitted,
)
from app.db import get_session
from app.flows import graph, versions
from app.flows.locate import Located, locate
from app.flows.registry import FlowRegistry

log = logging.getLogger(__name__)

# The studio's pages run its scripts (served from /static/), fetch the check and
# the graph from this site, and nothing else. CodeMirror sets styles inline.
SCRIPT_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# The admin pages with a script: the editor (also as a refused publish shows it),
# the flow page (its copy buttons) and the test phone's page.
SCRIPTED = frozenset({"admin.flow", "admin.studio_edit", "admin.studio_submit", "admin.try_flow"})
ACTIONS = ("save", "diff", "publish", "discard")


class EditForm(FlaskForm):
    """The editor: the text, the version it started from, and what to do with it."""

    source = TextAreaField(validators=[Length(max=drafts.MAX_SOURCE)])
    base = HiddenField(validators=[Optional(), Regexp(r"^[1-9][0-9]{0,9}$")])
    note = StringField(validators=[Length(max=500)])
    action = HiddenField(validators=[AnyOf(ACTIONS)])


class NewFlowForm(FlaskForm):
    name = StringField(validators=[DataRequired(), Length(max=64)])


@bp.after_request
def _scripted_pages(response: Response) -> Response:
    # Registered after views.py's _headers, so it runs before it: its setdefault keeps this.
    if request.endpoint in SCRIPTED:
        response.headers["Content-Security-Policy"] = SCRIPT_POLICY
    return response


@bp.app_template_global()
def platform_hooks(name: str) -> list[platform_urls.PlatformHooks]:
    """Each platform's URLs for the flow called name (its published version), or none."""
    flow = flow_registry().get(name)
    if flow is None:
        return []
    return platform_urls.platform_hooks(current_app.config, request.url_root, flow)


def _base(form: EditForm) -> int | None:
    return int(form.base.data) if form.base.data else None


def _directory() -> Path:
    return flow_registry().directory


# --- pages -------------------------------------------------------------------------


@bp.route("/flows/new", methods=["GET", "POST"])
def studio_new() -> ResponseReturnValue:
    """Name a new flow, then write it in the editor."""
    form = NewFlowForm()
    error = ""
    if submitted(form):
        try:
            name = drafts.new_flow_name(get_session(), _directory(), form.name.data or "")
        except drafts.DraftError as exc:
            error = str(exc)
        else:
            return redirect(url_for(".studio_edit", name=name))
    elif form.is_submitted():
        error = "Give the flow a name."
    return render_template("admin/studio/new.html", form=form, error=error), 422 if error else 200


def _editable(name: str) -> str:
    """A flow name the editor takes, or 404: never a word of the admin's own URLs
    (a flow called `new` would hide behind the New flow page)."""
    if name in drafts.ADMIN_WORDS:
        abort(404)
    return flow_name_or_404(name)


@bp.get("/flows/<name>/edit")
def studio_edit(name: str) -> ResponseReturnValue:
    """The editor, opened on the admin's draft, else the published source, else a new flow."""
    opened = drafts.editing(get_session(), _directory(), current_admin(), _editable(name))
    form = EditForm(source=opened.source, base=opened.base or "")
    return _editor(opened, form)


@bp.post("/flows/<name>/edit")
def studio_submit(name: str) -> ResponseReturnValue:
    """Save, diff, publish or discard the text in the editor."""
    name = _editable(name)
    form = EditForm()
    if not submitted(form):
        abort(400)
    session = get_session()
    source, base, action = _lines(form.source.data or ""), _base(form), form.action.data
    if action == "discard":
        drafts.discard_draft(session, current_admin(), name)
        session.commit()
        flash("Draft discarded.")
        return redirect(url_for(".studio_edit", name=name))
    # Whatever happens next, the text is kept: a refused publish loses nothing.
    try:
        drafts.save_draft(session, current_admin(), name, source, base)
        session.commit()
    except IntegrityError:  # the same admin's first save of it, twice at once (a double click)
        session.rollback()
        drafts.save_draft(session, current_admin(), name, source, base)
        session.commit()
    if action == "save":
        flash("Draft saved.")
        return redirect(url_for(".studio_edit", name=name))
    if action == "diff":
        return redirect(url_for(".studio_diff", name=name))
    return _publish(flow_registry(), name, form, source, base)


def _publish(
    registry: FlowRegistry, name: str, form: EditForm, source: str, base: int | None
) -> ResponseReturnValue:
    session = get_session()
    try:
        row = drafts.publish_draft(
            session, current_admin(), name, source, base, form.note.data or ""
        )
    except drafts.BaseChanged as changed:
        session.rollback()
        return render_template(
            "admin/studio/conflict.html", changed=changed, form=EditForm(formdata=None)
        ), 409
    except drafts.NotPublished as refused:
        session.rollback()
        opened = drafts.editing(session, _directory(), current_admin(), name)
        problems = locate(source, refused.problems)
        return _editor(opened, form, refused=str(refused), problems=problems, status=422)
    except drafts.DraftError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for(".studio_edit", name=name))
    session.commit()
    if row is None:
        flash(f"Nothing published: the draft is the published version of {name} already.")
        return redirect(url_for(".flow", name=name))
    registry.poll(force=True)  # this worker starts new calls on it now; others within a poll
    log.info(
        "admin %s published %s v%d from the editor",
        current_admin().account_number,
        name,
        row.number,
    )
    flash(f"Published {name} as version {row.number}. {_file_outcome(name, base, source)}")
    return redirect(url_for(".flow", name=name))


def _file_outcome(name: str, base: int | None, source: str) -> str:
    """With FLOWS_AUTO_PUBLISH (a development checkout), write the flow's file too, so
    the edit shows in `git diff`; never over a file edited apart from the editor."""
    if not current_app.config["FLOWS_AUTO_PUBLISH"]:
        return "Download it to commit it to the flow files."
    directory = _directory()
    path = directory / f"{name}.yaml"
    started = versions.version(get_session(), name, base) if base else None
    try:
        on_disk = path.read_text(encoding="utf-8") if path.exists() else None
        if on_disk is not None and (started is None or on_disk != started.source):
            return f"The file {path.name} was edited apart from the editor: it is left as it is."
        drafts.write_flow_file(directory, name, source)
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("flow %s published, but its file not written: %s", name, exc)
        return f"The file {path.name} could not be written: download it to commit it."
    return f"Written to {path.name} too: commit it."


def _editor(
    opened: drafts.Editing,
    form: EditForm,
    *,
    refused: str = "",
    problems: list[Located] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    body = render_template(
        "admin/studio/edit.html",
        opened=opened,
        form=form,
        refused=refused,
        problems=problems or [],
        phone=_test_phone(opened.name),
    )
    return body, status


def _test_phone(name: str) -> dict[str, Any]:
    """The test phone beside the editor: it runs the text being edited, or a version."""
    numbers = [v.number for v in versions.history(get_session(), name)]
    flow = flow_registry().get_version(name, numbers[0]) if numbers else None
    return test_phone.phone_context(
        name, numbers, numbers[0] if numbers else 0, test_phone.platforms_of(flow)
    )


@bp.get("/flows/<name>/edit/diff")
def studio_diff(name: str) -> ResponseReturnValue:
    """The admin's saved draft against the published version."""
    session = get_session()
    draft = drafts.draft_of(session, current_admin(), flow_name_or_404(name))
    if draft is None:
        flash("There is no draft to compare: save one first.", "error")
        return redirect(url_for(".studio_edit", name=name))
    published = versions.published(session, name)
    return render_template(
        "admin/studio/diff.html",
        name=name,
        draft=draft,
        published=published,
        lines=drafts.draft_diff(published, draft.source),
    )


@bp.get("/flows/<name>/download")
def studio_download(name: str) -> ResponseReturnValue:
    """The published source (?draft=1: the admin's draft) as the flow's YAML file."""
    session = get_session()
    name = flow_name_or_404(name)
    if request.args.get("draft"):
        draft = drafts.draft_of(session, current_admin(), name)
        source = draft.source if draft else None
    else:
        published = versions.published(session, name)
        source = published.source if published else None
    if source is None:
        abort(404)
    response = Response(source, mimetype="application/yaml")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.yaml"'
    return response


# --- what the editor's script asks ----------------------------------------------


@bp.post("/flows/<name>/check")
def studio_check(name: str) -> ResponseReturnValue:
    """The check of `flask forms check` on the posted text: its problems, each with
    the line and columns to mark."""
    source = _posted_source()
    try:
        flow = versions.check(flow_name_or_404(name), source)
    except versions.PublishError as exc:
        problems = locate(source, exc.problems)
        return jsonify(
            ok=False,
            problems=[
                {
                    "line": p.line,
                    "column": p.column,
                    "end_column": p.end_column,
                    "field": p.field,
                    "message": p.message,
                    "hint": p.hint,
                }
                for p in problems
            ],
        )
    return jsonify(ok=True, problems=[], description=flow.description)


@bp.post("/flows/<name>/draft.svg")
def studio_graph(name: str) -> ResponseReturnValue:
    """The posted text drawn as the flow page draws a published version; 422 if it
    fails the check (the check endpoint says why)."""
    source = _posted_source()
    try:
        flow = versions.check(flow_name_or_404(name), source)
    except versions.PublishError:
        abort(422)
    try:
        svg = service.flow_graph_svg(flow)
    except graph.GraphError as exc:
        log.error("draft of %s not drawn: %s", name, exc)
        abort(503)
    response = Response(svg, mimetype="image/svg+xml")
    response.headers["Content-Security-Policy"] = SVG_POLICY
    return response


def _posted_source() -> str:
    source = request.form.get("source", "")
    if len(source) > drafts.MAX_SOURCE:
        abort(413)
    return _lines(source)


def _lines(source: str) -> str:
    """A browser sends a textarea's lines ending in CRLF: stored as the files are, LF."""
    return source.replace("\r\n", "\n")
