"""DialogTech Click-to-Call (`ibp_api.php`, `action=clickto.call`).

Known (DialogTech documents it):
- `https://secure.dialogtech.com/ibp_api.php`; the documented example sends a
  GET query string.
- `access_key`, `secret_access_key`, `action=clickto.call`, `type` (1: ring
  `phone_to_call` first; 2: ring `id` first), `id`, `phone_to_call` (unformatted
  numbers), `page` (≤ 255 characters), `ref` (≤ 32), `first_callerid`,
  `second_callerid` (registered, tracking, or one of the two numbers).
- The answer comes only once the first leg answered or not (tens of seconds):
  plain text `Call Connected` or `No Answer`. Errors are XML
  `<response><result>failed</result><result_description>…`.

Assumed: `Phone Busy` and IfbyPhone's error strings (same platform) may also
come back; whether POST is accepted is not documented, so GET is the default
(the secret then travels in the query string, as DialogTech's own example does;
it is masked in everything Glue keeps). The answer carries no call id.
`timeout_seconds` and `status_callback` are not part of the API and are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from marshmallow import Schema, fields
from marshmallow.validate import Length, OneOf

from app.outbound.providers._http import HttpProvider, HttpSettings
from app.outbound.providers.base import (
    CallRequest,
    CallResult,
    InvalidCallRequest,
    check,
    drop_empty,
    e164,
    format_number,
    reject_unsupported,
)
from app.outbound.providers.ifbyphone import HTTP_METHODS, UNFORMATTED, read_answer

DIALOGTECH_URL = "https://secure.dialogtech.com/ibp_api.php"


@dataclass(frozen=True, kw_only=True)
class DialogTechSettings(HttpSettings):
    base_url: str = DIALOGTECH_URL
    access_key: str = ""
    secret_access_key: str = ""
    http_method: str = "GET"  # as documented; POST is not

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.http_method not in HTTP_METHODS:
            raise ValueError(f"DialogTech method must be GET or POST, not {self.http_method!r}")

    def missing(self) -> list[str]:
        missing = [] if self.base_url else ["GLUE_DIALOGTECH_API_URL"]
        if not self.access_key:
            missing.append("GLUE_DIALOGTECH_ACCESS_KEY")
        if not self.secret_access_key:
            missing.append("GLUE_DIALOGTECH_SECRET_ACCESS_KEY")
        return missing


class ClickToCallSchema(Schema):
    """`action=clickto.call`: the documented parameters and limits."""

    access_key = fields.String()
    secret_access_key = fields.String()
    action = fields.String(required=True, validate=OneOf(["clickto.call"]))
    type = fields.String(required=True, validate=OneOf(["1", "2"]))
    id = fields.String(required=True, validate=UNFORMATTED)
    phone_to_call = fields.String(required=True, validate=UNFORMATTED)
    page = fields.String(validate=Length(max=255))
    ref = fields.String(validate=Length(max=32))
    first_callerid = fields.String(validate=UNFORMATTED)
    second_callerid = fields.String(validate=UNFORMATTED)


class DialogTech(HttpProvider):
    """Click-to-Call: ring the request's `to_number`, then connect `connect_to`."""

    name = "dialogtech"
    secret_params = frozenset({"access_key", "secret_access_key"})
    settings: DialogTechSettings

    def __init__(self, settings: DialogTechSettings) -> None:
        super().__init__(settings)

    def parameters(self, request: CallRequest) -> dict[str, str]:
        """What would be sent for `request`; InvalidCallRequest if it breaks a limit."""
        reject_unsupported(
            self.name,
            request,
            ("voice_url", "at", "send_digits", "survo_id", "user_parameters", "pass_through"),
        )
        if not request.connect_to:
            raise InvalidCallRequest("dialogtech: Click-to-Call needs connect_to")
        to = format_number(e164(request.to_number, "to_number"), "unformatted")
        caller_id = request.caller_id or self.settings.caller_id
        params = drop_empty(
            {
                "access_key": self.settings.access_key,
                "secret_access_key": self.settings.secret_access_key,
                "action": "clickto.call",
                "type": "1",  # ring phone_to_call (the request's to_number) first
                "id": format_number(e164(request.connect_to, "connect_to"), "unformatted"),
                "phone_to_call": to,
                "page": request.page,
                "ref": request.reference,
                "first_callerid": (
                    format_number(e164(caller_id, "caller_id"), "unformatted")
                    if caller_id
                    else None
                ),
                "second_callerid": to,  # the second party sees who is on the line
            }
        )
        check(ClickToCallSchema(), params, self.name)
        return params

    def place_call(self, request: CallRequest) -> CallResult:
        """Ask DialogTech to place the call; its answer comes once the first leg answers."""
        params = self.parameters(request)
        if missing := self.settings.missing():
            return self.not_configured(missing, params)
        return self.exchange(params, read_answer, method=self.settings.http_method)
