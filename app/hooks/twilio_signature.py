"""Twilio's request signature (`X-Twilio-Signature`), checked without the twilio package.

The signature is base64(HMAC-SHA1(auth token, URL + name + value ...)), the
POST fields sorted by name. It behaves as twilio-python's RequestValidator:

- the URL is tried without its port and with the scheme's default port added
  (443 for https, 80 for http) when it has none, because Twilio signs either
  form of the same URL; like twilio-python, a port in the URL is also removed
  in the first form, whichever port it is;
- a field sent several times counts once per distinct value, values sorted;
- GET requests carry no fields: their query is part of the signed URL.

Unlike twilio-python, the port is cut off the host alone (user:password@ and
[IPv6] hosts keep their colons), the path is kept as signed (a `;` too), an
unreadable port fails instead of raising, and signatures are compared with
hmac.compare_digest. Only form bodies are supported (no `bodySHA256` JSON
bodies) and only the auth token's HMAC-SHA1.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from urllib.parse import SplitResult, urlsplit

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.hooks.platform import public_url

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"
DEFAULT_PORTS = {"https": 443, "http": 80}

Params = Mapping[str, str | list[str]]


def compute_signature(token: str, url: str, params: Params) -> str:
    """The signature Twilio sends for a request to `url` with fields `params`."""
    signed = url
    for name in sorted(set(params)):
        for value in sorted(set(_values(params, name))):
            signed += name + value
    digest = hmac.new(token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def valid_signature(token: str, url: str, params: Params, signature: str) -> bool:
    """Whether `signature` is Twilio's for this request; an empty token never matches."""
    if not token or not signature:
        return False
    try:
        candidates = _url_forms(url)
    except ValueError:  # an unreadable port: not a URL Twilio signed
        return False
    given = signature.encode()
    matches = [
        hmac.compare_digest(compute_signature(token, candidate, params).encode(), given)
        for candidate in candidates
    ]
    return any(matches)


def twilio_signature(config_key: str = "TWILIO_AUTH_TOKEN") -> Callable[[], bool]:
    """An authenticator: the current request carries Twilio's signature for its public URL."""

    def authenticate() -> bool:
        token = current_app.config.get(config_key) or ""
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not token or not signature:
            return False
        url = public_url()
        if request.query_string:
            url += "?" + request.query_string.decode("utf-8", errors="replace")
        try:
            params: Params = request.form if request.method == "POST" else {}
        except RequestEntityTooLarge:
            # The signature covers the body, and it is too large to read: not
            # authenticated (so the 413 that follows is a bare 403, never XML).
            return False
        ok = valid_signature(token, url, params, signature)
        if not ok:
            # The URL, not the fields: the usual cause is a proxy (GLUE_PUBLIC_URL unset).
            log.warning("Twilio signature does not match %s", public_url())
        return ok

    return authenticate


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
