"""Twilio outbound call, through the official `twilio` REST client.

One `calls.create` (POST /2010-04-01/Accounts/<sid>/Calls.json) rings the
user's phone (`To`) from the account's number (`From`: the request's caller ID,
else the default one); once they answer, Twilio fetches `Url`, a TwiML document
Glue serves (app/outbound/voice.py): a `<Dial>` of the second party, or a code
read out. Progress comes by status callbacks to Glue's `/twiml/status?action=<id>`
(`StatusCallbackEvent`: initiated ringing answered completed), signed by Twilio
with the account's auth token, which is how Glue's status hook knows them.

Authentication: the account SID with its auth token, or an API key (`SK...`)
and its secret when both are set (the auth token still signs the callbacks).

Answers: 201 with the call's SID is accepted. Twilio's JSON error body
(`code`, `message`, `status`) becomes the detail: a 4xx is refused (some codes,
such as 21211 "invalid To", for good: trying again cannot help), a 5xx
ambiguous. Transport failures are classified as for every HTTP client
(app/outbound/providers/_http.py). The request is sent once: the client's
HTTP adapters never retry.

`cancel(sid)` asks Twilio to end a call: `canceled` while it is queued or
ringing; once answered Twilio refuses that (21220, invalid call state), and
`completed` hangs it up.

`Url` holds a secret token in its path: it is masked in everything kept.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from app.outbound.providers._http import DETAIL_LIMIT, HttpSettings, classify
from app.outbound.providers.base import (
    MASK,
    RAW_LIMIT,
    CallRequest,
    CallResult,
    InvalidCallRequest,
    Outcome,
    e164,
    hide_values,
    reject_unsupported,
)

log = logging.getLogger(__name__)

TWILIO_URL = "https://api.twilio.com"
STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")
# Refusals about the numbers themselves or the account's permissions to call
# them: no retry cures them.
FINAL_CODES = frozenset(
    {
        21210,  # caller ID not verified for the account
        21211,  # invalid To number
        21212,  # invalid From (caller ID) number
        21214,  # To number cannot be reached
        21215,  # geographic permissions do not allow the number
        21216,  # the number is blocked
        21217,  # not a valid phone number
        21219,  # trial account: To is not a verified number
    }
)
INVALID_CALL_STATE = 21220  # `canceled` asked of a call already answered
SECRET_PARAMS = frozenset({"Url"})  # Glue's voice document URL carries a token

# Twilio's client logs each request at INFO; Glue logs its own outcome once.
_client_log = logging.getLogger("app.outbound.providers.twilio.http")
_client_log.setLevel(logging.WARNING)


@dataclass(frozen=True, kw_only=True)
class TwilioSettings(HttpSettings):
    base_url: str = TWILIO_URL
    account_sid: str = ""
    auth_token: str = ""
    api_key_sid: str = ""  # SK...: used instead of the auth token when set with its secret
    api_key_secret: str = ""
    status_events: tuple[str, ...] = STATUS_EVENTS

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = set(self.status_events) - set(STATUS_EVENTS)
        if unknown or not self.status_events:
            raise ValueError(f"Twilio status events must be some of {', '.join(STATUS_EVENTS)}")

    def uses_api_key(self) -> bool:
        return bool(self.api_key_sid and self.api_key_secret)

    def missing(self) -> list[str]:
        missing = [] if self.account_sid else ["GLUE_TWILIO_ACCOUNT_SID"]
        if not self.auth_token and not self.uses_api_key():
            missing.append("GLUE_TWILIO_AUTH_TOKEN")
        return missing


class Twilio:
    """Ring `to_number`; on answer Twilio runs Glue's TwiML (`dial_url` or `voice_url`)."""

    name = "twilio"

    def __init__(self, settings: TwilioSettings) -> None:
        self.settings = settings
        http = TwilioHttpClient(logger=_client_log)
        # requests takes (connect, read): nothing is placed before a connection.
        http.timeout = (settings.connect_timeout, settings.read_timeout)  # type: ignore[assignment]
        session = http.session or requests.Session()
        for scheme in ("http://", "https://"):  # never resend: it could ring twice
            session.mount(scheme, HTTPAdapter(max_retries=0))
        http.session = session
        user, password = (
            (settings.api_key_sid, settings.api_key_secret)
            if settings.uses_api_key()
            else (settings.account_sid, settings.auth_token)
        )
        # environment={}: TWILIO_* variables of the process never change the target.
        self.client = Client(
            user or None,
            password or None,
            settings.account_sid or None,
            http_client=http,
            environment={},
        )
        self.client.api.base_url = settings.base_url.rstrip("/")
        self._http = http

    def close(self) -> None:
        if self._http.session is not None:
            self._http.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def parameters(self, request: CallRequest) -> dict[str, str]:
        """The form fields Twilio is sent (`StatusCallbackEvent` once per event
        there, space-separated here); InvalidCallRequest if one cannot be."""
        reject_unsupported(
            self.name, request, ("at", "survo_id", "user_parameters", "pass_through", "send_digits")
        )
        to = e164(request.to_number, "to_number")
        caller = request.caller_id or self.settings.caller_id
        if not caller:
            raise InvalidCallRequest(
                "twilio: needs a caller ID (a number of the account): "
                "set GLUE_ORIGINATOR_NUMBER or GLUE_PROVIDER_CALLER_ID"
            )
        url = request.voice_url or (request.dial_url if request.connect_to else None)
        if not url:
            raise InvalidCallRequest("twilio: needs a voice_url, or connect_to and its dial_url")
        params = {"To": to, "From": e164(caller, "caller_id"), "Url": url, "Method": "POST"}
        if request.timeout_seconds:
            params["Timeout"] = str(request.timeout_seconds)
        if request.status_callback:
            params["StatusCallback"] = request.status_callback
            params["StatusCallbackEvent"] = " ".join(self.settings.status_events)
            params["StatusCallbackMethod"] = "POST"
        return params

    def place_call(self, request: CallRequest) -> CallResult:
        """Ask Twilio to place the call; progress comes by status callbacks."""
        params = self.parameters(request)
        sent = _masked(params)
        if missing := self.settings.missing():
            names = ", ".join(missing)
            return CallResult(
                Outcome.REFUSED, f"twilio is not configured: set {names}", sent=sent, final=True
            )
        events = params.get("StatusCallbackEvent", "")
        try:
            call = self.client.calls.create(
                to=params["To"],
                from_=params["From"],
                url=params["Url"],
                method="POST",
                timeout=int(params["Timeout"]) if "Timeout" in params else None,
                status_callback=params.get("StatusCallback"),
                status_callback_event=events.split() if events else None,
                status_callback_method=params.get("StatusCallbackMethod"),
            )
        except Exception as exc:
            return self._failure(exc, sent, params)
        raw = json.dumps({"sid": call.sid, "status": call.status})
        detail = f"call {call.sid} {call.status or 'queued'}"
        return CallResult(Outcome.ACCEPTED, detail, (call.sid,) if call.sid else (), raw, sent)

    def cancel(self, provider_call_id: str) -> CallResult:
        """Ask Twilio to end call `provider_call_id` (a `CA...` SID).

        `canceled` ends a call still queued or ringing; a call already answered
        is hung up with `completed`. ACCEPTED: Twilio took it (its answer says
        the call's status now); REFUSED: it did not (an unknown SID, a call
        already over); AMBIGUOUS: no clear answer. Never raises.
        """
        sent = {"Sid": provider_call_id, "Status": "canceled"}
        if missing := self.settings.missing():
            names = ", ".join(missing)
            return CallResult(
                Outcome.REFUSED, f"twilio is not configured: set {names}", sent=sent, final=True
            )
        try:
            try:
                call = self.client.calls(provider_call_id).update(status="canceled")
            except TwilioRestException as exc:
                if exc.code != INVALID_CALL_STATE:
                    raise
                sent["Status"] = "completed"
                call = self.client.calls(provider_call_id).update(status="completed")
        except Exception as exc:
            return self._failure(exc, sent, sent)
        raw = json.dumps({"sid": call.sid, "status": call.status})
        return CallResult(
            Outcome.ACCEPTED, f"call {call.sid} {call.status}", (call.sid,), raw, sent
        )

    def _failure(
        self, exc: Exception, sent: dict[str, str], params: Mapping[str, str]
    ) -> CallResult:
        """A call that did not go through, as an outcome (never raised)."""
        hidden = [params[key] for key in SECRET_PARAMS if params.get(key)]
        if isinstance(exc, TwilioRestException):
            body: dict[str, Any] = {"status": exc.status, "code": exc.code, "message": exc.msg}
            code = f" {exc.code}" if exc.code else ""
            detail = f"HTTP {exc.status} from twilio, error{code}: {exc.msg}"
            raw = hide_values(json.dumps(body), hidden)[:RAW_LIMIT]
            detail = hide_values(detail, hidden)[:DETAIL_LIMIT]
            if exc.status >= 500:
                return CallResult(Outcome.AMBIGUOUS, detail, raw=raw, sent=sent)
            if 300 <= exc.status < 400:
                detail = f"HTTP {exc.status} from twilio: redirect not followed; it may have acted"
                return CallResult(Outcome.AMBIGUOUS, detail, raw=raw, sent=sent)
            final = exc.code in FINAL_CODES
            return CallResult(Outcome.REFUSED, detail, raw=raw, sent=sent, final=final)
        if isinstance(exc, requests.RequestException):
            outcome, what = classify(exc)
            detail = hide_values(f"{what}: {exc}", hidden)[:DETAIL_LIMIT]
            return CallResult(outcome, detail, sent=sent)
        if isinstance(exc, TwilioException | ValueError):  # an odd 2xx body
            detail = hide_values(f"unreadable answer from twilio: {exc}", hidden)[:DETAIL_LIMIT]
            return CallResult(Outcome.AMBIGUOUS, detail, sent=sent)
        # The request may have gone out: never let it become a retry.
        log.exception("twilio: unexpected failure placing a call")
        return CallResult(Outcome.AMBIGUOUS, f"unexpected failure: {type(exc).__name__}", sent=sent)


def _masked(params: Mapping[str, str]) -> dict[str, str]:
    return {key: MASK if key in SECRET_PARAMS else value for key, value in params.items()}
