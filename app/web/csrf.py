"""CSRF checks for blueprints of web forms, before any of their views runs.

Each form also checks its own token (FlaskForm); this check comes first, so a
view that reads or redirects before validating its form, or a new view that
forgets to, still refuses a POST without the session's token. It is attached
to blueprints, not to the app: the platforms' web hooks and the JSON API
authenticate otherwise and send no token.
"""

from __future__ import annotations

from flask import current_app, request
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms import ValidationError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def require_token() -> None:
    """A blueprint's before_request: an unsafe request without a valid token is a 400."""
    config = current_app.config
    if request.method in SAFE_METHODS or not config.get("WTF_CSRF_ENABLED", True):
        return
    field = config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    try:
        validate_csrf(request.form.get(field))
    except ValidationError as exc:
        raise CSRFError(exc.args[0]) from exc
