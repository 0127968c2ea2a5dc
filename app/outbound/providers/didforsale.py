"""DIDforSale outbound call (`api/V2/CallTermination/`).

Known (DIDforSale documents it):
- POST `https://api.didforsale.com/didforsaleapi/index.php/api/V2/CallTermination/`
  with `apikey`, `from` (the caller ID), `to` (the number dialled), `url` (the
  voice document fetched once `to` answers; without one the call is connected
  to the `from` number), and optionally `Method` (POST/GET, how `url` is
  fetched), `senddigits` (digits, `*`, `#`, `w` = 0.5 s and `W` = 1 s waits),
  `statusCallback`, `statusCallbackEvent` (any of initiated, ringing, answered,
  completed; default completed), `statusCallbackMethod` (default POST),
  `secretKey` (sent back on callbacks as `apikey=<secretKey>`), `optional` (a
  token echoed back on callbacks).
- Call progress comes later, by status callbacks (app/hooks/status_callbacks.py).

Assumed (DIDforSale's examples are garbled):
- How the fields travel ("in the post headers"): a form body by default, JSON
  if the settings say so.
- Number format: country code and number without a plus (DIDforSale's example
  dials 19499300360); configurable.
- Several events are sent space-separated, as didML/TwiML's `statusCallbackEvent`
  attribute writes them.
- The answer's format is unknown. Any 2xx is accepted (the call is on its way),
  and a call id is kept from JSON fields such as callSid / call_id, or from a
  text answer that names one. A 2xx that plainly says it failed (JSON
  `status`/`result` "error"/"failed", `success: false`, an `error` field, with no
  call id; or text starting with Missing / Invalid / Unauthorized ...) is
  refused. A 4xx is refused, a 5xx ambiguous.
- Without `url`, `from` must be the second party (that is whom the call
  connects to), so the request's caller_id cannot be honoured and is ignored.
- `optional` carries the request's `reference` as is.

`url` is masked like the credentials in everything kept (`sent`, `detail`,
`raw`): Glue's voice document URL holds a one-time token in its path.

`timeout_seconds` is not part of the call API and is ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, ValidationError, fields
from marshmallow.validate import Length, OneOf, Regexp

from app.outbound.providers._http import Answer, Encoding, HttpProvider, HttpSettings, Reading
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
from app.outbound.providers.ifbyphone import ERROR_TEXT

DIDFORSALE_URL = "https://api.didforsale.com/didforsaleapi/index.php/api/V2/CallTermination/"
STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")
BODIES = ("form", "json")

_NUMBER = Regexp(r"\A\+?[1-9][0-9]{6,14}\Z", error="must be a phone number")


def _url() -> fields.Url:
    return fields.Url(schemes={"http", "https"}, require_tld=False)


@dataclass(frozen=True, kw_only=True)
class DIDforSaleSettings(HttpSettings):
    base_url: str = DIDFORSALE_URL
    api_key: str = ""
    # `secretKey`: DIDforSale sends it back on status callbacks as `apikey`, which
    # is how Glue's status hook knows them (its DIDML_SECRET).
    callback_secret: str = ""
    number_format: str = "digits"  # e164 | digits | unformatted
    body: str = "form"  # form | json
    status_events: tuple[str, ...] = STATUS_EVENTS
    voice_method: str = "POST"  # `Method`: how DIDforSale fetches the voice URL
    status_callback_method: str = "POST"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.number_format not in NUMBER_FORMATS:
            raise ValueError(f"DIDforSale number format must be one of {NUMBER_FORMATS}")
        if self.body not in BODIES:
            raise ValueError(f"DIDforSale body must be one of {BODIES}, not {self.body!r}")
        unknown = set(self.status_events) - set(STATUS_EVENTS)
        if unknown or not self.status_events:
            raise ValueError(f"DIDforSale status events must be some of {', '.join(STATUS_EVENTS)}")
        if {self.voice_method, self.status_callback_method} - {"GET", "POST"}:
            raise ValueError("DIDforSale callback methods must be GET or POST")

    def missing(self) -> list[str]:
        missing = [] if self.base_url else ["GLUE_DIDFORSALE_API_URL"]
        return missing if self.api_key else [*missing, "GLUE_DIDFORSALE_API_KEY"]


def _events(value: str) -> None:
    events = value.split(" ")
    if not events or set(events) - set(STATUS_EVENTS) or len(set(events)) != len(events):
        raise ValidationError(f"must be some of: {', '.join(STATUS_EVENTS)}")


class CallTerminationSchema(Schema):
    """The documented parameters and limits."""

    apikey = fields.String()
    from_ = fields.String(data_key="from", required=True, validate=_NUMBER)
    to = fields.String(required=True, validate=_NUMBER)
    url = _url()
    Method = fields.String(validate=OneOf(["POST", "GET"]))
    senddigits = fields.String(validate=Regexp(r"\A[0-9*#wW]+\Z", error="digits, *, #, w, W"))
    statusCallback = _url()
    statusCallbackEvent = fields.String(validate=_events)
    statusCallbackMethod = fields.String(validate=OneOf(["POST", "GET"]))
    secretKey = fields.String()
    optional = fields.String(validate=Length(max=255))


_CALL_ID_KEYS = frozenset(
    {"callsid", "call_sid", "callid", "call_id", "calluuid", "call_uuid", "uuid", "sid"}
)
_FAILED = frozenset({"error", "failed", "fail", "failure"})
_TEXT_CALL_ID = re.compile(r"\bcall[ _]?(?:sid|id)\b\W{0,3}([A-Za-z0-9-]{4,64})", re.I)


def read_answer(answer: Answer) -> Reading:
    """A 2xx answer: accepted with any call id found, unless it plainly says it failed."""
    text = answer.text.strip()
    data: Any = None
    if text[:1] in ("{", "["):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
    if data is None:
        ids = tuple(dict.fromkeys(_TEXT_CALL_ID.findall(text)))
        if not ids and ERROR_TEXT.match(text):
            return Reading(Outcome.REFUSED, text[:200])
        return Reading(Outcome.ACCEPTED, text[:200] or f"HTTP {answer.status}", ids)
    ids = tuple(dict.fromkeys(_call_ids(data)))
    message = _message(data)
    if not ids and _says_failed(data):
        return Reading(Outcome.REFUSED, message or text[:200])
    return Reading(Outcome.ACCEPTED, message or f"HTTP {answer.status}", ids)


def _call_ids(data: Any) -> Iterator[str]:
    if isinstance(data, dict):
        for key, value in data.items():
            if str(key).lower() in _CALL_ID_KEYS and isinstance(value, str | int):
                if str(value):
                    yield str(value)
            else:
                yield from _call_ids(value)
    elif isinstance(data, list):
        for item in data:
            yield from _call_ids(item)


def _message(data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    for key in ("message", "msg", "description", "error", "status", "result"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _says_failed(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    for key in ("status", "result"):
        value = data.get(key)
        if isinstance(value, str) and value.strip().lower() in _FAILED:
            return True
    return data.get("success") is False or bool(data.get("error")) or bool(data.get("errors"))


class DIDforSale(HttpProvider):
    """Ring `to_number`; on answer, run `voice_url`, or connect to `connect_to`."""

    name = "didforsale"
    # `url`: Glue's voice document URL carries a one-time token in its path.
    secret_params = frozenset({"apikey", "secretKey", "url"})
    settings: DIDforSaleSettings

    def __init__(self, settings: DIDforSaleSettings) -> None:
        super().__init__(settings)

    def parameters(self, request: CallRequest) -> dict[str, str]:
        """What would be sent for `request`; InvalidCallRequest if it breaks a limit."""
        reject_unsupported(
            self.name, request, ("at", "survo_id", "user_parameters", "pass_through")
        )
        style = self.settings.number_format
        to = format_number(e164(request.to_number, "to_number"), style)
        if request.voice_url:
            caller = request.caller_id or self.settings.caller_id or request.connect_to
            if not caller:
                raise InvalidCallRequest("didforsale: a call with voice_url needs a caller_id")
            from_ = format_number(e164(caller, "caller_id"), style)
        elif request.connect_to:
            # Without a voice document DIDforSale connects the call to `from`.
            from_ = format_number(e164(request.connect_to, "connect_to"), style)
        else:
            raise InvalidCallRequest("didforsale: needs connect_to or voice_url")
        callback = request.status_callback
        params = drop_empty(
            {
                "apikey": self.settings.api_key,
                "from": from_,
                "to": to,
                "url": request.voice_url,
                "Method": self.settings.voice_method if request.voice_url else None,
                "senddigits": request.send_digits,
                "statusCallback": callback,
                "statusCallbackEvent": " ".join(self.settings.status_events) if callback else None,
                "statusCallbackMethod": self.settings.status_callback_method if callback else None,
                "secretKey": self.settings.callback_secret if callback else None,
                "optional": request.reference,
            }
        )
        check(CallTerminationSchema(), params, self.name)
        return params

    def place_call(self, request: CallRequest) -> CallResult:
        """Ask DIDforSale to place the call; progress comes by status callbacks."""
        params = self.parameters(request)
        if missing := self.settings.missing():
            return self.not_configured(missing, params)
        body: Encoding = "json" if self.settings.body == "json" else "form"
        return self.exchange(params, read_answer, method="POST", encoding=body)
