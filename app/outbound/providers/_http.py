"""What every HTTP provider client shares: settings, one exchange, failure classes.

One exchange is one HTTP request, never retried here (a retry could ring a
person twice), with no redirects followed. How it failed decides the outcome:

- nothing sent: bad URL, DNS failure, connection refused, connect timeout, a
  certificate that fails verification → refused (no call can have been placed);
- sent, no clear answer: read timeout, connection dropped before or during the
  answer, any other transport error, HTTP 5xx → ambiguous (it may have rung);
- HTTP 3xx → ambiguous: the redirect is not followed, but the request reached
  the provider's server, which may have acted on it before redirecting;
- HTTP 4xx → refused;
- HTTP 2xx → what the client's parser reads in the body; a parser that fails
  on an odd body gives ambiguous, never an exception.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self
from urllib.parse import quote, quote_plus, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from app.outbound.providers.base import (
    MASK,
    RAW_LIMIT,
    CallResult,
    Outcome,
    e164,
    hide_values,
)

log = logging.getLogger(__name__)

BODY_LIMIT = 64 * 1024  # bytes of an answer read; the documented ones are a few words
DETAIL_LIMIT = 500
USER_AGENT = "glue-call-client/1"
_URL_QUERY = re.compile(r"(url: [^\s?]*)\?\S*")

Encoding = Literal["query", "form", "json"]


@dataclass(frozen=True, kw_only=True)
class HttpSettings:
    """Settings every HTTP client has; each provider adds its credentials."""

    base_url: str
    connect_timeout: float = 5.0  # short: nothing is placed before a connection
    # Long: IfbyPhone, DialogTech and VoIPtech hold the answer until the first
    # leg answers or gives up, tens of seconds.
    read_timeout: float = 60.0
    caller_id: str | None = None  # default caller ID (E.164) when a request has none

    def __post_init__(self) -> None:
        if self.base_url:
            parts = urlsplit(self.base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"provider URL must be http(s)://host/...: {self.base_url!r}")
        if not self.connect_timeout > 0 or not self.read_timeout > 0:
            raise ValueError("provider timeouts must be positive")
        if self.caller_id:
            e164(self.caller_id, "the default caller ID")  # a ValueError if it is not

    def missing(self) -> list[str]:
        """The unset settings the provider needs, as the GLUE_* variables that set them."""
        return []


@dataclass(frozen=True)
class Answer:
    """An HTTP answer as the parsers see it."""

    status: int
    body: bytes
    text: str
    content_type: str


@dataclass(frozen=True)
class Reading:
    """What a parser made of a 2xx answer."""

    outcome: Outcome
    detail: str
    call_ids: tuple[str, ...] = ()


class HttpProvider:
    """Base of the clients: a session per client, one exchange per call."""

    name = "http"
    secret_params: frozenset[str] = frozenset()  # parameter names masked in `sent`

    def __init__(self, settings: HttpSettings) -> None:
        self.settings = settings
        self.session = requests.Session()
        # max_retries=0: urllib3 never resends, not even on a dropped connection.
        adapter = HTTPAdapter(max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT

    def cancel(self, provider_call_id: str) -> CallResult:
        """REFUSED: none of these providers (IfbyPhone, DialogTech, DIDforSale,
        VoIPtech) documents a way to end or withdraw a call once asked for."""
        detail = f"{self.name} has no way to end a call in progress"
        return CallResult(Outcome.REFUSED, detail, final=True)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def masked(self, params: Mapping[str, str], hidden: Collection[str] = ()) -> dict[str, str]:
        """The parameters with every secret one replaced by "***", and every
        `hidden` value (a secret inside a parameter, a signed token) too."""
        return {
            key: MASK if key in self.secret_params and value else hide_values(value, hidden)
            for key, value in params.items()
        }

    def scrub(self, text: str, params: Mapping[str, str], hidden: Collection[str] = ()) -> str:
        """`text` with any secret value (as sent, or URL-encoded) masked."""
        values = {params.get(key, "") for key in self.secret_params} | set(hidden)
        forms = {form for v in values if v for form in (v, quote_plus(v), quote(v, safe=""))}
        return hide_values(text, forms)

    def not_configured(
        self, missing: list[str], params: Mapping[str, str], hidden: Collection[str] = ()
    ) -> CallResult:
        """Refused without sending, finally: no retry helps until these settings are set."""
        names = ", ".join(missing)
        return CallResult(
            Outcome.REFUSED,
            f"{self.name} is not configured: set {names}",
            sent=self.masked(params, hidden),
            final=True,
        )

    def exchange(
        self,
        params: Mapping[str, str],
        parse: Callable[[Answer], Reading],
        *,
        method: str = "POST",
        encoding: Encoding | None = None,
        read_timeout: float | None = None,
        hidden: Collection[str] = (),
    ) -> CallResult:
        """Send `params` once and read the answer into a CallResult (never raises).

        Parameters go in the query for GET, else in a form body unless
        `encoding` says "json". `hidden`: secret values inside parameters,
        masked like the secret parameters wherever the result keeps them.
        """
        sent = self.masked(params, hidden)
        encoding = encoding or ("query" if method == "GET" else "form")
        payload: dict[str, Any] = {"params": dict(params)}
        if encoding == "form":
            payload = {"data": dict(params)}
        elif encoding == "json":
            payload = {"json": dict(params)}
        timeout = (self.settings.connect_timeout, read_timeout or self.settings.read_timeout)
        try:
            response = self.session.request(
                method,
                self.settings.base_url,
                timeout=timeout,
                allow_redirects=False,
                stream=True,
                **payload,
            )
            try:
                body = b"".join(_capped(response.iter_content(8192), BODY_LIMIT))
            finally:
                response.close()
        except requests.RequestException as exc:
            outcome, what = classify(exc)
            # urllib3 names the URL, query and all: a GET's would hold the secrets.
            message = _URL_QUERY.sub(r"\1", str(exc))
            detail = self.scrub(f"{what}: {message}", params, hidden)[:DETAIL_LIMIT]
            return CallResult(outcome, detail, sent=sent)
        except Exception as exc:  # not the transport's: a bug, or an odd URL
            # The request may have gone out: never let it become a retry.
            log.exception("%s: unexpected failure placing a call", self.name)
            detail = self.scrub(f"unexpected failure: {type(exc).__name__}", params, hidden)
            return CallResult(Outcome.AMBIGUOUS, detail, sent=sent)

        content_type = response.headers.get("Content-Type", "")
        text = _decode(body, response.encoding if "charset=" in content_type.lower() else None)
        answer = Answer(response.status_code, body, text, content_type)
        raw = self.scrub(text, params, hidden)[:RAW_LIMIT]
        reading = self._read(answer, parse)
        detail = self.scrub(reading.detail, params, hidden)[:DETAIL_LIMIT]
        return CallResult(reading.outcome, detail, reading.call_ids, raw, sent)

    def _read(self, answer: Answer, parse: Callable[[Answer], Reading]) -> Reading:
        status = answer.status
        first_line = answer.text.strip().splitlines()[0][:200] if answer.text.strip() else ""
        if status >= 500:
            return Reading(Outcome.AMBIGUOUS, f"HTTP {status} from {self.name}: {first_line}")
        if status >= 400:
            return Reading(Outcome.REFUSED, f"HTTP {status} from {self.name}: {first_line}")
        if status >= 300:
            # The server had the request: it may have placed the call first.
            return Reading(
                Outcome.AMBIGUOUS,
                f"HTTP {status} from {self.name}: redirect not followed; "
                "the request reached the provider and may have been acted on",
            )
        if status < 200:
            return Reading(Outcome.AMBIGUOUS, f"HTTP {status} from {self.name}")
        try:
            return parse(answer)
        except Exception as exc:  # an odd body must not become a retry
            return Reading(Outcome.AMBIGUOUS, f"unreadable answer from {self.name}: {exc}")


def _decode(body: bytes, charset: str | None) -> str:
    # requests assumes ISO-8859-1 for text/* without a charset: UTF-8 is likelier.
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


def _capped(chunks: Iterator[bytes], limit: int) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        yield chunk[: limit - total]
        total += len(chunk)
        if total >= limit:
            return


def classify(exc: requests.RequestException) -> tuple[Outcome, str]:
    """Whether a transport failure happened before anything was sent."""
    if isinstance(
        exc,
        requests.exceptions.InvalidURL
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema
        | requests.exceptions.InvalidHeader
        | requests.exceptions.URLRequired,
    ):
        return Outcome.REFUSED, "bad provider URL, nothing sent"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Outcome.REFUSED, "connect timeout, nothing sent"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return Outcome.AMBIGUOUS, "no answer within the read timeout"
    causes = list(_causes(exc))
    if any(isinstance(cause, ssl.SSLCertVerificationError) for cause in causes):
        return Outcome.REFUSED, "certificate verification failed, nothing sent"
    if isinstance(exc, requests.exceptions.ConnectionError) and any(
        isinstance(cause, NewConnectionError) for cause in causes
    ):
        # DNS failure (NameResolutionError is a NewConnectionError) or refused.
        return Outcome.REFUSED, "could not connect, nothing sent"
    return Outcome.AMBIGUOUS, "connection failed after sending"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps: args, .reason, causes and contexts."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked += list(current.args)
        todo += [item for item in linked if isinstance(item, BaseException)]
