"""VoIPtech Click2Call URL dialling (`https://<host>/API/dialup.php`).

Known (VoIPtech documents it):
- GET or POST, parameters in any order. `user`, `pass`, `org`, `dial1`, `dial2`
  are mandatory: the PBX rings `dial1`, and once it answers rings `dial2`. Each
  is an internal extension, a ring group/queue/IVR/app, or an E.164 number.
- `Response=yes` returns a result; `showUID=yes` (needs Response=yes) adds
  both legs' unique call ids; `RFormat` is text, html, xml or json; `SetCID`
  sets the caller ID (E.164, national or international); `Timeout` is the first
  leg's ring time, 1-300 s (default 20).
- A future call needs `Date` (YYYYMMDDhhmm), `Maxretry` (retries until
  answered), `Retrytime` (time between retries) and `ident`.
- The result is ok when the first leg answers, Fail when it does not (no
  answer, busy, not connected, unreachable).

Assumed (nothing shows the answers themselves):
- The host is each customer's own PBX: there is no default URL.
- The answer's shape: the parser looks, in whichever format comes back, for
  "ok" / "fail" (any case) in a status-like field (status, result, response,
  ...) or else in the text, and for the unique ids in fields named like *uid*
  or written as Asterisk ids (1700000000.123).
- Fail that mentions busy → busy; Fail that reads like a bad request (password,
  login, invalid, missing, parameter ...) → refused; any other Fail → no_answer.
  An answer with neither ok nor fail → ambiguous.
- A future call's ok means it was scheduled (accepted), its Fail that nothing
  was (refused).
- Numbers are sent as digits with the country code and no plus by default
  (PBX dial plans rarely take a plus); configurable.
- `Date` is written in the settings' time zone (UTC by default): the PBX's own
  zone is not documented. `ident` is read as "unique organization
  identification": the settings' value when set, else the request's reference.
  `Retrytime` is taken to be seconds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lxml import etree
from marshmallow import Schema, ValidationError, fields, validates_schema
from marshmallow.validate import Length, OneOf, Range, Regexp

from app.outbound.providers._http import Answer, HttpProvider, HttpSettings, Reading
from app.outbound.providers.base import (
    NUMBER_FORMATS,
    CallRequest,
    CallResult,
    InvalidCallRequest,
    Outcome,
    check,
    drop_empty,
    e164,
    format_number,
    reject_unsupported,
)
from app.outbound.providers.ifbyphone import HTTP_METHODS

RESPONSE_FORMATS = ("text", "html", "xml", "json")
DEFAULT_RING_SECONDS = 20  # the PBX's first-leg timeout when none is sent
ANSWER_MARGIN_SECONDS = 15  # waited beyond the first leg's ring time for the answer

# An extension, ring group, queue or app: digits, * and #. A number is E.164.
_EXTENSION = re.compile(r"[0-9*#]{1,20}")
_DESTINATION = Regexp(r"\A(\+?[1-9][0-9]{6,14}|[0-9*#]{1,20})\Z", error="number or extension")


@dataclass(frozen=True, kw_only=True)
class VoIPtechSettings(HttpSettings):
    base_url: str = ""  # https://<host>/API/dialup.php: the customer's own PBX
    user: str = ""
    password: str = ""
    org: str = ""
    http_method: str = "POST"  # GET or POST; POST keeps the password out of URLs
    response_format: str = "json"  # RFormat asked for; every format is read anyway
    number_format: str = "digits"  # e164 | digits | unformatted
    timezone: str = "UTC"  # the zone `Date` is written in
    ident: str = ""  # future calls: `ident`; empty: the request's reference
    max_retry: int = 2  # future calls: `Maxretry`
    retry_seconds: int = 300  # future calls: `Retrytime`

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.http_method not in HTTP_METHODS:
            raise ValueError(f"VoIPtech method must be GET or POST, not {self.http_method!r}")
        if self.response_format not in RESPONSE_FORMATS:
            raise ValueError(f"VoIPtech RFormat must be one of {RESPONSE_FORMATS}")
        if self.number_format not in NUMBER_FORMATS:
            raise ValueError(f"VoIPtech number format must be one of {NUMBER_FORMATS}")
        if self.max_retry < 0 or self.retry_seconds < 1:
            raise ValueError("VoIPtech Maxretry must be >= 0 and Retrytime >= 1")
        self.zone()

    def zone(self) -> tzinfo:
        if self.timezone.upper() == "UTC":
            return UTC
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None

    def missing(self) -> list[str]:
        wanted = {
            "GLUE_VOIPTECH_URL": self.base_url,
            "GLUE_VOIPTECH_USER": self.user,
            "GLUE_VOIPTECH_PASSWORD": self.password,
            "GLUE_VOIPTECH_ORG": self.org,
        }
        return [name for name, value in wanted.items() if not value]


class DialupSchema(Schema):
    """The documented parameters and limits."""

    user = fields.String()
    pass_ = fields.String(data_key="pass")
    org = fields.String()
    dial1 = fields.String(required=True, validate=_DESTINATION)
    dial2 = fields.String(required=True, validate=_DESTINATION)
    Response = fields.String(validate=OneOf(["yes"]))
    showUID = fields.String(validate=OneOf(["yes"]))
    RFormat = fields.String(validate=OneOf(RESPONSE_FORMATS))
    SetCID = fields.String(validate=Regexp(r"\A\+?[1-9][0-9]{6,14}\Z", error="E.164 number"))
    Timeout = fields.Integer(validate=Range(min=1, max=300))
    Date = fields.String(validate=Regexp(r"\A[0-9]{12}\Z", error="YYYYMMDDhhmm"))
    Maxretry = fields.Integer(validate=Range(min=0))
    Retrytime = fields.Integer(validate=Range(min=1))
    ident = fields.String(validate=Length(min=1, max=64))

    @validates_schema
    def _future_call(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "Date" in data:
            absent = [key for key in ("Maxretry", "Retrytime", "ident") if key not in data]
            if absent:
                raise ValidationError({key: ["required for a future call"] for key in absent})
        if data.get("showUID") and data.get("Response") != "yes":
            raise ValidationError({"showUID": ["needs Response=yes"]})


# Reading the answer, whatever its format.

_STATUS_KEYS = frozenset({"status", "result", "response", "answer", "state", "res"})
_VERDICT = re.compile(r"\b(ok|fail(?:ed|ure)?)\b", re.I)
_UID_NAME = re.compile(r"uid|unique_?id", re.I)  # uid1, UniqueID, dial2_unique_id ...
_KEYED_UID = re.compile(r"\b\w*(?:uid|unique_?id)\w*\s*[:=]\s*\"?([\w.\-]+)", re.I)
_ASTERISK_UID = re.compile(r"\b[0-9]{9,11}\.[0-9]+\b")
_BUSY = re.compile(r"\bbusy\b", re.I)
_BAD_REQUEST = re.compile(
    r"passw|login|authent|unauthori|permission|denied|invalid|missing|mandatory|parameter", re.I
)
_TAGS = re.compile(r"<[^>]*>")
_XML_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)


@dataclass(frozen=True)
class _Parsed:
    verdict: str | None  # "ok", "fail" or None
    call_ids: tuple[str, ...]
    message: str


def parse(answer: Answer) -> _Parsed:
    """Verdict, unique ids and a message from a text, html, xml or json answer."""
    text = answer.text.strip()
    if text[:1] in ("{", "["):
        try:
            return _parse_json(json.loads(text), text)
        except ValueError:
            pass
    lowered = text[:200].lower()
    is_html = "html" in answer.content_type.lower() or lowered.startswith(("<!doctype", "<html"))
    if text.startswith("<") and not is_html:
        try:
            return _parse_xml(etree.fromstring(answer.body, _XML_PARSER))
        except etree.XMLSyntaxError:
            pass
    return _parse_text(" ".join(_TAGS.sub(" ", text).split()))


def _parse_text(text: str) -> _Parsed:
    ids = _KEYED_UID.findall(text) or _ASTERISK_UID.findall(text)
    return _Parsed(_verdict(text), tuple(dict.fromkeys(ids)), text[:200])


def _verdict(text: str) -> str | None:
    found = _VERDICT.search(text)
    if found is None:
        return None
    return "ok" if found.group(1).lower() == "ok" else "fail"


def _parse_json(data: Any, text: str) -> _Parsed:
    statuses: list[str] = []
    ids: list[str] = []
    for key, value in _items(data):
        name = key.lower()
        if name in _STATUS_KEYS and isinstance(value, str):
            statuses.append(value)
        elif _UID_NAME.search(name) and isinstance(value, str | int) and str(value):
            ids.append(str(value))
    verdict = next((v for v in map(_verdict, statuses) if v), None)
    if verdict is None:  # no status field: the words anywhere in the answer
        return _Parsed(_verdict(text), tuple(dict.fromkeys(ids)), text[:200])
    return _Parsed(verdict, tuple(dict.fromkeys(ids)), " ".join(map(str, statuses))[:200])


def _items(data: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """(key, value) for every scalar in a JSON document; list items keep their key."""
    if isinstance(data, dict):
        for name, value in data.items():
            yield from _items(value, str(name))
    elif isinstance(data, list):
        for item in data:
            yield from _items(item, key)
    else:
        yield key, data


def _parse_xml(root: Any) -> _Parsed:
    statuses: list[str] = []
    ids: list[str] = []
    for element in root.iter():
        if not isinstance(element.tag, str):  # comments, processing instructions
            continue
        pairs = [(etree.QName(element).localname, (element.text or "").strip())]
        pairs += [(etree.QName(name).localname, value.strip()) for name, value in element.items()]
        for name, value in pairs:
            if not value:
                continue
            if name.lower() in _STATUS_KEYS:
                statuses.append(value)
            elif _UID_NAME.search(name):
                ids.append(value)
    verdict = next((v for v in map(_verdict, statuses) if v), None)
    if verdict is None:
        text = " ".join(" ".join(root.itertext()).split())
        return _Parsed(_verdict(text), tuple(dict.fromkeys(ids)), text[:200])
    return _Parsed(verdict, tuple(dict.fromkeys(ids)), " ".join(statuses)[:200])


def read_answer(answer: Answer, *, future: bool = False) -> Reading:
    """ok / Fail in the answer, as a neutral outcome with both legs' ids."""
    parsed = parse(answer)
    message = parsed.message or answer.text.strip()[:200]
    if parsed.verdict is None:
        return Reading(Outcome.AMBIGUOUS, f"unknown answer: {message}" if message else "empty")
    if future:
        outcome = Outcome.ACCEPTED if parsed.verdict == "ok" else Outcome.REFUSED
    elif parsed.verdict == "ok":
        outcome = Outcome.CONNECTED
    elif _BUSY.search(answer.text):
        outcome = Outcome.BUSY
    elif _BAD_REQUEST.search(answer.text):
        outcome = Outcome.REFUSED
    else:
        outcome = Outcome.NO_ANSWER
    return Reading(outcome, message, parsed.call_ids)


class VoIPtech(HttpProvider):
    """Ring `to_number` (dial1); once answered the PBX rings `connect_to` (dial2)."""

    name = "voiptech"
    secret_params = frozenset({"pass"})
    settings: VoIPtechSettings

    def __init__(self, settings: VoIPtechSettings) -> None:
        super().__init__(settings)

    def parameters(self, request: CallRequest) -> dict[str, str]:
        """What would be sent for `request`; InvalidCallRequest if it breaks a limit."""
        reject_unsupported(
            self.name,
            request,
            ("voice_url", "survo_id", "user_parameters", "pass_through", "send_digits"),
        )
        style = self.settings.number_format
        if not request.connect_to:
            raise InvalidCallRequest("voiptech: needs connect_to (dial2)")
        if request.connect_to.startswith("+"):
            dial2 = format_number(e164(request.connect_to, "connect_to"), style)
        elif _EXTENSION.fullmatch(request.connect_to):
            dial2 = request.connect_to  # an extension, ring group, queue or app
        else:
            raise InvalidCallRequest("voiptech: connect_to must be E.164 or an extension")
        caller_id = request.caller_id or self.settings.caller_id
        timeout = request.timeout_seconds
        params: dict[str, str | None] = {
            "user": self.settings.user,
            "pass": self.settings.password,
            "org": self.settings.org,
            "dial1": format_number(e164(request.to_number, "to_number"), style),
            "dial2": dial2,
            "Response": "yes",
            "RFormat": self.settings.response_format,
            "showUID": "yes",
            "SetCID": format_number(e164(caller_id, "caller_id"), style) if caller_id else None,
            "Timeout": None if timeout is None else str(timeout),
        }
        if request.at is not None:
            params |= {
                "Date": self._date(request.at),
                "Maxretry": str(self.settings.max_retry),
                "Retrytime": str(self.settings.retry_seconds),
                "ident": self.settings.ident or request.reference,
            }
        sent = drop_empty(params)
        check(DialupSchema(), sent, self.name)
        return sent

    def _date(self, at: datetime) -> str:
        if at.tzinfo is None or at.utcoffset() is None:
            raise InvalidCallRequest("voiptech: `at` must be timezone-aware")
        if at <= datetime.now(UTC):
            raise InvalidCallRequest("voiptech: `at` must be in the future")
        return at.astimezone(self.settings.zone()).strftime("%Y%m%d%H%M")

    def place_call(self, request: CallRequest) -> CallResult:
        """Ask the PBX to place (or schedule) the call; ok once the first leg answers."""
        params = self.parameters(request)
        if missing := self.settings.missing():
            return self.not_configured(missing, params)
        future = request.at is not None
        # The PBX answers once the first leg answered or rang out: wait past that.
        ring = request.timeout_seconds or DEFAULT_RING_SECONDS
        wait = max(self.settings.read_timeout, ring + ANSWER_MARGIN_SECONDS)
        read_timeout = None if future else wait
        return self.exchange(
            params,
            lambda answer: read_answer(answer, future=future),
            method=self.settings.http_method,
            read_timeout=read_timeout,
        )
