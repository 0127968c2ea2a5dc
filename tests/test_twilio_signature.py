"""Our X-Twilio-Signature check (app/hooks/twilio_signature.py), against Twilio's
published test vector and against twilio-python's own RequestValidator."""

from __future__ import annotations

import random
import string
from urllib.parse import quote

import pytest
from flask import Flask
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from app.hooks.twilio_signature import compute_signature, twilio_signature, valid_signature

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
