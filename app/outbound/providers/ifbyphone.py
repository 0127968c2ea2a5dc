"""IfbyPhone Click-to-Call and Click-to-SurVo (`click_to_xyz.php`).

Known (IfbyPhone documents it, or its clients send it so):
- `https://secure.ifbyphone.com/click_to_xyz.php`, GET or POST.
- `app=ctc` Click-to-Call: `type` (1: ring `phone_to_call` first, then `id`;
  2: the reverse), `id`, `phone_to_call`, `page`, `ref`, `first_callerid`,
  `second_callerid`; credentials `key` (public key), the older `acct` + `pwd`,
  or `access_key` + `secret_access_key`.
- `app=cts` Click-to-SurVo: `survo_id`, `phone_to_call`, `user_parameters`
  (`k|v||k|v`), `p_t`, `first_callerid`, `page`, `ref`, `key`.
- Numbers are unformatted: 10 digits in North America.
- Text answers: `Call Connected`, `No Answer`, `Phone Busy`, and error strings
  such as `Missing Application Specification`. DialogTech (the later name)
  documents errors as `<response><result>failed</result><result_description>
  …</result_description></response>`.

Assumed (IfbyPhone does not document it):
- The limits DialogTech documents for the same parameters (`page` ≤ 255, `ref`
  ≤ 32, type 1|2) hold here too.
- Click-to-SurVo takes the same credential styles as Click-to-Call (only `key`
  is documented for it). With several styles configured, `key` wins, then
  `access_key` + `secret_access_key`, then `acct` + `pwd`.
- An error string starts with a word like Missing / Invalid / Unauthorized and
  is given before anything is dialled (refused). Any other unknown answer may
  have followed a call and is ambiguous. An XML `<result>success</result>`
  means the request was taken (accepted).
- `second_callerid` is set to the first party's number (allowed: "one of the
  two numbers being dialed"), so the second party sees who is on the line.
- The answer carries no call id.

`timeout_seconds` and `status_callback` are not part of the API and are ignored:
the answer itself is the outcome.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from lxml import etree
from marshmallow import Schema, fields
from marshmallow.validate import Length, OneOf, Regexp

from app.outbound.providers._http import Answer, HttpProvider, HttpSettings, Reading
from app.outbound.providers.base import (
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

IFBYPHONE_URL = "https://secure.ifbyphone.com/click_to_xyz.php"

# Unformatted: digits only (10 for North America, else country code + number).
UNFORMATTED = Regexp(r"\A[0-9]{7,15}\Z", error="must be an unformatted phone number")
HTTP_METHODS = ("GET", "POST")


@dataclass(frozen=True, kw_only=True)
class IfbyPhoneSettings(HttpSettings):
    base_url: str = IFBYPHONE_URL
    key: str = ""  # public key
    access_key: str = ""
    secret_access_key: str = ""
    account: str = ""  # older `acct` + `pwd`
    password: str = ""
    http_method: str = "POST"  # GET or POST; POST keeps the key out of URLs and logs

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.http_method not in HTTP_METHODS:
            raise ValueError(f"IfbyPhone method must be GET or POST, not {self.http_method!r}")

    def credentials(self) -> dict[str, str]:
        """The credential parameters to send: the first complete style."""
        if self.key:
            return {"key": self.key}
        if self.access_key and self.secret_access_key:
            return {"access_key": self.access_key, "secret_access_key": self.secret_access_key}
        if self.account and self.password:
            return {"acct": self.account, "pwd": self.password}
        return {}

    def missing(self) -> list[str]:
        missing = [] if self.base_url else ["GLUE_IFBYPHONE_API_URL"]
        if not self.credentials():
            missing.append(
                "GLUE_IFBYPHONE_API_KEY (or GLUE_IFBYPHONE_ACCESS_KEY and "
                "GLUE_IFBYPHONE_SECRET_ACCESS_KEY, or GLUE_IFBYPHONE_ACCOUNT and "
                "GLUE_IFBYPHONE_PASSWORD)"
            )
        return missing


class _Credentials(Schema):
    key = fields.String()
    acct = fields.String()
    pwd = fields.String()
    access_key = fields.String()
    secret_access_key = fields.String()


class _Common(_Credentials):
    phone_to_call = fields.String(required=True, validate=UNFORMATTED)
    page = fields.String(validate=Length(max=255))
    ref = fields.String(validate=Length(max=32))
    first_callerid = fields.String(validate=UNFORMATTED)


class ClickToCallSchema(_Common):
    """`app=ctc`: the documented parameters and limits."""

    app = fields.String(required=True, validate=OneOf(["ctc"]))
    type = fields.String(required=True, validate=OneOf(["1", "2"]))
    id = fields.String(required=True, validate=UNFORMATTED)
    second_callerid = fields.String(validate=UNFORMATTED)


class ClickToSurVoSchema(_Common):
    """`app=cts`: the documented parameters."""

    app = fields.String(required=True, validate=OneOf(["cts"]))
    survo_id = fields.String(required=True, validate=Length(min=1, max=64))
    user_parameters = fields.String()
    p_t = fields.String()


def encode_pairs(pairs: Mapping[str, str], what: str) -> str:
    """`k|v||k|v`, IfbyPhone's convention for `user_parameters` and `p_t`.

    The HTTP library URL-encodes the result; a `|` inside a key or value would
    shift every pair after it, so it is refused.
    """
    encoded = []
    for key, value in pairs.items():
        if not key or "|" in key or "|" in str(value):
            raise InvalidCallRequest(f"{what}: keys must be non-empty; no '|' in keys or values")
        encoded.append(f"{key}|{value}")
    return "||".join(encoded)


# IfbyPhone/DialogTech answers, shared with dialogtech.py (the same platform).

_TEXT_ANSWERS = {
    "call connected": Outcome.CONNECTED,
    "no answer": Outcome.NO_ANSWER,
    "phone busy": Outcome.BUSY,
    "busy": Outcome.BUSY,
}
ERROR_TEXT = re.compile(
    r"(missing|invalid|unauthori[sz]ed|not authori[sz]ed|access denied|authentication)\b", re.I
)
# Untrusted XML: no entities expanded, nothing fetched.
_XML_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)


def read_answer(answer: Answer) -> Reading:
    """An IfbyPhone/DialogTech answer: plain text, or XML for errors."""
    text = answer.text.strip()
    if text.startswith("<"):
        reading = _read_xml(answer.body)
        if reading is not None:
            return reading
    words = " ".join(text.split()).rstrip(".!").lower()
    if words in _TEXT_ANSWERS:
        return Reading(_TEXT_ANSWERS[words], text)
    if ERROR_TEXT.match(words):
        return Reading(Outcome.REFUSED, text)
    return Reading(Outcome.AMBIGUOUS, f"unknown answer: {text[:200]}" if text else "empty answer")


def _read_xml(body: bytes) -> Reading | None:
    try:
        root = etree.fromstring(body, _XML_PARSER)
    except etree.XMLSyntaxError:
        return None
    result = (root.findtext("result") or "").strip()
    description = " ".join((root.findtext("result_description") or "").split())
    if result.lower() in ("failed", "fail", "failure", "error"):
        return Reading(Outcome.REFUSED, description or result)
    if result.lower() in ("success", "ok"):
        return Reading(Outcome.ACCEPTED, description or result)
    return None


class IfbyPhone(HttpProvider):
    """Click-to-Call (`app=ctc`), or Click-to-SurVo (`app=cts`) when the request names a SurVo."""

    name = "ifbyphone"
    secret_params = frozenset({"key", "pwd", "access_key", "secret_access_key"})
    settings: IfbyPhoneSettings

    def __init__(self, settings: IfbyPhoneSettings) -> None:
        super().__init__(settings)

    def parameters(self, request: CallRequest) -> dict[str, str]:
        """What would be sent for `request`; InvalidCallRequest if it breaks a limit."""
        to = format_number(e164(request.to_number, "to_number"), "unformatted")
        caller_id = request.caller_id or self.settings.caller_id
        common = {
            **self.settings.credentials(),
            "phone_to_call": to,
            "page": request.page,
            "ref": request.reference,
            "first_callerid": (
                format_number(e164(caller_id, "caller_id"), "unformatted") if caller_id else None
            ),
        }
        if request.survo_id:
            reject_unsupported(self.name, request, ("connect_to", "voice_url", "at", "send_digits"))
            pass_through = request.pass_through
            if isinstance(pass_through, Mapping):
                pass_through = encode_pairs(pass_through, "pass_through")
            params = drop_empty(
                {
                    "app": "cts",
                    **common,
                    "survo_id": request.survo_id,
                    "user_parameters": encode_pairs(request.user_parameters, "user_parameters"),
                    "p_t": pass_through,
                }
            )
            check(ClickToSurVoSchema(), params, self.name)
            return params
        reject_unsupported(
            self.name,
            request,
            ("voice_url", "at", "send_digits", "user_parameters", "pass_through"),
        )
        if not request.connect_to:
            raise InvalidCallRequest("ifbyphone: Click-to-Call needs connect_to (or a survo_id)")
        params = drop_empty(
            {
                "app": "ctc",
                **common,
                "type": "1",  # ring phone_to_call (the request's to_number) first
                "id": format_number(e164(request.connect_to, "connect_to"), "unformatted"),
                "second_callerid": to,
            }
        )
        check(ClickToCallSchema(), params, self.name)
        return params

    def place_call(self, request: CallRequest) -> CallResult:
        """Ask IfbyPhone to place the call; its answer comes once the first leg answers."""
        params = self.parameters(request)
        hidden = _secrets_passed_through(request)
        if missing := self.settings.missing():
            return self.not_configured(missing, params, hidden)
        return self.exchange(params, read_answer, method=self.settings.http_method, hidden=hidden)


def _secrets_passed_through(request: CallRequest) -> list[str]:
    """The values of the request's secret pass-through keys."""
    if not request.secret_pass_through:
        return []
    if not isinstance(request.pass_through, Mapping):
        raise InvalidCallRequest("pass_through: secret keys need the pass-through as a mapping")
    return [request.pass_through.get(key, "") for key in request.secret_pass_through]
