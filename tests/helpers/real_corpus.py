"""Platform requests as the platforms send them (tests/fixtures/real/), and their replay.

Each YAML file there is one request: where it comes from (`source`), what was
changed (`adapted`), what the source does not say (`notes`), and the request
itself (`method`, `path`, `headers`, `query`, `form`). Form and query values are
what the receiving app reads once the form encoding is undone.

A journey may put its own call ids, caller numbers, keyed digits and secrets in
place of the recorded ones (SUBSTITUTABLE); every other field goes over the
wire as recorded. Twilio requests are signed as Twilio signs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import yaml
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "real"
PLATFORMS = ("twiml", "didml", "voipnow", "ifbyphone")
BASE = "http://localhost"  # the host the test client requests, so the URL Twilio signed

# Fields naming the call, its parties, what the caller keyed, or what Glue itself
# put in the URL or reply: a journey sets them to its own. Nothing else changes.
SUBSTITUTABLE = frozenset(
    {
        # call ids
        "CallSid", "callSid", "callid", "ParentCallSid", "CallID", "CallAPIID", "session_id",
        # numbers of the parties
        "From", "Caller", "callerid", "caller_id", "CallerIDNum",
        # what the caller keyed
        "Digits", "account", "pin", "group",
        # Glue's own: the owner's secret in the URL, and what Glue asked to get back
        "key", "p_t", "glue_turn",
    }
)  # fmt: skip
_FIELDS = {"source", "adapted", "notes", "method", "path", "headers", "query", "form"}
_REQUIRED = {"source", "adapted", "method", "path"}


@dataclass(frozen=True)
class RealRequest:
    """One recorded request, as it would reach Glue."""

    name: str  # e.g. "twiml/inbound"
    source: str
    adapted: str
    method: str
    path: str  # the route, without its query
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    form: Mapping[str, str] = field(default_factory=dict)
    notes: str = ""

    @property
    def platform(self) -> str:
        return self.name.split("/", 1)[0]

    def fields(self) -> dict[str, str]:
        """Everything the request carries, query and form."""
        return {**self.query, **self.form}

    def substituted(self, **values: str) -> RealRequest:
        """The same request with the journey's own values for substitutable fields.

        A field must be substitutable and present where the platform put it:
        a journey may not add, drop or change any other field.
        """
        query, form = dict(self.query), dict(self.form)
        for name, value in values.items():
            if name not in SUBSTITUTABLE:
                raise KeyError(f"{name} is sent as recorded: not substitutable")
            if name not in query and name not in form:
                raise KeyError(f"{self.name} has no field {name}")
            if name in query:
                query[name] = value
            if name in form:
                form[name] = value
        return replace(self, query=query, form=form)

    def at(self, url: str) -> RealRequest:
        """The same request sent to `url` (a `<Gather>` action Glue wrote, say):
        its query replaces the recorded one, as the platform requests the URL it was given."""
        parts = urlsplit(url)
        return replace(self, path=parts.path, query=dict(parse_qsl(parts.query, True)))

    def url(self) -> str:
        query = f"?{urlencode(self.query)}" if self.query else ""
        return f"{BASE}{self.path}{query}"


def names(platform: str | None = None) -> list[str]:
    """Every request of the corpus (of one platform), as `platform/stem`."""
    folders = [platform] if platform else list(PLATFORMS)
    return [f"{p}/{f.stem}" for p in folders for f in sorted((CORPUS / p).glob("*.yaml"))]


def load(name: str) -> RealRequest:
    """The request stored as tests/fixtures/real/<name>.yaml."""
    raw: Any = yaml.safe_load((CORPUS / f"{name}.yaml").read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or not _REQUIRED <= raw.keys() <= _FIELDS:
        raise ValueError(f"{name}: needs {sorted(_REQUIRED)}, may have {sorted(_FIELDS)}")
    parts = urlsplit(raw["path"])
    query = {**dict(parse_qsl(parts.query, True)), **_strings(raw.get("query"))}
    return RealRequest(
        name=name,
        source=raw["source"],
        adapted=raw["adapted"],
        notes=raw.get("notes", ""),
        method=raw["method"],
        path=parts.path,
        headers=_strings(raw.get("headers")),
        query=query,
        form=_strings(raw.get("form")),
    )


def send(client: FlaskClient, request: RealRequest, twilio_token: str = "") -> TestResponse:
    """Send the request as its platform does; Twilio's signed with `twilio_token`."""
    headers = {k: v for k, v in request.headers.items() if k.lower() != "content-type"}
    if request.platform == "twiml":
        # Twilio signs the URL it requests and, for a POST, the form fields.
        signed = request.form if request.method == "POST" else {}
        headers["X-Twilio-Signature"] = RequestValidator(twilio_token).compute_signature(
            request.url(), dict(signed)
        )
    # The URL as one string, so the query goes out exactly as signed.
    return client.open(
        request.url(),
        method=request.method,
        data=dict(request.form) if request.method != "GET" else None,
        headers=headers,
    )


def _strings(value: Any) -> dict[str, str]:
    """A YAML mapping whose values must all be text, as on the wire."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"not a mapping of text to text: {value!r}")
    return dict(value)
