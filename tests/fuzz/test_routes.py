"""Every route, fed generated hostile requests through Flask's test client.

Whatever the request (method, fields, duplicated keys, encodings, content type,
body, size, credentials), the answer is never a 5xx nor a traceback: a platform
route answers 403 or well-formed XML of its dialect, the JSON API JSON, the web
and admin pages HTML or a redirect; and the database stays consistent.

Routes are enumerated from the app's url_map: a new route fails
test_every_route_is_fuzzed until it has an entry in ROUTES.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable

from flask import Flask
from hypothesis import example, given

from app.hooks.twilio_signature import SIGNATURE_HEADER
from tests.helpers.fuzz.consistency import assert_consistent, watched_log
from tests.helpers.fuzz.profiles import examples, generated_name
from tests.helpers.fuzz.routes import (
    OWN,
    ROUTES,
    Spec,
    check,
    send,
    specs,
)
from tests.helpers.fuzz.strategies import (
    JSON_BODIES,
    Body,
)
from tests.helpers.fuzz.world import World


def test_every_route_is_fuzzed(app: Flask) -> None:
    """A new route needs an entry in ROUTES (how to get in, what it answers)."""
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert rules - ROUTES.keys() == set(), "routes nobody fuzzes: add them to ROUTES"
    assert ROUTES.keys() - rules == set(), "ROUTES names routes that are gone"


# --- the tests -------------------------------------------------------------------

FLOW = (("flow_name", "verify_caller"),)
TOO_LARGE = 70000
BAD_JSON = Body(b"{", "application/json")
FORM = "application/x-www-form-urlencoded"
RINGING = b"callSid=call-1&CallStatus=ringing"
UNNAMED_PART = (
    b'--glueboundary\r\nContent-Disposition: form-data; name="\r\n"\r\n\r\n<\r\n'
    b"--glueboundary--\r\n"
)

# Inputs that once broke a route, kept as examples that always run.
REGRESSIONS: dict[str, list[Spec]] = {
    # A Twilio signature (any) and a body over the limit: the error handler
    # authenticated again, read the body again, and raised (500).
    "/twiml/<flow_name>": [
        Spec("POST", FLOW, "wrong", headers=((SIGNATURE_HEADER, "x"),), pad=TOO_LARGE),
        # A signed path with a `;`: urlparse dropped it, so the signature failed.
        Spec("GET", (("flow_name", "&amp;"),), "right"),
        # A turn counter int() cannot read: a traceback and a bare hang-up.
        Spec(
            "POST",
            FLOW,
            "right",
            query=(("turn", "9" * 5000), ("question", "account")),
            body=Body(b"CallSid=c&Digits=1001", FORM),
        ),
    ],
    # A chunked body over the limit was cut at the limit and the rest parsed as whole:
    # see "/ifbyphone/<flow_name>" below.
    # `//` in a platform's path: an HTML redirect, even unauthenticated.
    "/voipnow/<flow_name>/hangup": [Spec("GET", (("flow_name", "0/"),), "wrong")],
    # An id past the database's INTEGER: OverflowError on SQLite, DataError on PostgreSQL.
    # And a 405 answered in HTML, not the voice XML.
    "/calls/voice/<int:code_id>/<token>": [
        Spec("GET", (("code_id", str(2**63)), ("token", OWN))),
        Spec("PUT", (("code_id", OWN), ("token", OWN))),
    ],
    "/api/v1/calls/<int:action_id>": [Spec("GET", (("action_id", str(2**31)),), "right")],
    # Signed in, a body that cannot be read (too large, bad JSON): the page's Sign out
    # button (a FlaskForm) read it again while the error page was drawn (500).
    "/admin/": [
        Spec("POST", cookie="user", pad=TOO_LARGE),
        Spec("POST", cookie="admin", body=BAD_JSON),
    ],
    "/admin/calls/<int:call_id>": [Spec("GET", (("call_id", str(2**63)),), cookie="admin")],
    "/phone": [Spec("POST", cookie="user", body=BAD_JSON)],
    # NUL in a field (PostgreSQL text cannot hold it): a status callback answered 500
    # (retried for ever), sign-in 500, a platform's turn lost.
    # An action id past INTEGER (PostgreSQL refused the query), or past what int()
    # reads: 500, which the platform retries for ever.
    "/didml/status": [
        Spec("POST", body=Body(b"callSid=a%00b&CallStatus=ringing", FORM)),
        Spec("POST", query=(("action", "2147483648"),), body=Body(RINGING, FORM)),
        Spec("POST", query=(("action", "9" * 5000),), body=Body(RINGING, FORM)),
    ],
    "/twiml/status": [
        Spec("POST", body=Body(RINGING.replace(b"callSid", b"CallSid") + b"&action=%C2%B2", FORM))
    ],
    "/login": [
        Spec("POST", cookie="anon", body=Body(b"csrf_token=%40csrf&account=1%00&password=x", FORM))
    ],
    "/ifbyphone/<flow_name>": [
        Spec("POST", FLOW, "right", pad=TOO_LARGE, chunked=True),
        Spec("POST", FLOW, "right", body=Body(b"session_id=s%00&account=1001", FORM)),
        # A turn counter int() cannot read: a traceback and a bare hang-up.
        Spec("POST", FLOW, "right", body=Body(b"session_id=s&p_t=turn%7C%C2%B2", FORM)),
    ],
    "/voipnow/<flow_name>/dial-in": [
        Spec("POST", FLOW, "right", body=Body(b"CallID=c&glue_turn=" + b"9" * 5000, FORM))
    ],
    # A multipart part whose name cannot be read (werkzeug keys it None): sorting the
    # fields to key the delivery raised TypeError (500).
    "/didml/<flow_name>": [
        Spec(
            "POST",
            (("flow_name", "nope"),),
            "right",
            body=Body(UNNAMED_PART, "multipart/form-data; boundary=glueboundary"),
        ),
        Spec("POST", FLOW, "right", query=(("turn", "\u00b2"),), body=Body(b"callSid=c", FORM)),
    ],
    # JSON nested past Python's recursion limit (RecursionError), NUL in JSON text.
    "/api/v1/calls": [
        Spec("POST", (), "right", body=Body(body, "application/json")) for body in JSON_BODIES[:2]
    ],
}


def _fuzz_route(rule: str) -> Callable[[World], None]:
    # Slower routes (argon2 on sign-in, HTML pages) get fewer examples.
    scale = {"web": 0.5, "admin": 0.5, "static": 0.3}.get(ROUTES[rule].kind, 1.0)

    @examples(scale)
    @given(spec=specs(rule))
    def test(world: World, spec: Spec) -> None:
        with watched_log() as records:
            sent = send(world, rule, spec)
        check(rule, spec, sent)
        # An error logged is an internal failure the answer may have hidden (a
        # platform's request answered with the fallback, and lost).
        errors = [text for level, text in records if level >= logging.ERROR]
        if rule.endswith(".svg") and not shutil.which("dot"):
            errors = [text for text in errors if "not drawn" not in text]
        assert not errors, errors[0][:2000]
        assert_consistent(world.engine, world.known_problems)

    for regression in REGRESSIONS.get(rule, []):
        test = example(spec=regression)(test)
    test.__name__ = generated_name(rule)
    test.__doc__ = f"Generated hostile requests to {rule}."
    return test


for _rule in ROUTES:
    globals()[generated_name(_rule)] = _fuzz_route(_rule)
