"""The click-to-call web page: sign in, the directory with Call buttons, live call status.

Server-rendered; a few lines of inline JavaScript poll the call's status, and
without JavaScript the status page refreshes itself. Every form is a FlaskForm,
so each POST carries a CSRF token; CSRF is checked per form rather than by a
global CSRFProtect, which would also demand tokens of the platforms' web hooks
and the token-authenticated JSON API.
"""

from __future__ import annotations

import logging
from typing import Any, cast
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as cookie_session
from flask.typing import ResponseReturnValue
from flask_login import (
    current_user,
    login_required,
    login_user,
    logout_user,
)
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response
from wtforms import HiddenField, StringField, SubmitField, TelField
from wtforms.validators import AnyOf, DataRequired, Length

from app.auth import passwords
from app.auth.sign_in import LoginForm, LogoutForm, WebUser, logout_button
from app.db import get_session
from app.directory import service as directory
from app.directory.pins import get_hasher
from app.models import Call, CallAction, OneTimeCode, User
from app.outbound import codes, idempotency, jobs, service, uses_sandbox
from app.outbound.destinations import DestinationPolicy
from app.rate_limits import Breach, get_call_limits
from app.web.csrf import require_token

log = logging.getLogger(__name__)

bp = Blueprint("web", __name__)
bp.before_request(require_token)  # every POST here is a form

# What a person reads for each action status.
STATUS_TEXT = {
    "queued": "Queued",
    "scheduled": "Scheduled",
    "calling": "Calling you…",
    "ringing": "Ringing…",
    "connected": "Connected",
    "completed": "Call ended",
    "no_answer": "No answer",
    "busy": "Busy",
    "failed": "Failed",
    "retrying": "Retrying…",
    "unknown": "No clear answer from the provider (not retried)",
    "refused": "Refused",
    "cancelled": "Cancelled",
}
# What a person reads for each status report a platform sent; its own word stays
# in the API and on the admin pages.
REPORT_TEXT = {
    "queued": "Queued",
    "calling": "Calling",
    "initiated": "Calling",
    "ringing": "Ringing",
    "answered": "Answered",
    "in-progress": "Answered",
    "completed": "Call ended",
    "busy": "Busy",
    "failed": "Failed",
    "no-answer": "No answer",
    "canceled": "Cancelled",
}
# Statuses whose detail is the reason a person needs. On any other, the detail is
# the provider's acknowledgement of the request ("success", "HTTP 200"): not shown.
REASON_STATUSES = frozenset({"failed", "unknown", "retrying", "refused"})
# What a call to the user's own phone is, in their history (it connects them to nobody).
PURPOSE_LABEL = {
    "verify_phone": "Phone confirmation",
    "verify_survo": "Verification call",
}
# What such a call does, on its page.
PURPOSE_ABOUT = {
    "verify_phone": "Glue calls your phone ({phone}) and reads you a code, to confirm it is yours.",
    "verify_survo": "Glue calls your phone ({phone}) and asks you to verify yourself.",
}
# The page calls people in the directory, never a number typed in.
WEB_TARGET_KINDS = ("originator", "user", "group")
HISTORY_LENGTH = 20


# --- sign-in -------------------------------------------------------------------


def _me() -> User:
    return cast(WebUser, current_user).user


def init_app(app: Flask) -> None:
    # The session cookie's flags are set by app.web.security_headers.
    # Tokens are bound to the signed session cookie; a time limit would only
    # turn the Call buttons of a page left open into errors.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    app.add_template_global(_form_nonce, "form_nonce")
    app.register_blueprint(bp)


# --- forms ---------------------------------------------------------------------


class CallForm(FlaskForm):
    """One Call button: who to call."""

    kind = HiddenField(validators=[AnyOf(WEB_TARGET_KINDS)])
    value = HiddenField(validators=[Length(max=32)])
    nonce = HiddenField(validators=[Length(max=200)])  # this rendered form's: see _once


class PhoneForm(FlaskForm):
    """The number to ring first, and the call waiting for it (if any)."""

    phone = TelField(
        "Your phone number",
        validators=[DataRequired("Enter your phone number."), Length(max=40)],
    )
    kind = HiddenField(validators=[AnyOf(("", *WEB_TARGET_KINDS))])
    value = HiddenField(validators=[Length(max=32)])
    submit = SubmitField("Save and call")


class ConfirmForm(FlaskForm):
    """Ask Glue to call your phone and read you a code."""

    nonce = HiddenField(validators=[Length(max=200)])
    submit = SubmitField("Confirm by a phone call")


class CancelForm(FlaskForm):
    """Cancel a call: withdrawn if not yet placed, else the provider is asked to end it."""

    submit = SubmitField("Cancel the call")


class CodeForm(FlaskForm):
    code = StringField(
        "The code you heard",
        validators=[DataRequired("Enter the code you heard."), Length(max=12)],
    )
    submit = SubmitField("Confirm")


CODE_MESSAGES = {
    "wrong": "That is not the code. Try again.",
    "expired": "That code has expired: ask for a new call.",
    "used": "That code was already used.",
    "no_tries": "Too many wrong codes: ask for a new call.",
    "unknown": "That code is not yours.",
}


def _submitted(form: FlaskForm) -> bool:
    """validate_on_submit, but a missing or wrong CSRF token is a 400, not a form error."""
    valid = bool(form.validate_on_submit())
    csrf_errors = getattr(getattr(form, "csrf_token", None), "errors", None)
    if form.is_submitted() and csrf_errors:
        raise CSRFError(csrf_errors[0])
    return valid


@bp.errorhandler(CSRFError)
@bp.errorhandler(400)
@bp.errorhandler(404)
def _error_page(exc: HTTPException) -> ResponseReturnValue:
    """Errors of these pages, as a page."""
    if isinstance(exc, CSRFError):
        log.warning("web form refused: %s", exc.description)
        message = (
            "This form has expired or did not come from this site. Reload the page and try again."
        )
    elif exc.code == 404:
        message = "There is nothing here."
    else:
        message = "That request could not be understood."
    return render_template("error.html", message=message), exc.code or 500


@bp.context_processor
def _page_context() -> dict[str, Any]:
    signed_in = current_user.is_authenticated
    return {
        "logout_form": logout_button() if signed_in else None,
        "sandbox": uses_sandbox(current_app.config),
    }


# --- pages ---------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Sign in with an account number and web password."""
    if current_user.is_authenticated:
        return redirect(url_for(".dashboard"))
    form = LoginForm()
    error = None
    if _submitted(form):
        user = passwords.authenticate(get_session(), form.account.data, form.password.data)
        if user is not None:
            cookie_session.clear()  # nothing from before sign-in carries over
            login_user(WebUser(user))
            log.info("web sign-in: user %s", user.account_number)
            return redirect(_safe_next(request.args.get("next")))
        log.info("web sign-in refused for account %r", form.account.data[:32])
        error = "That account number and password do not match."
    return render_template("login.html", form=form, error=error)


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: only a path on this site."""
    parts = urlsplit(target or "")
    if not target or parts.scheme or parts.netloc or not target.startswith("/") or "\\" in target:
        return url_for(".dashboard")
    return target


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    """Sign out."""
    if _submitted(LogoutForm()):
        logout_user()
        cookie_session.clear()
        flash("You are signed out.")
    return redirect(url_for(".login"))


@bp.get("/")
@login_required
def dashboard() -> ResponseReturnValue:
    """The originator and the directory, each with a Call button, and your call history."""
    me = _me()
    session = get_session()
    users = [u for u in directory.list_users(session) if u.active and u.id != me.id]
    groups = [g for g in directory.list_groups(session) if g.active]
    return render_template(
        "dashboard.html",
        me=me,
        originator=_originator(),
        users=users,
        groups=groups,
        history=[_view(action) for action in _history(session, me)],
        call_form=CallForm(),
        confirm_form=ConfirmForm(),
    )


@bp.post("/call")
@login_required
def call() -> ResponseReturnValue:
    """Start a call to the chosen target (asking for your phone first if needed)."""
    form = CallForm()
    if not _submitted(form):
        flash("That call cannot be placed.", "error")
        return redirect(url_for(".dashboard"))
    nonce = _once(form.nonce.data)
    if isinstance(nonce, Response):
        return nonce  # submitted before: its call, not another
    return _start_call(form.kind.data, form.value.data or "", nonce)


@bp.route("/phone", methods=["GET", "POST"])
@login_required
def phone() -> ResponseReturnValue:
    """Ask for the number to ring first, store it, then place the call waiting for it."""
    me = _me()
    if me.phones:
        flash(f"Your phone on file is {me.phones[0].e164}.")
        return redirect(url_for(".dashboard"))
    kind, value = request.args.get("kind", ""), request.args.get("value", "")[:32]
    if kind not in WEB_TARGET_KINDS:
        kind, value = "", ""  # no call waiting: only store the number
    form = PhoneForm(kind=kind, value=value)
    if _submitted(form):
        session = get_session()
        try:
            e164 = service.add_phone(session, me, form.phone.data, _region(), policy=_policy())
            session.commit()
        except service.CallError as exc:
            session.rollback()
            form.phone.errors.append(_sentence(str(exc)))
        except IntegrityError:  # the same number, stored by someone else just now
            session.rollback()
            form.phone.errors.append("That number is registered to someone else.")
        else:
            flash(f"Your phone number {e164} is saved.")
            if form.kind.data:
                return _start_call(form.kind.data, form.value.data or "")
            return redirect(url_for(".dashboard"))
    kind, value = form.kind.data or "", form.value.data or ""
    target = _target_label(kind, value) if kind in WEB_TARGET_KINDS else None
    return render_template("phone.html", form=form, target=target)


@bp.post("/phone/confirm")
@login_required
def confirm_phone() -> ResponseReturnValue:
    """Call your phone and read you a one-time code, to prove it is yours."""
    me = _me()
    form = ConfirmForm()
    if not _submitted(form) or not me.phones:
        return redirect(url_for(".dashboard"))
    nonce = _once(form.nonce.data)
    if isinstance(nonce, Response):
        return nonce
    session = get_session()
    config = current_app.config
    action = service.record_verification_call(
        session,
        me,
        me.phones[0].e164,
        config["VERIFY_PROVIDER"],
        "web",
        "verify_phone",
        policy=_policy(),
    )
    session.flush()
    if service.is_refused(action):  # recorded, never sent: a resubmit shows it
        idempotency.settle_nonce(session, nonce, action.id)
        return _refused(session, action)
    # Counted only for a call that will be placed.
    breach = get_call_limits().hit(me.account_number, code=True)
    if breach is not None:
        session.rollback()
        flash(_too_many(breach), "error")
        return _let_go(nonce, redirect(url_for(".dashboard")))
    issued = codes.issue(session, get_hasher(), me, me.phones[0].e164, action)
    idempotency.settle_nonce(session, nonce, action.id)
    session.commit()
    if not jobs.enqueue(session, action):
        flash("The call could not be started. Please try again later.", "error")
    return redirect(url_for(".enter_code", code_id=issued.record.id))


@bp.route("/phone/confirm/<int:code_id>", methods=["GET", "POST"])
@login_required
def enter_code(code_id: int) -> ResponseReturnValue:
    """Type the code the call read out."""
    me = _me()
    form = CodeForm()
    session = get_session()
    code = session.get(OneTimeCode, code_id)
    if code is None or code.user_id != me.id:
        abort(404)
    if _submitted(form):
        outcome = codes.check(session, get_hasher(), me, code_id, form.code.data or "")
        session.commit()
        if outcome == "confirmed":
            flash(f"Your phone {code.phone} is confirmed.")
            return redirect(url_for(".dashboard"))
        form.code.errors.append(CODE_MESSAGES[outcome])
    return render_template("confirm.html", form=form, code=code)


@bp.get("/calls/<int:action_id>")
@login_required
def call_status(action_id: int) -> ResponseReturnValue:
    """One call's progress, updated live."""
    action = _own_action(action_id)
    page = render_template("call.html", call=_view(action), cancel_form=CancelForm())
    response = current_app.make_response(page)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/calls/<int:action_id>/cancel")
@login_required
def cancel_call(action_id: int) -> ResponseReturnValue:
    """Cancel one of your calls, then show it."""
    action = _own_action(action_id)
    if _submitted(CancelForm()):
        me = _me()
        by = f"user {me.account_number}"
        outcome, action = service.cancel(get_session(), action.id, by, current_app.config)
        log.info("web: user %s cancel of call %s: %s", me.account_number, action_id, outcome)
        if outcome == "cancelled":
            flash("The call is cancelled.")
        elif outcome == "final":
            flash("The call has already ended.", "error")
        else:
            flash(f"The call could not be cancelled: {action.cancel_result}.", "error")
    return redirect(url_for(".call_status", action_id=action_id))


@bp.get("/calls/<int:action_id>.json")
def call_status_json(action_id: int) -> ResponseReturnValue:
    """One call's progress as JSON, for the status page's script (its owner only):
    the API's view of the call, with the texts the page shows."""
    if not current_user.is_authenticated:
        return jsonify(error="sign in first"), 401
    action = _find_own_action(action_id)
    if action is None:
        return jsonify(error="no such call"), 404
    response = jsonify(_view(action))
    response.headers["Cache-Control"] = "no-store"
    return response


# --- helpers -------------------------------------------------------------------


def _start_call(kind: str, value: str, nonce: str | None = None) -> ResponseReturnValue:
    """Record the call, queue it, and show its progress. `nonce`: the submitted
    form's, claimed: it records the call, or is let go if none is placed."""
    me = _me()
    session = get_session()
    config = current_app.config
    try:
        target = service.resolve_target(
            session, kind, value, originator=_originator()["number"], region=_region()
        )
        action = service.record_call(
            session,
            me,
            target,
            provider=config.get("CALL_PROVIDER", "didforsale"),
            via="web",
            policy=_policy(),
        )
        # Counted only for a call that will be placed.
        refused = service.is_refused(action)
        breach = None if refused else get_call_limits().hit(me.account_number)
        if breach is not None:
            session.rollback()
            flash(_too_many(breach), "error")
            return _let_go(nonce, redirect(url_for(".dashboard")))
    except service.NeedsPhone:
        session.rollback()
        return _let_go(nonce, redirect(url_for(".phone", kind=kind, value=value or None)))
    except service.CallError as exc:
        session.rollback()
        flash(_sentence(str(exc)), "error")
        return _let_go(nonce, redirect(url_for(".dashboard")))
    if nonce is not None:
        session.flush()
        idempotency.settle_nonce(session, nonce, action.id)
    if service.is_refused(action):
        return _refused(session, action)
    session.commit()
    log.info("web call %s: user %s to %s %s", action.id, me.account_number, kind, value)
    if not jobs.enqueue(session, action):
        flash("The call could not be started. Please try again later.", "error")
    return redirect(url_for(".call_status", action_id=action.id))


def _refused(session: Session, action: CallAction) -> ResponseReturnValue:
    """A call the destination policy refused: recorded, never sent; its page says why."""
    session.commit()
    log.info("web call %s refused: %s", action.id, action.detail)
    flash(f"That call was not placed: {action.detail}.", "error")
    return redirect(url_for(".call_status", action_id=action.id))


def _form_nonce() -> str:
    """A one-time nonce for a form that places a call (a template global)."""
    return idempotency.new_nonce(current_app.config["SECRET_KEY"], _me().id)


def _once(signed: str | None) -> str | Response:
    """Claim a submitted form's nonce: the nonce, if this is the form's first
    submit; else where to go instead of placing a call (the call the first
    submit placed)."""
    me = _me()
    nonce = idempotency.read_nonce(current_app.config["SECRET_KEY"], signed or "", me.id)
    if nonce is None:
        flash("This page has expired. Press the button again.", "error")
        return redirect(url_for(".dashboard"))
    first = idempotency.claim_nonce(get_session(), me.id, nonce)
    if first == "new":
        return nonce
    if first == "in_progress":
        flash("That button was already pressed: the call is being placed.")
        return redirect(url_for(".dashboard"))
    log.info("web form resubmitted: user %s shown call %s", me.account_number, first)
    code = get_session().scalar(select(OneTimeCode.id).where(OneTimeCode.action_id == first))
    if code is not None:
        return redirect(url_for(".enter_code", code_id=code))
    return redirect(url_for(".call_status", action_id=first))


def _let_go(nonce: str | None, response: ResponseReturnValue) -> ResponseReturnValue:
    """No call was placed: the form's nonce may be submitted again."""
    if nonce is not None:
        session = get_session()
        idempotency.settle_nonce(session, nonce, None)
        session.commit()
    return response


def _too_many(breach: Breach) -> str:
    """Why a call was refused by a limit, and when to try again."""
    seconds = breach.retry_after
    if seconds < 120:
        wait = f"{seconds} seconds"
    elif seconds < 7200:
        wait = f"{(seconds + 59) // 60} minutes"
    else:
        wait = f"{(seconds + 3599) // 3600} hours"
    what = "confirmation calls" if breach.scope == "code" else "calls"
    return f"You have placed too many {what} for now. Nothing was placed: try again in {wait}."


def _own_action(action_id: int) -> CallAction:
    """The signed-in user's action, or 404 (someone else's looks like none at all)."""
    action = _find_own_action(action_id)
    if action is None:
        abort(404)
    return action


def _find_own_action(action_id: int) -> CallAction | None:
    action = get_session().get(CallAction, action_id, populate_existing=True)
    return action if action is not None and action.user_id == _me().id else None


def _history(session: Session, user: User) -> list[CallAction]:
    stmt = (
        select(CallAction)
        .where(CallAction.user_id == user.id)
        .options(
            selectinload(CallAction.calls).selectinload(Call.events),
            selectinload(CallAction.target_user),
            selectinload(CallAction.target_group),
        )
        .order_by(CallAction.created_at.desc(), CallAction.id.desc())
        .limit(HISTORY_LENGTH)
    )
    return list(session.scalars(stmt))


def _view(action: CallAction) -> dict[str, Any]:
    """An action as the pages show it: the service's view, a label and readable texts
    (the status, the reason it failed if it did, and each status report)."""
    view = service.action_view(action)
    label = _action_label(action)
    view["label"] = label
    if action.purpose in PURPOSE_ABOUT:
        view["heading"] = label
        view["about"] = PURPOSE_ABOUT[action.purpose].format(phone=action.from_number)
    else:
        view["heading"] = f"Calling {label}"
        view["about"] = (
            f"Glue rings your phone ({action.from_number}) first. "
            f"When you answer, it connects you to {label}."
        )
    view["status_text"] = STATUS_TEXT.get(action.status, action.status)
    view["reason"] = action.detail if action.status in REASON_STATUSES else None
    for report in view["statuses"]:
        report["text"] = REPORT_TEXT.get(report["status"], report["status"])
    return view


def _action_label(action: CallAction) -> str:
    if action.purpose in PURPOSE_LABEL:
        return PURPOSE_LABEL[action.purpose]
    if action.target_kind == "originator":
        return str(_originator()["name"])
    if action.target_kind == "user" and action.target_user is not None:
        return action.target_user.name
    if action.target_kind == "group" and action.target_group is not None:
        return action.target_group.name
    return action.to_number or "an unknown number"


def _target_label(kind: str, value: str) -> str | None:
    """Who a pending call is for, if that target exists."""
    if kind == "originator":
        return str(_originator()["name"])
    try:
        target = service.resolve_target(get_session(), kind, value, originator="", region=_region())
    except service.CallError:
        return None
    return target.label


def _originator() -> dict[str, str]:
    config = current_app.config
    return {
        "name": config.get("ORIGINATOR_NAME") or "Originator",
        "number": config.get("ORIGINATOR_NUMBER") or "",
    }


def _policy() -> DestinationPolicy:
    return DestinationPolicy.from_config(current_app.config)


def _region() -> str:
    return str(current_app.config["DEFAULT_REGION"])


def _sentence(message: str) -> str:
    message = message.strip()
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
