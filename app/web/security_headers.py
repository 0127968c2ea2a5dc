"""Security headers on every response, and the session cookie's flags.

Pages get a Content-Security-Policy that runs only the inline scripts and
styles the templates mark with this response's nonce (`{{ csp_nonce() }}`): a
script injected into a page has no nonce, so it does not run. A view or
blueprint that sets its own policy (the admin pages, the flow graph) keeps it.
"""

from __future__ import annotations

import secrets

from flask import Flask, Response, current_app, g

HSTS = "max-age=31536000"  # a year; subdomains are not ours to speak for


def csp_nonce() -> str:
    """This response's nonce, made on first use by a template."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    nonce: str = g.csp_nonce
    return nonce


def page_policy(nonce: str | None) -> str:
    """Nothing from elsewhere; with a nonce, the page's own marked scripts and styles.

    connect-src 'self' lets the call status page poll its JSON.
    """
    inline = f"'nonce-{nonce}'" if nonce else "'none'"
    return (
        f"default-src 'none'; script-src {inline}; style-src {inline}; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


def _is_https(app: Flask) -> bool:
    return str(app.config["PUBLIC_URL"]).lower().startswith("https://")


NO_SCRIPTS = page_policy(None)
ALWAYS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),  # frame-ancestors, for older browsers
    # Same-origin keeps the Referer that CSRF checks may read, and tells no other
    # site which page (a call's id, say) a link was followed from.
    ("Referrer-Policy", "same-origin"),
    # Every answer is about one person, call or moment: none may be stored.
    ("Cache-Control", "no-store"),
)


def add_headers(response: Response) -> Response:
    """Each header the response has not set already (one pass over its headers:
    this runs on every request)."""
    headers = response.headers
    present = {name.lower() for name, _ in headers.items()}
    nonce = g.get("csp_nonce")
    wanted = [("Content-Security-Policy", page_policy(nonce) if nonce else NO_SCRIPTS), *ALWAYS]
    if _is_https(current_app):
        wanted.append(("Strict-Transport-Security", HSTS))
    for name, value in wanted:
        if name.lower() not in present:
            headers.add(name, value)
    return response


def init_app(app: Flask) -> None:
    # Flask ships SESSION_COOKIE_SAMESITE = None and SECURE = False, so
    # setdefault would change nothing: an explicit GLUE_SESSION_COOKIE_SAMESITE wins.
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if _is_https(app):
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True
    app.add_template_global(csp_nonce)
    app.after_request(add_headers)
