"""The routes the fuzz tests attack, the hostile requests generated for each,
how they are sent, and what each route must answer."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from flask import Flask
from hypothesis import strategies as st
from lxml import etree
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import TestResponse

from app.dialects import voipnow
from app.dialects.twiml import TWIML
from app.flows.statuses import RANK
from app.hooks.twilio_signature import SIGNATURE_HEADER, compute_signature
from tests.helpers.fuzz.strategies import (
    BROKEN_ESCAPES,
    JSON_BODIES,
    NUMBERS,
    SENT_PINS,
    Body,
    Pairs,
    atoms,
    bodies,
    encodings,
    field_pairs,
    hostile_text,
    json_values,
    urlencoded,
    values,
)
from tests.helpers.fuzz.world import PASSWORD, World
from tests.helpers.metrics import METRICS_TOKEN
from tests.helpers.settings import PROJECT_ROOT, TEST_SECRETS

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
LIMIT = 64 * 1024  # GLUE_MAX_CONTENT_LENGTH's default
OWN = "@own"  # in a path: the world's own id or token
CSRF = "@csrf"  # a field value replaced by the signed-in client's CSRF token
APIKEY = "@apikey"  # ... by GLUE_DIDML_SECRET (DIDforSale's apikey field)
# What a body may never hold: a traceback or the name of an exception class.
LEAKS = re.compile(
    rb"Traceback|\b[A-Z][A-Za-z]+(?:Error|Exception)\b|sqlalchemy\.|psycopg|werkzeug\.exceptions"
)


# --- what each route is --------------------------------------------------------


@dataclass(frozen=True)
class Route:
    kind: str  # platform, status, voice, api, web, admin, static, health, metrics: see CHECKS
    # How a request gets in: a config key of a shared secret (?key= or Basic),
    # twilio (signature), bearer (API token), metrics (its Bearer token), session
    # or admin (cookie), token (in the path), public.
    auth: str
    fields: dict[str, st.SearchStrategy[str]] = field(default_factory=dict)
    root: str = ""  # the XML root element of a platform's reply


CALL_IDS = st.sampled_from(("call-1", "call-2", "call-3", "CA0001", " call-1 "))
ACCOUNTS = st.sampled_from(("1001", "1002", "1004", "1900", "9999", "500", "0500", "1001 "))
CALLERS = st.sampled_from(("3125550199", "+13125550101", "+13125550500", "anonymous", "null", ""))
TURNS = st.one_of(
    st.sampled_from(("0", "1", "2", "3", "4", "9" * 5000)),
    st.integers(0, 10**30).map(str),
    atoms,
)
PINS = st.sampled_from(SENT_PINS)
QUESTIONS = st.sampled_from(("account", "group", "question", "CallSid"))  # "pin": see _pin_turn
PASS_THROUGH = st.sampled_from(
    (
        "turn|1||next|verified:1",
        "turn|2",
        "next|error:0",
        "next|error:1",
        "next|error:99999999999999999999",
        "next|error:\u0661",
        "turn|1||next|retry:1",
        "turn|\u00b2",
        "turn|" + "9" * 5000,
        "|||",
        "next|verified:x||action|1",
    )
)
STATUSES = st.sampled_from(
    (*RANK, *voipnow.HANGUP_STATUSES, "COMPLETED", "In-Progress", "ringing ", "answer")
)
DURATIONS = st.sampled_from(("0", "12", "-5", "999999999", "9999999999", "1.5", "\u0661\u0662"))
URLS = st.sampled_from(("https://example.com/r.wav", "javascript:alert(1)", "x" * 600, ""))
ANY: st.SearchStrategy[str] = values

IFBYPHONE = {
    "session_id": CALL_IDS,
    "caller_id": CALLERS,
    "timestamp": st.sampled_from(("1700000000", "2024-01-01 00:00:00", "")),
    "p_t": PASS_THROUGH,
    "account": ACCOUNTS,
    "group": ACCOUNTS,
    "pin": PINS,
}
VOIPNOW = {
    **{name: ANY for name in voipnow.PLATFORM_FIELDS if name != "key"},
    "CallID": CALL_IDS,
    "CallerIDNum": CALLERS,
    "CallStatus": STATUSES,
    voipnow.TURN_VARIABLE: TURNS,
    "account": ACCOUNTS,
    "group": ACCOUNTS,
    "pin": PINS,
}
VOICE_XML = {
    **{name: ANY for name in TWIML.PLATFORM_FIELDS if name != "key"},
    "CallSid": CALL_IDS,
    "callSid": CALL_IDS,
    "From": CALLERS,
    "Caller": CALLERS,
    "question": QUESTIONS,
    "turn": TURNS,
    "silence": st.just("1"),
    "Digits": st.one_of(ACCOUNTS, st.sampled_from(NUMBERS)),
    "RecordingUrl": URLS,
}
STATUS_FIELDS = {
    "CallSid": CALL_IDS,
    "callSid": CALL_IDS,
    "CallStatus": STATUSES,
    "ParentCallSid": st.one_of(st.just(""), CALL_IDS),
    "CallDuration": DURATIONS,
    "CallDurartion": DURATIONS,
    "RecordingURL": URLS,
    "RecordingUrl": URLS,
    "From": CALLERS,
    "To": CALLERS,
    "Direction": st.sampled_from(("inbound", "outbound-api")),
    "optional": ANY,
    "action": st.sampled_from(
        ("1", "2", "0", "-1", "2147483648", "99999999999999999999", "9" * 5000, "\u0661", "\u00b2")
    ),
    "pin": PINS,
}
WEB = {
    "csrf_token": st.sampled_from((CSRF, CSRF, "x", "")),
    "account": ACCOUNTS,
    "password": st.sampled_from((PASSWORD, "wrong-password", "", "x" * 2000)),
    "kind": st.sampled_from(("originator", "user", "group", "number", "", "USER")),
    "value": st.one_of(ACCOUNTS, CALLERS),
    "phone": st.one_of(CALLERS, st.sampled_from(("(312) 555-0177", "+442071838750", "911"))),
    "code": st.sampled_from(("000000", "123456", " 123456 ", "")),
    "submit": st.just("Sign in"),
    "next": st.sampled_from(("/", "//evil.example", "https://evil.example/", "/\\evil", "/admin/")),
}
ADMIN = {
    "csrf_token": st.sampled_from((CSRF, CSRF, "x")),
    "kind": st.sampled_from(("user", "group", "unknown", "", "admin")),
    "number": ACCOUNTS,
    "claim_type": st.sampled_from(("account", "group", "caller_id", "", "users")),
    "page": st.sampled_from(("1", "2", "0", "-1", "99999999999999999999", "x", "\u0661")),
    # The test phone (/admin/flows/<name>/try)
    "platform": st.sampled_from(("ifbyphone", "voipnow", "didml", "twiml", "", "TWIML", "skype")),
    "version": st.sampled_from(("1", "2", "0", "-1", "99999999999999999999", "x")),
    "restart": st.sampled_from(("1", "")),
    "answers": st.sampled_from(('{"account": "1001"}', '{"pin": "2468"}', "[]", "{", '{"a": 1}')),
    "token": st.sampled_from(("", "x", "e30.x.y")),
    "caller": CALLERS,
    # The flow editor's form and endpoints.
    "source": st.sampled_from(
        (
            "",
            "description: x",
            "a: [",
            "\t- x",
            "&a [*a]",
            "questions: [",
            "\u0000",
            (PROJECT_ROOT / "survo_forms" / "verify_caller.yaml").read_text(encoding="utf-8"),
        )
    ),
    "base": st.sampled_from(("", "1", "2", "0", "-1", "99999999999999999999", "x")),
    "action": st.sampled_from(("save", "diff", "publish", "discard", "", "PUBLISH")),
    "note": st.sampled_from(("", "a note", "x" * 600)),
    "name": st.sampled_from(("night_line", "verify_caller", "status", "../x", "", "x" * 65)),
    "draft": st.sampled_from(("", "1")),
    # The lists' filters and the settings.
    "q": st.one_of(ACCOUNTS, CALLERS, st.sampled_from(("%", "_", "'; --", "=1+1", "x" * 70))),
    "flow": st.sampled_from(("verify_caller", "group_line", "../etc", "", "x" * 70)),
    "outcome": st.sampled_from(("verified", "none", "locked", "rejected", "", "VERIFIED")),
    "since": st.sampled_from(("2026-01-01", "2026-13-40", "", "yesterday", "99999-01-01")),
    "until": st.sampled_from(("2026-12-31", "0001-01-01", "", "\u0661")),
    "days": st.sampled_from(("1", "7", "0", "x")),
    "time_zone": st.sampled_from(("UTC", "America/Chicago", "", "Mars/Olympus", "../../etc")),
}
WEBHOOKS = {
    **ADMIN,
    "token": st.sampled_from(("fuzz", "", "nobody", "x" * 100)),
    "state": st.sampled_from(("pending", "delivered", "failed", "", "PENDING")),
}
API = {
    "user": ACCOUNTS,
    "number": CALLERS,
    "method": st.sampled_from(("code", "survo", "", "CODE")),
    "code": st.sampled_from(("000000", "123456")),
    "kind": WEB["kind"],
    "value": WEB["value"],
}

ROUTES: dict[str, Route] = {
    "/ifbyphone/<flow_name>": Route("platform", "IFBYPHONE_SECRET", IFBYPHONE, "action"),
    "/voipnow/<flow_name>/dial-in": Route("platform", "VOIPNOW_SECRET", VOIPNOW, "Response"),
    "/voipnow/<flow_name>/dial-out": Route("platform", "VOIPNOW_SECRET", VOIPNOW, "Response"),
    "/voipnow/<flow_name>/hangup": Route("platform", "VOIPNOW_SECRET", VOIPNOW, "Response"),
    "/didml/<flow_name>": Route("platform", "DIDML_SECRET", VOICE_XML, "Response"),
    "/twiml/<flow_name>": Route("platform", "twilio", VOICE_XML, "Response"),
    "/didml/status": Route("status", "DIDML_SECRET", STATUS_FIELDS),
    "/twiml/status": Route("status", "twilio", STATUS_FIELDS),
    "/calls/voice/<int:code_id>/<token>": Route("voice", "token", root="Response"),
    "/calls/voice/dial/<int:action_id>/<token>": Route("voice", "token", root="Response"),
    "/api/v1/calls": Route("api", "bearer", API),
    "/api/v1/calls/<int:action_id>": Route("api", "bearer", API),
    "/api/v1/users/<account>/phone": Route("api", "bearer", API),
    "/api/v1/users/<account>/verifications": Route("api", "bearer", API),
    "/api/v1/users/<account>/verifications/<int:code_id>": Route("api", "bearer", API),
    "/login": Route("web", "public", WEB),
    "/logout": Route("web", "session", WEB),
    "/": Route("web", "session", WEB),
    "/call": Route("web", "session", WEB),
    "/phone": Route("web", "session", WEB),
    "/phone/confirm": Route("web", "session", WEB),
    "/phone/confirm/<int:code_id>": Route("web", "session", WEB),
    "/calls/<int:action_id>": Route("web", "session", WEB),
    "/calls/<int:action_id>.json": Route("web", "session", WEB),
    "/calls/<int:action_id>/cancel": Route("web", "session", WEB),
    "/admin/": Route("admin", "admin", ADMIN),
    "/admin/settings": Route("admin", "admin", ADMIN),
    "/admin/flows": Route("admin", "admin", ADMIN),
    "/admin/flows/<name>": Route("admin", "admin", ADMIN),
    "/admin/flows/<name>.svg": Route("admin", "admin", ADMIN),
    "/admin/flows/<name>/versions": Route("admin", "admin", ADMIN),
    "/admin/flows/<name>/versions/<int:number>": Route("admin", "admin", ADMIN),
    "/admin/flows/<name>/diff": Route("admin", "admin", ADMIN),
    "/admin/flows/<name>/rollback": Route("admin", "admin", ADMIN),
    "/admin/flows/<name>/try": Route("admin", "admin", ADMIN),
    "/admin/flows/new": Route("admin", "admin", ADMIN),
    "/admin/flows/<name>/edit": Route("admin", "admin", ADMIN),
    "/admin/flows/<name>/edit/diff": Route("admin", "admin", ADMIN),
    "/admin/flows/<name>/download": Route("admin", "admin", ADMIN),
    "/admin/flows/<name>/check": Route("admin", "admin", ADMIN),
    "/admin/flows/<name>/draft.svg": Route("admin", "admin", ADMIN),
    "/admin/calls": Route("admin", "admin", ADMIN),
    "/admin/calls.csv": Route("admin", "admin", ADMIN),
    "/admin/calls/<int:call_id>": Route("admin", "admin", ADMIN),
    "/admin/attempts": Route("admin", "admin", ADMIN),
    "/admin/attempts.csv": Route("admin", "admin", ADMIN),
    "/admin/locks": Route("admin", "admin", ADMIN),
    "/admin/locks.csv": Route("admin", "admin", ADMIN),
    "/admin/locks/unlock": Route("admin", "admin", ADMIN),
    "/admin/webhooks": Route("admin", "admin", WEBHOOKS),
    "/admin/webhooks/<int:event_row_id>": Route("admin", "admin", WEBHOOKS),
    "/admin/webhooks/<int:event_row_id>/replay": Route("admin", "admin", WEBHOOKS),
    "/static/<path:filename>": Route("static", "public"),
    "/healthz": Route("health", "public"),
    "/readyz": Route("health", "public"),
    "/metrics": Route("metrics", "metrics"),
}


# --- a generated request ---------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One generated request, before the world's credentials are put in."""

    method: str = "POST"
    path_args: tuple[tuple[str, str], ...] = ()
    credentials: str = "right"  # right, basic, wrong, none (see send)
    cookie: str = "none"  # none, anon (a session, signed out), user, admin
    query: tuple[tuple[str, str], ...] = ()
    query_encoding: str = "utf-8"
    query_suffix: bytes = b""
    body: Body = field(default_factory=Body)
    headers: tuple[tuple[str, str], ...] = ()
    pad: int = 0  # bytes added to the body: past the limit at 70000
    chunked: bool = False  # no Content-Length: the server ends the body (gunicorn)


FLOW_NAMES = ("verify_caller", "group_line", "status", "nope", "verify_caller.yaml", "..")


def path_value(name: str, converter: str) -> st.SearchStrategy[str]:
    if converter == "IntegerConverter":
        return st.one_of(
            st.just(OWN),
            st.sampled_from(("0", "1", "2", str(2**31), str(2**63), str(10**30), "01")),
            st.integers(0, 10**40).map(str),
        )
    known: dict[str, tuple[str, ...]] = {
        "flow_name": FLOW_NAMES,
        "name": FLOW_NAMES,
        "account": ("1001", "1002", "1004", "9999"),
        "token": (OWN, "abc"),
        "filename": ("x.css", "../app/config.py"),
    }
    return st.one_of(st.sampled_from(known.get(name, ("x",))), hostile_text.filter(bool))


def _converters(rule: str) -> dict[str, str]:
    names = re.findall(r"<(?:(\w+):)?(\w+)>", rule)
    return {name: "IntegerConverter" if conv == "int" else conv or "str" for conv, name in names}


@st.composite
def _pin_turn(draw: st.DrawFn) -> Pairs:
    """A PIN where a <Gather> sends it: in Digits, naming the pin question."""
    return [("question", "pin"), ("Digits", draw(PINS))]


@st.composite
def specs(draw: st.DrawFn, rule: str) -> Spec:
    route = ROUTES[rule]
    names = tuple(route.fields) or ("a", "b")
    path_args = tuple(
        (name, draw(path_value(name, converter))) for name, converter in _converters(rule).items()
    )
    query: Pairs = draw(field_pairs(names, route.fields))
    form: Pairs = draw(field_pairs(names, route.fields))
    if route.fields is VOICE_XML and draw(st.booleans()):
        query = draw(_pin_turn()) + query  # first: the first value of a field counts
    if "csrf_token" in route.fields and draw(st.booleans()):
        form = [("csrf_token", CSRF), *form]
    credentials = draw(st.sampled_from(("right", "right", "basic", "wrong", "none")))
    if route.auth == "DIDML_SECRET" and route.kind == "status" and draw(st.booleans()):
        credentials = "none"
        form = [("apikey", APIKEY), *form]
    if route.kind == "api" and draw(st.integers(0, 4)) == 0:
        body = Body(draw(st.sampled_from(JSON_BODIES)), "application/json")
    elif route.kind == "api" and draw(st.booleans()):
        body = Body(
            json.dumps(
                draw(
                    st.one_of(
                        st.dictionaries(st.sampled_from(tuple(API)), values, max_size=4),
                        st.fixed_dictionaries(
                            {
                                "user": ACCOUNTS,
                                "target": st.fixed_dictionaries(
                                    {"kind": API["kind"], "value": API["value"]}
                                ),
                            }
                        ),
                        json_values,
                    )
                ),
                ensure_ascii=False,
            ).encode("utf-8", "surrogatepass"),
            draw(st.sampled_from(("application/json", "application/json", "text/plain"))),
        )
    else:
        body = draw(bodies(form))
    header_names = ("Authorization", "Cookie", "X-Request-ID", SIGNATURE_HEADER, "Accept", "Host")
    # No line breaks: no HTTP server passes them on inside a header.
    header_value = hostile_text.filter(lambda v: "\r" not in v and "\n" not in v)
    headers = draw(st.lists(st.tuples(st.sampled_from(header_names), header_value), max_size=2))
    return Spec(
        method=draw(st.sampled_from(METHODS)),
        path_args=path_args,
        credentials=credentials,
        cookie=draw(st.sampled_from(("none", "anon", "user", "admin"))),
        query=tuple(query),
        query_encoding=draw(encodings),
        query_suffix=draw(st.sampled_from(BROKEN_ESCAPES)),
        body=body,
        headers=tuple(
            (name, value)
            for name, value in headers
            # Credentials are the test's to place: see send.
            if credentials in ("wrong", "none") or name not in ("Authorization", SIGNATURE_HEADER)
        ),
        pad=draw(st.sampled_from((0, 0, 0, 0, 0, 300, 70000))),
        chunked=draw(st.sampled_from((False, False, False, True))),
    )


# --- sending it ----------------------------------------------------------------


@dataclass
class Sent:
    response: TestResponse
    authenticated: bool  # the request carries the route's right credentials
    oversize: bool
    cookie: str


def _path(rule: str, spec: Spec, world: World) -> str:
    own = {"code_id": str(world.code_id), "action_id": str(world.action_id), "call_id": "1"}
    own["token"] = world.code_token
    args = dict(spec.path_args)

    def fill(match: re.Match[str]) -> str:
        name = match.group(2)
        value = args.get(name, "x")
        if value == OWN:
            value = own.get(name, "1")
        if name == "filename":
            return quote(value.encode("utf-8", "surrogatepass"), safe="/")
        return quote(value.encode("utf-8", "surrogatepass"), safe="")

    return re.sub(r"<(?:(\w+):)?(\w+)>", fill, rule)


def _secret(route: Route) -> str:
    return TEST_SECRETS[route.auth] if route.auth.endswith("_SECRET") else ""


def _substitute(data: bytes, world: World, cookie: str) -> bytes:
    csrf = {"admin": world.admin_csrf, "anon": world.anon_csrf}.get(cookie, world.user_csrf)
    for marker, real in ((CSRF, csrf), (APIKEY, TEST_SECRETS["DIDML_SECRET"])):
        data = data.replace(quote(marker, safe="").encode(), real.encode())
        data = data.replace(marker.encode(), real.encode())
    return data


def send(world: World, rule: str, spec: Spec) -> Sent:
    """Send the request with the credentials the spec asks for; say whether they are right."""
    app = world.app
    route = ROUTES[rule]
    path = _path(rule, spec, world)
    query = urlencoded(spec.query, spec.query_encoding) + spec.query_suffix
    # As a WSGI server hands them on: the bytes sent, read as latin-1.
    headers = [(n, v.encode("utf-8", "surrogatepass").decode("latin-1")) for n, v in spec.headers]
    secret = _secret(route)
    if secret and spec.credentials == "right":
        # First: the first `key` counts, and the fuzz's own fields never use the name.
        query = b"key=" + quote(secret).encode() + (b"&" + query if query else b"")
    elif secret and spec.credentials == "basic":
        headers.append(
            ("Authorization", "Basic " + base64.b64encode(f"glue:{secret}".encode()).decode())
        )
    elif spec.credentials == "wrong":
        query = b"key=wrong&" + query
        headers.append(("Authorization", "Bearer glue_wrong"))
    if route.auth == "bearer" and spec.credentials in ("right", "basic"):
        headers.append(("Authorization", f"Bearer {world.api_token}"))
    if route.auth == "metrics" and spec.credentials in ("right", "basic"):
        headers.append(("Authorization", f"Bearer {METRICS_TOKEN}"))
    data = _substitute(spec.body.data, world, spec.cookie)
    if spec.pad:
        data += b"&pad=" + b"x" * spec.pad

    def request(extra_headers: list[tuple[str, str]]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "method": spec.method,
            # Raw bytes, as a WSGI server passes them on (latin-1 is how environ holds bytes).
            "query_string": query.decode("latin-1"),
            "headers": headers + extra_headers,
        }
        if spec.body.content_type is not None:
            kwargs["content_type"] = spec.body.content_type
        if spec.chunked:
            # As gunicorn hands a chunked body on: no length, a stream that ends itself.
            kwargs["input_stream"] = io.BytesIO(data)
            kwargs["headers"] = [*kwargs["headers"], ("Transfer-Encoding", "chunked")]
            kwargs["environ_overrides"] = {"wsgi.input_terminated": True}
        else:
            kwargs["data"] = data
        return kwargs

    oversize = len(data) > LIMIT
    authenticated, signature = _expect_authenticated(app, route, path, request([]), spec, oversize)
    client = app.test_client()
    cookie = {
        "user": world.user_cookie,
        "admin": world.admin_cookie,
        "anon": world.anon_cookie,
    }.get(spec.cookie)
    if cookie is not None:
        client.set_cookie(app.config.get("SESSION_COOKIE_NAME", "session"), cookie)
    response = client.open(path, **request(signature))
    return Sent(response, authenticated, oversize, spec.cookie)


def _expect_authenticated(
    app: Flask, route: Route, path: str, kwargs: dict[str, Any], spec: Spec, oversize: bool
) -> tuple[bool, list[tuple[str, str]]]:
    """Whether the request carries the route's credentials, from the request as parsed
    (not from the app's own check, which is what is being tested); and the headers
    that carry Twilio's signature, where the spec asks for one."""
    from flask import request

    with app.test_request_context(path, **kwargs):
        if route.auth == "twilio":
            if oversize or spec.credentials not in ("right", "basic"):
                return False, []
            url = request.base_url
            if request.query_string:
                url += "?" + request.query_string.decode("utf-8", errors="replace")
            params = request.form if request.method == "POST" else {}
            signature = compute_signature(TEST_SECRETS["TWILIO_AUTH_TOKEN"], url, params)
            return True, [(SIGNATURE_HEADER, signature)]
        secret = _secret(route)
        if not secret:
            return spec.credentials in ("right", "basic"), []
        if "key" in request.args:
            given = request.args.get("key")
        elif request.authorization and request.authorization.password:
            given = request.authorization.password
        else:
            given = None
        if given == secret:
            return True, []
        if route.kind == "status" and route.auth == "DIDML_SECRET" and not oversize:
            return request.values.get("apikey") == secret, []
        return False, []


# --- what the answer must be -----------------------------------------------------


def _xml_root(body: bytes) -> str:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return str(etree.fromstring(body, parser).tag)


def check(rule: str, spec: Spec, sent: Sent) -> None:
    route = ROUTES[rule]
    response = sent.response
    status = response.status_code
    body = response.get_data()
    # Designed 503s: a graph without Graphviz installed; not ready (its body says why).
    allowed_5xx = status == 503 and (
        (
            rule in ("/admin/flows/<name>.svg", "/admin/flows/<name>/draft.svg")
            and not shutil.which("dot")
        )
        or rule == "/readyz"
    )
    assert status < 500 or allowed_5xx, f"{status}: {body[:500]!r}"
    assert not LEAKS.search(body), f"{status} shows an error's insides: {body[:1000]!r}"
    if spec.method == "HEAD":
        assert body == b""
    if sent.oversize:
        # Refused on every route, however the body is framed (403: one that cannot
        # be authenticated without reading it).
        assert status in (403, 413), f"a body over the limit answered {status}"
    empty_ok = spec.method in ("HEAD", "OPTIONS") or status in (204, 304)
    if route.kind == "platform" and dict(spec.path_args).get("flow_name") == "status":
        rule = rule.replace("<flow_name>", "status")  # /didml/status, /twiml/status
        route = ROUTES.get(rule, route)
    CHECKS[route.kind](route, spec, sent, status, body, empty_ok)


def _platform(
    route: Route, spec: Spec, sent: Sent, status: int, body: bytes, empty_ok: bool
) -> None:
    if not sent.authenticated:
        assert status == 403, f"unauthenticated request answered {status}: {body[:300]!r}"
        assert body in (b"Forbidden\n", b"")
        return
    assert status != 403, "authenticated request refused"
    if empty_ok and body == b"":
        return
    assert sent.response.mimetype == "text/xml", sent.response.content_type
    assert _xml_root(body) == route.root


def _status(route: Route, spec: Spec, sent: Sent, status: int, body: bytes, empty_ok: bool) -> None:
    if spec.method not in ("GET", "POST", "HEAD", "OPTIONS"):
        # Not routed to the callback (405): errors under /didml/ and /twiml/ are the
        # platform's, refused (403) unless the key or signature of its flows is right.
        # The request limits come before routing: 413 (size) or 400 (NUL) before 405.
        refused = status in (400, 405, 413) and _xml_root(body) == "Response"
        assert status == 403 or refused, status
        return
    if not sent.authenticated:
        # Refused by the request limits before authentication (DIDforSale's apikey and
        # Twilio's signature are in the body): 413 too large, 400 NUL. Nothing is stored.
        plain = body in (b"Request Entity Too Large\n", b"Bad Request\n", b"")
        refused = status in (400, 413) and plain
        assert status == 403 or refused, f"unauthenticated: {status}: {body[:300]!r}"
        return
    assert status != 403, "authenticated request refused"
    assert status in (200, 204, 400, 413), status
    if body:
        assert sent.response.mimetype == "text/plain"


def _voice(route: Route, spec: Spec, sent: Sent, status: int, body: bytes, empty_ok: bool) -> None:
    if empty_ok and body == b"":
        return
    assert sent.response.mimetype == "text/xml", f"{status} {sent.response.content_type}"
    assert _xml_root(body) == route.root


def _api(route: Route, spec: Spec, sent: Sent, status: int, body: bytes, empty_ok: bool) -> None:
    if not sent.authenticated:
        assert status >= 400, f"unauthenticated API request answered {status}"
    if empty_ok and body == b"":
        return
    assert sent.response.mimetype == "application/json", f"{status} {sent.response.content_type}"
    document = json.loads(body)
    if status >= 400:
        assert isinstance(document, dict) and "error" in document


def _redirect_is_local(sent: Sent) -> None:
    location = sent.response.headers.get("Location", "")
    assert location, "a redirect without a Location"
    assert (
        location.startswith("/") and not location.startswith(("//", "/\\"))
    ) or location.startswith("http://localhost/"), f"redirect off the site: {location}"


def _web(route: Route, spec: Spec, sent: Sent, status: int, body: bytes, empty_ok: bool) -> None:
    if 300 <= status < 400:
        _redirect_is_local(sent)
        return
    if route.auth == "session" and sent.cookie in ("none", "anon") and status < 300:
        assert empty_ok, f"a signed-out visitor got {status}"
    if empty_ok and body == b"":
        return
    assert sent.response.mimetype in ("text/html", "application/json"), sent.response.content_type


def _admin(route: Route, spec: Spec, sent: Sent, status: int, body: bytes, empty_ok: bool) -> None:
    assert "Content-Security-Policy" in sent.response.headers
    if sent.cookie != "admin":
        assert not 200 <= status < 300 or (empty_ok and status == 200 and body == b""), (
            f"a {sent.cookie} visitor got {status} from the admin pages"
        )
    if 300 <= status < 400:
        _redirect_is_local(sent)
        return
    if empty_ok and body == b"":
        return
    assert sent.response.mimetype in (
        "text/html",
        "image/svg+xml",
        "application/json",  # the flow editor's check
        "application/yaml",  # a flow's source, downloaded
        "text/csv",  # a list, exported
    ), sent.response.content_type


def _health(route: Route, spec: Spec, sent: Sent, status: int, body: bytes, empty_ok: bool) -> None:
    if status in (200, 503) and not empty_ok:
        assert sent.response.mimetype == "application/json", sent.response.content_type
        json.loads(body)


def _metrics(
    route: Route, spec: Spec, sent: Sent, status: int, body: bytes, empty_ok: bool
) -> None:
    if not sent.authenticated:
        if spec.method == "OPTIONS" and status == 200:  # Flask's own answer: the methods only
            assert body == b"", body[:100]
            return
        # Refused, unless the request limits or the routing answered first.
        assert status in (400, 403, 405, 413), f"metrics without the token: {status}"
        if status == 403:
            assert body in (b"Forbidden\n", b"")
        return
    if status != 200 or empty_ok:
        assert status in (200, 400, 405, 413), status
        return
    if sent.response.mimetype == "text/plain":
        names = {f.name for f in text_string_to_metric_families(body.decode())}
        assert "glue_jobs_pending" in names, names
    else:  # the scraper asked for OpenMetrics
        assert sent.response.mimetype == "application/openmetrics-text"
        assert body.endswith(b"# EOF\n")


def _static(route: Route, spec: Spec, sent: Sent, status: int, body: bytes, empty_ok: bool) -> None:
    assert status in (400, 404, 405, 413) or empty_ok, status


CHECKS: dict[str, Callable[[Route, Spec, Sent, int, bytes, bool], None]] = {
    "platform": _platform,
    "status": _status,
    "voice": _voice,
    "api": _api,
    "web": _web,
    "admin": _admin,
    "static": _static,
    "health": _health,
    "metrics": _metrics,
}
