"""Twilio's request signature (`X-Twilio-Signature`), checked without the twilio package.

The signature is base64(HMAC(secret, URL + name + value ...)), the POST fields
sorted by name. It behaves as twilio-python's RequestValidator.validate, given
the request's public URL, its fields (or its raw body, see below) and the
algorithm its settings header names (that package, with the HTTP clients it
brings, is only a test dependency: the tests hold the two to the same answers):

- which secret and hash: a request whose `X-Twilio-Webhooks-Signature-Settings`
  header names an algorithm (`key=<key id>,algorithm=HMAC_SHA256`: the first
  non-empty `algorithm=`, its value in any letter case) was signed with a
  webhook shared key, and is checked with GLUE_TWILIO_WEBHOOK_SIGNING_KEY and
  that algorithm (HMAC_SHA256 or HMAC_SHA1; any other fails). The header's
  `key=` is the key's id, not its secret: it is never used as a key. Without
  that header, or without an algorithm in it, the request was signed with the
  account's auth token and HMAC-SHA1: GLUE_TWILIO_AUTH_TOKEN, or during a
  rotation GLUE_TWILIO_AUTH_TOKEN_SECONDARY, each accepted. An unset secret
  matches nothing;
- the URL is tried without its port and with the scheme's default port added
  (443 for https, 80 for http) when it has none, because Twilio signs either
  form of the same URL; like twilio-python, a port in the URL is also removed
  in the first form, whichever port it is;
- a field sent several times counts once per distinct value, values sorted;
- GET requests carry no fields: their query is part of the signed URL;
- a URL whose query carries `bodySHA256` (a JSON body) is signed over the URL
  alone, and the raw body's SHA-256 (lower-case hex) must equal the first such
  value; whatever the body's content type, since the signed URL says the body
  is hashed.

Unlike twilio-python, the port is cut off the host alone (user:password@ and
[IPv6] hosts keep their colons), the path is kept as signed (a `;` too), an
unreadable port fails instead of raising, port 0 counts as a port, and
signatures and body hashes are compared with hmac.compare_digest. A multipart
part without a name (werkzeug keys it None) is left out of the signed fields,
as Glue never reads it (app/hooks/fields.py), instead of breaking the sort.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from urllib.parse import SplitResult, parse_qs, urlsplit

from flask import current_app, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge

from app.hooks.platform import public_url

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
HMAC_SHA1 = "HMAC_SHA1"
HMAC_SHA256 = "HMAC_SHA256"
HASHES = {HMAC_SHA1: hashlib.sha1, HMAC_SHA256: hashlib.sha256}
BODY_HASH_PARAM = "bodySHA256"
DEFAULT_PORTS = {"https": 443, "http": 80}

Params = Mapping[str, str | list[str]]


def compute_signature(token: str, url: str, params: Params, algorithm: str | None = None) -> str:
    """The signature Twilio sends for a request to `url` with fields `params`.

    `algorithm`: HMAC_SHA1 (None, the default) or HMAC_SHA256, in any case;
    any other raises ValueError.
    """
    hash_function = HASHES.get((algorithm or HMAC_SHA1).upper())
    if hash_function is None:
        raise ValueError(f"unsupported Twilio signature algorithm {algorithm!r:.40}")
    signed = url
    for name in sorted(set(params)):
        for value in sorted(set(_values(params, name))):
            signed += name + value
    digest = hmac.new(token.encode(), signed.encode(), hash_function).digest()
    return base64.b64encode(digest).decode()


def named_algorithm(settings_header: str | None) -> str | None:
    """The algorithm a signature settings header names, as written; None when it
    names none (then the request is signed with the auth token and HMAC_SHA1)."""
    for part in (settings_header or "").split(","):
        name, separator, value = part.partition("=")
        if separator and name.strip() == "algorithm" and value.strip():
            return value.strip()
    return None


def valid_signature(
    token: str,
    url: str,
    params: Params | str | bytes,
    signature: str,
    algorithm: str | None = None,
) -> bool:
    """Whether `signature` is Twilio's for this request; an empty token never matches.

    `params` are the POST fields, or the raw body when the URL's query carries
    `bodySHA256` (a raw body without it matches nothing: nothing covers it).
    """
    if not token or not signature:
        return False
    if (algorithm or HMAC_SHA1).upper() not in HASHES:
        log.warning("Twilio signature algorithm %.40r is not supported", algorithm)
        return False
    try:
        candidates = _url_forms(url)
    except ValueError:  # an unreadable port: not a URL Twilio signed
        return False
    fields: Params = {}
    if isinstance(params, str | bytes):
        expected = body_hash(url)
        if expected is None:
            return False
        body = params.encode() if isinstance(params, str) else params
        if not hmac.compare_digest(hashlib.sha256(body).hexdigest().encode(), expected.encode()):
            return False
    else:
        fields = params
    given = signature.encode()
    matches = [
        hmac.compare_digest(compute_signature(token, candidate, fields, algorithm).encode(), given)
        for candidate in candidates
    ]
    return any(matches)


def body_hash(url: str) -> str | None:
    """The body's SHA-256 that `url` names (its first non-empty `bodySHA256`), if any."""
    values = parse_qs(urlsplit(url).query).get(BODY_HASH_PARAM)
    return values[0] if values else None


def twilio_signature(
    config_key: str = "TWILIO_AUTH_TOKEN",
    secondary_key: str = "TWILIO_AUTH_TOKEN_SECONDARY",
    signing_key: str = "TWILIO_WEBHOOK_SIGNING_KEY",
) -> Callable[[], bool]:
    """An authenticator: the current request carries Twilio's signature for its public URL.

    Signed with the auth token in `config_key` or the one in `secondary_key`, or,
    when its settings header names an algorithm, with the shared key in `signing_key`.
    """

    def authenticate() -> bool:
        signature = request.headers.get(SIGNATURE_HEADER, "")
        named = named_algorithm(request.headers.get(SETTINGS_HEADER))
        config = current_app.config
        if named is None:
            configured = [config.get(config_key), config.get(secondary_key)]
        else:
            configured = [config.get(signing_key)]
        tokens = [secret for secret in configured if secret]
        if not tokens or not signature:
            return False
        url = public_url()
        if request.query_string:
            url += "?" + request.query_string.decode("utf-8", errors="replace")
        try:
            params = _signed_content(url)
        except RequestEntityTooLarge:
            # The signature covers the body, and it is too large to read: not
            # authenticated (so the 413 that follows is a bare 403, never XML).
            return False
        algorithm = named or HMAC_SHA1
        ok = any([valid_signature(token, url, params, signature, algorithm) for token in tokens])
        if not ok:
            # The URL, not the fields: the usual cause is a proxy (GLUE_PUBLIC_URL unset).
            log.warning("Twilio signature does not match %s", public_url())
        return ok

    return authenticate


def _signed_content(url: str) -> Params | bytes:
    """What the signature covers besides the URL: the raw body when the URL names
    its hash, else the POST fields."""
    if body_hash(url) is not None:
        return request.get_data()
    if request.method != "POST":
        return {}
    # A multipart part whose name cannot be read is keyed None: no signer can
    # have covered it, and no handler reads it (app/hooks/fields.py).
    return MultiDict(
        [(name, value) for name, value in request.form.items(multi=True) if name is not None]
    )


def _values(params: Params, name: str) -> list[str]:
    getlist = getattr(params, "getlist", None)  # werkzeug's MultiDict: every value
    if getlist is not None:
        return list(getlist(name))
    value = params[name]
    return [value] if isinstance(value, str) else list(value)


def _url_forms(url: str) -> tuple[str, str]:
    """The URL without its port, and with the default port when it names none."""
    parsed = urlsplit(url)  # not urlparse: it drops an empty ;params from the path
    port = parsed.port  # raises ValueError for a port that is no number 0-65535
    if port is None:
        without = parsed.geturl()
        default = DEFAULT_PORTS.get(parsed.scheme, 80)
        with_port = _with_netloc(parsed, f"{parsed.netloc}:{default}")
    else:
        without = _with_netloc(parsed, parsed.netloc[: parsed.netloc.rindex(":")])
        with_port = parsed.geturl()
    return without, with_port


def _with_netloc(parsed: SplitResult, netloc: str) -> str:
    return parsed._replace(netloc=netloc).geturl()
