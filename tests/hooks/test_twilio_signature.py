"""Our X-Twilio-Signature check (app/hooks/twilio_signature.py), against Twilio's
published test vector and against twilio-python's own RequestValidator: the auth
token's HMAC-SHA1, the shared key's HMAC-SHA256, JSON bodies (`bodySHA256`) and
a second auth token. Through the app's routes: tests/hooks/test_twilio_webhooks.py."""

from __future__ import annotations

import hashlib
import json
import random
import string
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from flask import Flask, request
from flask.ctx import RequestContext
from hypothesis import event, given, note
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator, get_signature_algorithm
from werkzeug.datastructures import MultiDict

from app.hooks.twilio_signature import (
    HMAC_SHA1,
    HMAC_SHA256,
    SETTINGS_HEADER,
    SIGNATURE_HEADER,
    compute_signature,
    named_algorithm,
    twilio_signature,
    valid_signature,
)
from tests.helpers.fuzz.profiles import examples

# twilio-python's test vector (reference/platforms.md, section 6).
VECTOR_TOKEN = "12345"
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
VECTOR_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_the_published_vector() -> None:
    assert compute_signature(VECTOR_TOKEN, VECTOR_URL, VECTOR_PARAMS) == VECTOR_SIGNATURE
    assert valid_signature(VECTOR_TOKEN, VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE)


@pytest.mark.parametrize(
    "url",
    [
        "https://mycompany.com:443/myapp.php?foo=1&bar=2",  # the default port added
        "https://mycompany.com:8443/myapp.php?foo=1&bar=2",  # any port cut, as twilio-python
    ],
)
def test_the_vector_holds_for_the_same_url_with_a_port(url: str) -> None:
    assert valid_signature(VECTOR_TOKEN, url, VECTOR_PARAMS, VECTOR_SIGNATURE)
    assert RequestValidator(VECTOR_TOKEN).validate(url, VECTOR_PARAMS, VECTOR_SIGNATURE)


@pytest.mark.parametrize(
    ("token", "url", "params", "signature"),
    [
        ("12346", VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE),
        (VECTOR_TOKEN, VECTOR_URL.replace("foo=1", "foo=2"), VECTOR_PARAMS, VECTOR_SIGNATURE),
        (VECTOR_TOKEN, VECTOR_URL.replace("https", "http"), VECTOR_PARAMS, VECTOR_SIGNATURE),
        (VECTOR_TOKEN, VECTOR_URL, {**VECTOR_PARAMS, "Digits": "1235"}, VECTOR_SIGNATURE),
        (VECTOR_TOKEN, VECTOR_URL, {**VECTOR_PARAMS, "Extra": ""}, VECTOR_SIGNATURE),
        (VECTOR_TOKEN, VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE.lower()),
        (VECTOR_TOKEN, VECTOR_URL, VECTOR_PARAMS, ""),
        ("", VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE),
        (VECTOR_TOKEN, "https://mycompany.com:99999/myapp.php", VECTOR_PARAMS, VECTOR_SIGNATURE),
        (VECTOR_TOKEN, "https://mycompany.com:x/myapp.php", VECTOR_PARAMS, VECTOR_SIGNATURE),
        (VECTOR_TOKEN, VECTOR_URL, VECTOR_PARAMS, "ü" + VECTOR_SIGNATURE),
    ],
    ids=[
        "token",
        "query",
        "scheme",
        "field",
        "added field",
        "signature",
        "no signature",
        "no token",
        "port out of range",
        "port not a number",
        "non-ascii signature",
    ],
)
def test_anything_changed_fails(
    token: str, url: str, params: dict[str, str], signature: str
) -> None:
    assert not valid_signature(token, url, params, signature)


def test_user_info_and_ipv6_hosts_keep_their_colons() -> None:
    """twilio-python cuts such hosts at the first colon; we cut the port alone."""
    for bare, with_port in [
        ("https://user:pw@example.com/s", "https://user:pw@example.com:443/s"),
        ("http://[2001:db8::1]/s", "http://[2001:db8::1]:80/s"),
    ]:
        signature = compute_signature("t", bare, {"a": "1"})
        assert valid_signature("t", with_port, {"a": "1"}, signature)
        assert valid_signature("t", bare, {"a": "1"}, compute_signature("t", with_port, {"a": "1"}))


def test_a_list_in_a_plain_mapping_is_read_as_a_multidict() -> None:
    multi = MultiDict([("b", "2"), ("a", "x"), ("b", "1"), ("b", "2")])
    plain: dict[str, str | list[str]] = {"a": "x", "b": ["2", "1", "2"]}
    assert compute_signature("t", "https://h/p", plain) == compute_signature(
        "t", "https://h/p", multi
    )
    # Repeated values count once, sorted: as twilio-python does.
    assert compute_signature("t", "https://h/p", multi) == compute_signature(
        "t", "https://h/p", {"a": "x", "b": ["1", "2"]}
    )


# Property-style: random requests, our answers against twilio-python's.

_CHARS = string.ascii_letters + string.digits + " -_.~+&=?/%éß€😀"


def _text(rng: random.Random, low: int = 0, high: int = 8) -> str:
    return "".join(rng.choice(_CHARS) for _ in range(rng.randint(low, high)))


def _random_request(rng: random.Random) -> tuple[str, str, MultiDict[str, str]]:
    scheme = rng.choice(["http", "https"])
    host = rng.choice(["glue.example.com", "localhost", "127.0.0.1", "a-b.example.org"])
    port = rng.choice(["", "", f":{80 if scheme == 'http' else 443}", ":8080", ":5000"])
    path = "/" + "/".join(quote(_text(rng, 1, 6), safe="") for _ in range(rng.randint(0, 3)))
    query = "&".join(
        f"{quote(_text(rng, 1, 4), safe='')}={quote(_text(rng), safe='')}"
        for _ in range(rng.randint(0, 3))
    )
    url = f"{scheme}://{host}{port}{path}" + (f"?{query}" if query else "")
    names = [_text(rng, 1, 6) for _ in range(rng.randint(0, 5))]
    params: MultiDict[str, str] = MultiDict()
    for _ in range(rng.randint(0, 10)):
        # Repeated names and repeated values on purpose.
        params.add(rng.choice(names) if names else "x", rng.choice(["", "1", _text(rng)]))
    return _text(rng, 1, 32), url, params


def _url_variants(url: str) -> tuple[list[str], list[str]]:
    """Signed URLs that must pass for a request to `url`, and ones that must not.

    Pass: as given, without any port, with the default port if it names none or
    that one. Fail: the default port in place of another port.
    """
    scheme, rest = url.split("://", 1)
    host, slash, tail = rest.partition("/")
    bare, _, port = host.partition(":")
    default = "443" if scheme == "https" else "80"
    with_default = f"{scheme}://{bare}:{default}{slash}{tail}"
    passing = [url, f"{scheme}://{bare}{slash}{tail}"]
    if port in ("", default):
        return [*passing, with_default], []
    return passing, [with_default]


@pytest.mark.parametrize("seed", range(40))
def test_agrees_with_twilio_python(seed: int) -> None:
    rng = random.Random(seed)
    token, url, params = _random_request(rng)
    twilio = RequestValidator(token)
    assert compute_signature(token, url, params) == twilio.compute_signature(url, params)

    passing, failing = _url_variants(url)
    as_dict = {name: params.getlist(name) for name in params}
    for signed_url in passing:
        signature = twilio.compute_signature(signed_url, params)
        assert twilio.validate(url, params, signature)
        assert valid_signature(token, url, params, signature)
        assert valid_signature(token, url, as_dict, signature)  # a dict of lists too
    for signed_url in failing:
        signature = twilio.compute_signature(signed_url, params)
        assert not twilio.validate(url, params, signature)
        assert not valid_signature(token, url, params, signature)

    signature = twilio.compute_signature(url, params)
    tampered_params = MultiDict(params)
    tampered_params.add("Tampered", "1")
    tampered_url = url.replace("://", "://x", 1)
    for args in [
        (token, tampered_url, params),
        (token, url, tampered_params),
        (token + "x", url, params),
    ]:
        assert not valid_signature(*args, signature)
        assert not RequestValidator(args[0]).validate(args[1], args[2], signature)
    if params:
        name = next(iter(params))
        changed = MultiDict(params)
        changed.setlist(
            name, [*changed.getlist(name)[:-1], "tampered ÿ" + changed.getlist(name)[-1]]
        )
        assert not valid_signature(token, url, changed, signature)
        assert not twilio.validate(url, changed, signature)


# The authenticator: the signature of the request Flask received.

TOKEN = "auth-token"


@pytest.fixture
def bare_app() -> Flask:
    app = Flask(__name__)
    app.config.update(PUBLIC_URL="", TWILIO_AUTH_TOKEN=TOKEN)
    return app


def _signed(url: str, params: dict[str, str], token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}


def test_authenticates_a_post_over_its_url_query_and_fields(bare_app: Flask) -> None:
    check = twilio_signature()
    fields = {"CallSid": "CA1", "CallStatus": "ringing"}
    url = "http://localhost/twiml/status?a=1&b=%C3%A9"
    with bare_app.test_request_context(
        "/twiml/status?a=1&b=%C3%A9", method="POST", data=fields, headers=_signed(url, fields)
    ):
        assert check()
    # The query alone is not the fields: signed without the query it fails.
    with bare_app.test_request_context(
        "/twiml/status?a=1&b=%C3%A9",
        method="POST",
        data=fields,
        headers=_signed("http://localhost/twiml/status", fields),
    ):
        assert not check()


def test_a_get_is_signed_over_its_url_alone(bare_app: Flask) -> None:
    check = twilio_signature()
    url = "http://localhost/twiml/status?CallSid=CA1&CallStatus=ringing"
    with bare_app.test_request_context(url, headers=_signed(url, {})):
        assert check()
    with bare_app.test_request_context(
        url, headers=_signed(url, {"CallSid": "CA1", "CallStatus": "ringing"})
    ):
        assert not check()


def test_public_url_replaces_the_address_seen_behind_a_proxy(bare_app: Flask) -> None:
    bare_app.config["PUBLIC_URL"] = "https://glue.example.com/"
    check = twilio_signature()
    for signed in [
        "https://glue.example.com/twiml/status",
        "https://glue.example.com:443/twiml/status",
    ]:
        with bare_app.test_request_context(
            "/twiml/status", method="POST", data={"a": "1"}, headers=_signed(signed, {"a": "1"})
        ):
            assert check()
    with bare_app.test_request_context(
        "/twiml/status",
        method="POST",
        data={"a": "1"},
        headers=_signed("http://localhost/twiml/status", {"a": "1"}),
    ):
        assert not check()


def test_fails_closed_without_header_or_token(bare_app: Flask) -> None:
    fields = {"CallSid": "CA1"}
    headers = _signed("http://localhost/twiml/status", fields)
    with bare_app.test_request_context("/twiml/status", method="POST", data=fields):
        assert not twilio_signature()()
    bare_app.config["TWILIO_AUTH_TOKEN"] = ""
    with bare_app.test_request_context(
        "/twiml/status", method="POST", data=fields, headers=headers
    ):
        assert not twilio_signature()()
    bare_app.config["OTHER_TOKEN"] = TOKEN
    with bare_app.test_request_context(
        "/twiml/status", method="POST", data=fields, headers=headers
    ):
        assert twilio_signature("OTHER_TOKEN")()


def test_the_published_vector_through_the_authenticator(bare_app: Flask) -> None:
    bare_app.config.update(PUBLIC_URL="https://mycompany.com", TWILIO_AUTH_TOKEN=VECTOR_TOKEN)
    check = twilio_signature()
    vector = {SIGNATURE_HEADER: VECTOR_SIGNATURE}
    path = "/myapp.php?foo=1&bar=2"
    with bare_app.test_request_context(path, method="POST", data=VECTOR_PARAMS, headers=vector):
        assert check()
    changed = {**VECTOR_PARAMS, "Digits": "1235"}
    with bare_app.test_request_context(path, method="POST", data=changed, headers=vector):
        assert not check()


# --- twilio-python 9.13's schemes, function against function -----------------------

# Path text: anything but what would end the path (`?`, `#`) and `;`, whose empty
# ;params twilio-python drops from the URL (a difference of its own, tested below).
_PATH_CHARS = st.one_of(
    st.sampled_from(string.ascii_letters + "-_.~%@:!$&'()*+,=éß€😀 "),
    st.characters(codec="utf-8", exclude_characters="?#;/"),
)
_FREE_CHARS = st.one_of(st.sampled_from(_CHARS), st.characters(codec="utf-8"))
_NAME = st.text(_FREE_CHARS, min_size=1, max_size=6)
_VALUE = st.one_of(st.just(""), st.text(_FREE_CHARS, max_size=10))
_HOSTS = st.one_of(
    st.sampled_from(["glue.example.com", "localhost", "127.0.0.1", "a-b.example.org"]),
    st.from_regex(r"[a-zA-Z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z]{2,5}){0,2}", fullmatch=True),
)
_PORTS = st.one_of(
    st.sampled_from(["", "", ":", ":80", ":443", ":8080", ":5000"]),
    st.integers(1, 65535).map(lambda port: f":{port}"),
)
_ALGORITHMS = [None, "", "HMAC_SHA1", "HMAC_SHA256", "hmac_sha256", "Hmac_Sha1", "HMAC_MD5"]


def _query_part(text: str, encode: bool) -> str:
    """As a client writes it: percent-encoded, or raw (`&=#` still encoded)."""
    return quote(text, safe="") if encode else quote(text, safe="".join(set(text) - set("&=#%")))


@dataclass(frozen=True)
class Case:
    token: str
    url: str
    content: MultiDict[str, str] | str  # the POST fields, or a JSON body
    signature: str
    algorithm: str | None


def _tampered(fields: MultiDict[str, str]) -> MultiDict[str, str]:
    changed = MultiDict(fields)
    changed.add("Tampered", "1")
    return changed


@st.composite
def cases(draw: st.DrawFn) -> Case:
    scheme = draw(st.sampled_from(["http", "https", "HTTPS"]))
    host, port = draw(_HOSTS), draw(_PORTS)
    segments = draw(st.lists(st.text(_PATH_CHARS, min_size=1, max_size=6), max_size=3))
    path = draw(st.sampled_from(["/", ""])) if not segments else "/" + "/".join(segments)
    encode = draw(st.booleans())
    query = [
        (_query_part(name, encode), _query_part(value, encode))
        for name, value in draw(st.lists(st.tuples(_NAME, _VALUE), max_size=3))
    ]
    content: MultiDict[str, str] | str
    if draw(st.booleans()):  # a JSON body, its hash in the query
        document = draw(st.dictionaries(_NAME, st.one_of(_VALUE, st.integers()), max_size=4))
        content = json.dumps(document, ensure_ascii=draw(st.booleans()))
        right = hashlib.sha256(content.encode()).hexdigest()
        wrong = hashlib.sha256(content.encode() + b" ").hexdigest()
        sent_hash = draw(st.sampled_from([right, right, right.upper(), right[:-1], wrong]))
        query.insert(draw(st.integers(0, len(query))), ("bodySHA256", sent_hash))
        signed_content: MultiDict[str, str] = draw(
            st.sampled_from([MultiDict(), MultiDict([("a", "1")])])
        )
    else:
        names = draw(st.lists(_NAME, min_size=1, max_size=4))  # so that names repeat
        content = MultiDict(draw(st.lists(st.tuples(st.sampled_from(names), _VALUE), max_size=8)))
        signed_content = draw(st.sampled_from([content, _tampered(content)]))
    tail = path + ("?" + "&".join(f"{n}={v}" for n, v in query) if query else "")
    url = f"{scheme}://{host}{port}{tail}"
    default = ":443" if scheme.lower() == "https" else ":80"
    other = "http" if scheme.lower() == "https" else "https"
    signed_url = draw(
        st.sampled_from(
            [
                url,
                f"{scheme}://{host}{tail}",
                f"{scheme}://{host}{default}{tail}",
                f"{scheme}://{host}:8443{tail}",
                f"{other}://{host}{port}{tail}",
                url + ("&" if query else "?") + "x=1",
            ]
        )
    )
    token = draw(st.text(_FREE_CHARS, min_size=1, max_size=20))
    signer = RequestValidator(draw(st.sampled_from([token, token, token + "x", ""])))
    signature = draw(
        st.one_of(
            st.builds(
                signer.compute_signature,
                st.just(signed_url),
                st.just(signed_content),
                st.sampled_from([HMAC_SHA1, HMAC_SHA256]),
            ),
            st.text(max_size=30),
        )
    )
    return Case(token, url, content, signature, draw(st.sampled_from(_ALGORITHMS)))


@examples(10)
@given(case=cases())
def test_agrees_with_request_validator_validate(case: Case) -> None:
    twilio = RequestValidator(case.token).validate(
        case.url, case.content, case.signature, case.algorithm
    )
    event(f"{'json' if isinstance(case.content, str) else 'form'}: valid={twilio}")
    assert valid_signature(case.token, case.url, case.content, case.signature, case.algorithm) is (
        twilio
    )
    if isinstance(case.content, str):  # the raw body as Glue reads it
        raw = case.content.encode()
        assert valid_signature(case.token, case.url, raw, case.signature, case.algorithm) is twilio


@examples(5)
@given(case=cases(), algorithm=st.sampled_from([None, HMAC_SHA1, HMAC_SHA256, "hmac_sha256"]))
def test_a_request_signed_as_sent_passes_both(case: Case, algorithm: str | None) -> None:
    """So that agreeing is more than both saying no."""
    url = urlsplit(case.url).geturl()  # the scheme in lower case, as both read URLs
    fields: MultiDict[str, str] = MultiDict()
    if isinstance(case.content, str):
        right = hashlib.sha256(case.content.encode()).hexdigest()
        url = urlsplit(url)._replace(query=f"bodySHA256={right}").geturl()
    else:
        fields = case.content
    signature = RequestValidator(case.token).compute_signature(url, fields, algorithm)
    note(f"{url} {signature}")
    assert compute_signature(case.token, url, fields, algorithm) == signature
    assert RequestValidator(case.token).validate(url, case.content, signature, algorithm)
    assert valid_signature(case.token, url, case.content, signature, algorithm)


_SETTING_PARTS = st.one_of(
    st.sampled_from(
        [
            "key=webhooks_sharedkey_01",
            "algorithm=HMAC_SHA256",
            "algorithm=HMAC_SHA1",
            " algorithm = hmac_sha256 ",
            "algorithm=",
            "algorithm= ",
            "algorithm",
            "Algorithm=HMAC_SHA256",
            "algorithm==x",
            "algorithm=HMAC_MD5",
            "",
        ]
    ),
    st.text(max_size=12),
)


@examples(10)
@given(header=st.one_of(st.none(), st.lists(_SETTING_PARTS, max_size=4).map(",".join)))
def test_the_settings_header_is_read_as_twilio_python_reads_it(header: str | None) -> None:
    assert (named_algorithm(header) or HMAC_SHA1) == get_signature_algorithm(header)


@pytest.mark.parametrize(
    ("header", "named"),
    [
        (None, None),
        ("", None),
        ("key=webhooks_sharedkey_01", None),
        ("algorithm=,key=k", None),
        ("key=webhooks_sharedkey_01,algorithm=HMAC_SHA256", "HMAC_SHA256"),
        (" algorithm = hmac_sha256 ,algorithm=HMAC_SHA1", "hmac_sha256"),
        ("algorithm=HMAC_SHA1", "HMAC_SHA1"),
        ("Algorithm=HMAC_SHA256", None),
    ],
)
def test_which_settings_headers_name_an_algorithm(header: str | None, named: str | None) -> None:
    assert named_algorithm(header) == named


def test_a_raw_body_without_its_hash_in_the_url_matches_nothing() -> None:
    """Nothing would cover it (twilio-python raises for such a body)."""
    url = "https://h/twiml/status"
    signature = RequestValidator("t").compute_signature(url, {})
    assert valid_signature("t", url, {}, signature)
    bodies: list[str | bytes] = [b"", b"{}", "{}"]
    for body in bodies:
        assert not valid_signature("t", url, body, signature)
        assert not valid_signature("t", url + "?bodySHA256=", body, signature)


def test_unsupported_algorithms_fail_and_compute_nothing() -> None:
    signature = compute_signature("t", "https://h/p", {"a": "1"})
    assert not valid_signature("t", "https://h/p", {"a": "1"}, signature, "HMAC_MD5")
    with pytest.raises(ValueError, match="HMAC_MD5"):
        compute_signature("t", "https://h/p", {}, "HMAC_MD5")


def test_an_empty_path_param_is_kept_where_twilio_python_drops_it() -> None:
    """urlparse drops an empty `;` from the path: twilio-python then checks another URL."""
    url = "https://h/twiml/verify_caller;?a=1"
    as_signed = compute_signature("t", url, {})
    assert valid_signature("t", url, {}, as_signed)
    assert not RequestValidator("t").validate(url, {}, as_signed)


# --- the authenticator: which secret, which algorithm, what body --------------------

SECONDARY = "secondary-token"
SIGNING_KEY = "shared-key-secret"
KEY_ID = "webhooks_sharedkey_0123456789abcdef"
SHARED = {SETTINGS_HEADER: f"key={KEY_ID},algorithm=HMAC_SHA256"}


def _signature(secret: str, url: str, params: dict[str, str], algorithm: str | None = None) -> str:
    return RequestValidator(secret).compute_signature(url, params, algorithm)


def _passes(
    app: Flask,
    signature: str,
    headers: dict[str, str] | None = None,
    *,
    path: str = "/twiml/status",
    method: str = "POST",
    data: bytes | dict[str, str] | None = None,
    content_type: str | None = None,
) -> bool:
    """Whether this request, with `signature`, is authenticated."""
    with app.test_request_context(
        path,
        method=method,
        headers={SIGNATURE_HEADER: signature, **(headers or {})},
        data=data,
        content_type=content_type,
    ):
        return twilio_signature()()


STATUS_URL = "http://localhost/twiml/status"
FIELDS = {"CallSid": "CA1", "CallStatus": "completed"}


def test_either_auth_token_passes_during_a_rotation(bare_app: Flask) -> None:
    bare_app.config["TWILIO_AUTH_TOKEN_SECONDARY"] = SECONDARY
    for token in (TOKEN, SECONDARY):
        assert _passes(bare_app, _signature(token, STATUS_URL, FIELDS), data=FIELDS)
    for token in ("a third token", SIGNING_KEY, ""):
        assert not _passes(bare_app, _signature(token, STATUS_URL, FIELDS), data=FIELDS)
    # The secondary one alone also does (the primary being the one revoked).
    bare_app.config["TWILIO_AUTH_TOKEN"] = ""
    assert _passes(bare_app, _signature(SECONDARY, STATUS_URL, FIELDS), data=FIELDS)
    assert not _passes(bare_app, _signature(TOKEN, STATUS_URL, FIELDS), data=FIELDS)


def test_without_a_secondary_token_an_empty_key_signs_nothing(bare_app: Flask) -> None:
    for unset in (None, ""):
        bare_app.config["TWILIO_AUTH_TOKEN_SECONDARY"] = unset
        assert not _passes(bare_app, _signature("", STATUS_URL, FIELDS), data=FIELDS)
        assert _passes(bare_app, _signature(TOKEN, STATUS_URL, FIELDS), data=FIELDS)


@pytest.mark.parametrize(
    ("header", "algorithm"),
    [
        (f"key={KEY_ID},algorithm=HMAC_SHA256", HMAC_SHA256),
        (f"algorithm=hmac_sha256, key={KEY_ID}", HMAC_SHA256),
        (f"key={KEY_ID},algorithm=HMAC_SHA1", HMAC_SHA1),
    ],
)
def test_a_shared_key_signature_is_checked_with_the_signing_key(
    bare_app: Flask, header: str, algorithm: str
) -> None:
    bare_app.config.update(
        TWILIO_WEBHOOK_SIGNING_KEY=SIGNING_KEY, TWILIO_AUTH_TOKEN_SECONDARY=SECONDARY
    )
    settings = {SETTINGS_HEADER: header}
    signed = _signature(SIGNING_KEY, STATUS_URL, FIELDS, algorithm)
    assert _passes(bare_app, signed, settings, data=FIELDS)
    assert not _passes(bare_app, signed, settings, data={**FIELDS, "CallStatus": "failed"})
    assert not _passes(bare_app, signed, data=FIELDS)  # no header: the auth tokens' scheme
    other = HMAC_SHA1 if algorithm == HMAC_SHA256 else HMAC_SHA256
    for secret, signed_with in [
        (SIGNING_KEY, other),  # not the algorithm the header names
        (TOKEN, algorithm),  # the auth tokens are not the shared key
        (SECONDARY, algorithm),
        (KEY_ID, algorithm),  # the header's key is the key's id, not its secret
        ("", algorithm),
    ]:
        forged = _signature(secret, STATUS_URL, FIELDS, signed_with)
        assert not _passes(bare_app, forged, settings, data=FIELDS), (secret, signed_with)


def test_a_header_without_an_algorithm_is_the_auth_token_scheme(bare_app: Flask) -> None:
    bare_app.config["TWILIO_WEBHOOK_SIGNING_KEY"] = SIGNING_KEY
    for header in (f"key={KEY_ID}", "", "algorithm="):
        settings = {SETTINGS_HEADER: header}
        assert _passes(bare_app, _signature(TOKEN, STATUS_URL, FIELDS), settings, data=FIELDS)
        shared = _signature(SIGNING_KEY, STATUS_URL, FIELDS)
        assert not _passes(bare_app, shared, settings, data=FIELDS)


def test_an_unset_signing_key_accepts_no_shared_key_signature(bare_app: Flask) -> None:
    for unset in (None, ""):
        bare_app.config["TWILIO_WEBHOOK_SIGNING_KEY"] = unset
        for secret in ("", KEY_ID, TOKEN):
            forged = _signature(secret, STATUS_URL, FIELDS, HMAC_SHA256)
            assert not _passes(bare_app, forged, SHARED, data=FIELDS)


def test_an_unsupported_algorithm_is_refused(bare_app: Flask) -> None:
    bare_app.config["TWILIO_WEBHOOK_SIGNING_KEY"] = SIGNING_KEY
    md5 = {SETTINGS_HEADER: f"key={KEY_ID},algorithm=HMAC_MD5"}
    for secret in (SIGNING_KEY, TOKEN):
        assert not _passes(bare_app, _signature(secret, STATUS_URL, FIELDS), md5, data=FIELDS)


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def test_a_json_body_is_checked_against_its_hash(bare_app: Flask) -> None:
    body = json.dumps({"CallSid": "CA1", "CallStatus": "completed", "Note": "é"}).encode()
    path = f"/twiml/status?bodySHA256={_sha256(body)}"
    url = "http://localhost" + path
    signed = _signature(TOKEN, url, {})

    def sent(
        signature: str, data: bytes, at: str = path, headers: dict[str, str] | None = None
    ) -> bool:
        return _passes(
            bare_app, signature, headers, path=at, data=data, content_type="application/json"
        )

    assert sent(signed, body)
    # The body changed, the hash in the URL not; the hash changed, not signed.
    changed = body.replace(b"completed", b"failed")
    assert not sent(signed, changed)
    assert not sent(signed, changed, at=f"/twiml/status?bodySHA256={_sha256(changed)}")
    # Signed as if the body were fields: not what Twilio signs for a JSON body.
    assert not sent(_signature(TOKEN, url, {"a": "1"}), body)
    # The shared key's scheme hashes the body the same way.
    bare_app.config["TWILIO_WEBHOOK_SIGNING_KEY"] = SIGNING_KEY
    shared = _signature(SIGNING_KEY, url, {}, HMAC_SHA256)
    assert sent(shared, body, headers=SHARED)
    assert not sent(shared, changed, headers=SHARED)


def test_a_body_hash_in_the_url_covers_a_form_body_too(bare_app: Flask) -> None:
    """The signed URL says the body is hashed: its fields are then not what is signed,
    whatever the content type (else a signed JSON request could be replayed with
    any form body that parses to no field)."""
    path = f"/twiml/status?bodySHA256={_sha256(b'a=1')}"
    url = "http://localhost" + path
    assert _passes(bare_app, _signature(TOKEN, url, {}), data={"a": "1"}, path=path)
    assert not _passes(bare_app, _signature(TOKEN, url, {"a": "1"}), data={"a": "1"}, path=path)
    assert not _passes(bare_app, _signature(TOKEN, url, {}), data={"a": "2"}, path=path)
    unparsed = _signature(TOKEN, url, {})
    assert not _passes(bare_app, unparsed, data=b"a=2", content_type="text/plain", path=path)
    # A GET's empty body has a hash too.
    get = f"/twiml/status?bodySHA256={_sha256(b'')}"
    signed = _signature(TOKEN, "http://localhost" + get, {})
    assert _passes(bare_app, signed, path=get, method="GET")


def test_a_body_too_large_to_hash_is_not_authenticated(bare_app: Flask) -> None:
    bare_app.config["MAX_CONTENT_LENGTH"] = 100
    body = b"{" + b" " * 200 + b"}"
    path = f"/twiml/status?bodySHA256={_sha256(body)}"
    signed = _signature(TOKEN, "http://localhost" + path, {})
    assert not _passes(bare_app, signed, data=body, content_type="application/json", path=path)
    bare_app.config["MAX_CONTENT_LENGTH"] = 1000
    assert _passes(bare_app, signed, data=body, content_type="application/json", path=path)


NAMED_PART = b'--B\r\nContent-Disposition: form-data; name="CallSid"\r\n\r\nCA1\r\n'
MULTIPART = "multipart/form-data; boundary=B"


def test_a_multipart_part_without_a_name_is_left_out_of_the_fields(bare_app: Flask) -> None:
    body = NAMED_PART + b"--B\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--B--\r\n"
    signed = _signature(TOKEN, STATUS_URL, {"CallSid": "CA1"})
    assert _passes(bare_app, signed, data=body, content_type=MULTIPART)
    assert not _passes(bare_app, "forged", data=body, content_type=MULTIPART)
    unsigned_part = _signature(TOKEN, STATUS_URL, {})
    assert not _passes(bare_app, unsigned_part, data=body, content_type=MULTIPART)


def test_a_part_without_content_disposition_leaves_no_field(bare_app: Flask) -> None:
    """werkzeug gives up on such a body: no field is read, so none is signed."""
    body = NAMED_PART + b"--B\r\nContent-Type: text/plain\r\n\r\nno disposition\r\n--B--\r\n"
    signed = _signature(TOKEN, STATUS_URL, {"CallSid": "CA1"})
    assert not _passes(bare_app, signed, data=body, content_type=MULTIPART)
    assert _passes(bare_app, signed, data={"CallSid": "CA1"})


# --- generated requests through the authenticator -------------------------------------

# (settings header, whether it names an algorithm: then the shared key signs)
_SETTINGS = [
    (None, False),
    (f"key={KEY_ID}", False),
    ("algorithm=,key=k", False),
    (f"key={KEY_ID},algorithm=HMAC_SHA256", True),
    (" algorithm = hmac_sha256 ", True),
    (f"algorithm=HMAC_SHA1,key={KEY_ID}", True),
    ("algorithm=HMAC_MD5", True),
]


@dataclass(frozen=True)
class Sent:
    """A request as a client may send it (test_request_context's arguments)."""

    path: str
    method: str
    data: bytes | MultiDict[str, str] | None = None
    content_type: str | None = None

    def context(self, app: Flask, headers: dict[str, str] | None = None) -> RequestContext:
        return app.test_request_context(
            self.path,
            method=self.method,
            data=self.data,
            content_type=self.content_type,
            headers=headers,
        )


@st.composite
def sent_requests(draw: st.DrawFn) -> Sent:
    method = draw(st.sampled_from(["POST", "POST", "GET"]))
    encode = draw(st.booleans())
    segment = draw(st.text(_PATH_CHARS, min_size=1, max_size=8))
    query = [
        (_query_part(name, encode), _query_part(value, encode))
        for name, value in draw(st.lists(st.tuples(_NAME, _VALUE), max_size=3))
    ]
    data: bytes | MultiDict[str, str] | None = None
    content_type = None
    if method == "POST" and draw(st.booleans()):
        document = draw(st.dictionaries(_NAME, _VALUE, max_size=4))
        data = json.dumps(document, ensure_ascii=draw(st.booleans())).encode()
        sent_hash = draw(st.sampled_from([_sha256(data), _sha256(data), _sha256(b"")]))
        query.append(("bodySHA256", sent_hash))
        content_type = "application/json"
    elif method == "POST":
        names = draw(st.lists(_NAME, min_size=1, max_size=4))
        data = MultiDict(draw(st.lists(st.tuples(st.sampled_from(names), _VALUE), max_size=8)))
    tail = "?" + "&".join(f"{n}={v}" for n, v in query) if query else ""
    return Sent("/twiml/" + quote(segment, safe="") + tail, method, data, content_type)


@examples(5)
@given(
    sent=sent_requests(),
    settings=st.sampled_from(_SETTINGS),
    secret=st.sampled_from([TOKEN, SECONDARY, SIGNING_KEY, KEY_ID, ""]),
    algorithm=st.sampled_from([HMAC_SHA1, HMAC_SHA256]),
    url_form=st.sampled_from(["as sent", "port", "https", "tampered"]),
    tamper=st.booleans(),
)
def test_generated_requests_agree_with_request_validator(
    bare_app: Flask,
    sent: Sent,
    settings: tuple[str | None, bool],
    secret: str,
    algorithm: str,
    url_form: str,
    tamper: bool,
) -> None:
    """The authenticator says what RequestValidator.validate says of the request werkzeug
    parsed, given the secrets the settings header selects (the shared key when it names
    an algorithm, else either auth token) and the algorithm it names."""
    bare_app.config.update(
        TWILIO_AUTH_TOKEN_SECONDARY=SECONDARY, TWILIO_WEBHOOK_SIGNING_KEY=SIGNING_KEY
    )
    header, names_algorithm = settings
    with sent.context(bare_app):
        url = request.base_url
        if request.query_string:
            url += "?" + request.query_string.decode("utf-8", errors="replace")
        content: MultiDict[str, str] | str
        if "bodySHA256" in parse_qs(urlsplit(url).query):
            content = request.get_data(as_text=True)
            signed: MultiDict[str, str] = MultiDict()
        else:
            content = MultiDict(request.form) if sent.method == "POST" else MultiDict()
            signed = content
    if tamper:
        signed = _tampered(signed)
    signed_url = {
        "as sent": url,
        "port": url.replace("localhost", "localhost:80", 1),
        "https": url.replace("http:", "https:", 1),
        "tampered": url.replace("/twiml/", "/twiml/x", 1),
    }[url_form]
    signature = RequestValidator(secret).compute_signature(signed_url, signed, algorithm)
    secrets = [SIGNING_KEY] if names_algorithm else [TOKEN, SECONDARY]
    twilio = any(
        RequestValidator(s).validate(url, content, signature, get_signature_algorithm(header))
        for s in secrets
    )
    event(f"valid={twilio}")
    headers = {SIGNATURE_HEADER: signature}
    if header is not None:
        headers[SETTINGS_HEADER] = header
    with sent.context(bare_app, headers):
        assert twilio_signature()() is twilio
