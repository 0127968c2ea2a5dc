"""Web sign-in, shared by the click-to-call page and the admin pages: who is
signed in (Flask-Login), and the sign-in and sign-out forms."""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask, Request, Response
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from flask_login import LoginManager, UserMixin
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from app.auth import passwords
from app.db import get_session
from app.models import User


class WebUser(UserMixin):
    """The signed-in user, as Flask-Login sees it.

    Its id carries a fingerprint of the password hash: a new password (or
    none) signs out every session that began with the old one.
    """

    def __init__(self, user: User) -> None:
        self.user = user
        self.id = user.id

    def get_id(self) -> str:
        return f"{self.user.id}.{_fingerprint(self.user.password_hash or '')}"

    @property
    def is_active(self) -> bool:
        return self.user.active


def _fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def _load_user(user_id: str) -> WebUser | None:
    id_text, _, fingerprint = user_id.partition(".")
    if not id_text.isdigit():
        return None
    user = get_session().get(User, int(id_text))
    if user is None or not user.active or user.password_hash is None:
        return None
    if not hmac.compare_digest(fingerprint, _fingerprint(user.password_hash)):
        return None
    return WebUser(user)


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed cookie sessions, where a request without the cookie (every
    platform request) gets its empty session without a signer made for it."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        # An empty session nobody changed sets and deletes no cookie: Flask's own
        # save would read the cookie's seven settings first to find that out.
        if not session and not session.modified:
            if session.accessed:
                response.vary.add("Cookie")
            return
        super().save_session(app, session, response)


def init_app(app: Flask) -> None:
    app.session_interface = CookieSessions()
    login_manager = LoginManager()
    # The sign-in page is the click-to-call page's (app.outbound.web).
    login_manager.login_view = "web.login"
    login_manager.login_message = "Please sign in first."
    login_manager.user_loader(_load_user)
    login_manager.init_app(app)


class LoginForm(FlaskForm):
    account = StringField(
        "Account number", validators=[DataRequired("Enter your account number."), Length(max=32)]
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter your password."), Length(max=passwords.MAX_LENGTH)],
    )
    submit = SubmitField("Sign in")


class LogoutForm(FlaskForm):
    submit = SubmitField("Sign out")


def logout_button() -> LogoutForm:
    """The Sign out button on every page: a form to show, never one that reads this
    request (an error page may be answering a body that cannot be read)."""
    return LogoutForm(formdata=None)
