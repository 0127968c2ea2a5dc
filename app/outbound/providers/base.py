"""The one interface every outbound-call provider client speaks.

A client turns a neutral `CallRequest` into its provider's parameters, checks
them against the provider's documented limits (marshmallow), sends them, and
reads the answer into a neutral `CallResult`. It never raises for what the
provider answers, nor for a failed connection: those are outcomes. It raises
`InvalidCallRequest` (a ValueError) only for a request that breaks a documented
limit, before anything is sent.

No Flask here or in the clients: a job worker uses them with a settings object.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

import phonenumbers
from marshmallow import Schema, ValidationError

MASK = "***"
RAW_LIMIT = 2000  # characters of the provider's answer kept in CallResult.raw

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")

NumberFormat = Literal["e164", "digits", "unformatted"]
NUMBER_FORMATS: tuple[str, ...] = ("e164", "digits", "unformatted")


class Outcome(StrEnum):
    """What became of a request to place a call, in terms every provider maps to."""

    CONNECTED = "connected"  # the first leg answered (and the second is being rung)
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    # The provider took the request; the call is in progress or queued and its
    # outcome comes later (status callbacks), or it is scheduled for later.
    ACCEPTED = "accepted"
    # A clear refusal before any call was placed (credentials, validation, a
    # missing parameter, nothing listening): safe to try again later, unless
    # the result says it is final (CallResult.final).
    REFUSED = "refused"
    # No clear answer after the request went out (timeout, 5xx, dropped
    # connection, an answer nobody knows): it may have rung someone. Never retry.
    AMBIGUOUS = "ambiguous"


class InvalidCallRequest(ValueError):
    """The request breaks a documented limit of the provider; nothing was sent."""


@dataclass(frozen=True)
class CallRequest:
    """A call to place: ring `to_number` first, then connect `connect_to`."""

    to_number: str  # E.164: the person rung first
    # The second party: E.164, or a provider-specific id (a VoIPtech extension).
    # None or "" for a call with no second party (a SurVo survey, a voice URL).
    connect_to: str | None = None
    caller_id: str | None = None  # E.164 shown to the first leg; None: the settings' default
    reference: str | None = None  # our call action id: DialogTech `ref`, DIDforSale `optional`
    page: str | None = None  # IfbyPhone/DialogTech report field
    voice_url: str | None = None  # DIDforSale, Twilio: the voice document fetched on answer
    # Twilio, sandbox: the voice document that dials `connect_to` once the first leg answers.
    dial_url: str | None = None
    status_callback: str | None = None  # DIDforSale, Twilio: where call-progress events go
    survo_id: str | None = None  # IfbyPhone: run this SurVo (Click-to-SurVo) instead
    user_parameters: Mapping[str, str] = field(default_factory=dict)  # SurVo placeholders
    pass_through: Mapping[str, str] | str | None = None  # SurVo `p_t`
    # Keys of a `pass_through` mapping whose values are secret (a signed token):
    # sent as they are, "***" wherever the request is kept.
    secret_pass_through: frozenset[str] = frozenset()
    timeout_seconds: int | None = None  # VoIPtech: how long the first leg rings
    at: datetime | None = None  # VoIPtech: a future call (timezone-aware)
    send_digits: str | None = None  # DIDforSale: DTMF sent once answered (w/W waits)


@dataclass(frozen=True)
class CallResult:
    """A provider's answer in neutral terms; `sent` never holds a real secret."""

    outcome: Outcome
    detail: str  # the provider's message, or what went wrong on the way
    provider_call_ids: tuple[str, ...] = ()
    raw: str = ""  # the answer's body, secrets masked, cut to RAW_LIMIT characters
    sent: dict[str, str] = field(default_factory=dict)  # parameters sent, secrets "***"
    # A refusal that trying again cannot cure: the provider is not configured
    # (its credentials are unset). Meaningful only with outcome REFUSED.
    final: bool = False

    @property
    def may_retry(self) -> bool:
        """Only a clear refusal before placing the call, and not a final one, may be
        tried again; every other outcome may have rung someone, or is an answer."""
        return self.outcome is Outcome.REFUSED and not self.final


@runtime_checkable
class Provider(Protocol):
    """An outbound-call provider client."""

    name: str

    def place_call(self, request: CallRequest) -> CallResult:
        """Ask the provider to place the call; the answer in neutral terms."""
        ...

    def cancel(self, provider_call_id: str) -> CallResult:
        """Ask the provider to end a call in progress (by its id for the call):
        ACCEPTED if it did; REFUSED if its API has no way to, or it refused."""
        ...

    def close(self) -> None:
        """Release the client's connections."""
        ...


# Helpers the clients share: number formats, unsupported fields, schema checks.


def hide_values(text: str, values: Collection[str]) -> str:
    """`text` with every one of `values` in it replaced by "***"."""
    for value in sorted(values, key=len, reverse=True):  # a longer one may hold a shorter
        if value:
            text = text.replace(value, MASK)
    return text


def e164(value: str | None, what: str) -> str:
    """`value` if it is a valid E.164 number, else InvalidCallRequest."""
    text = value or ""
    if not _E164.fullmatch(text):
        raise InvalidCallRequest(f"{what} must be an E.164 number (+13125551212), got {text!r}")
    try:
        valid = phonenumbers.is_valid_number(phonenumbers.parse(text))
    except phonenumbers.NumberParseException:
        valid = False
    if not valid:
        raise InvalidCallRequest(f"{what} is not a valid phone number: {text!r}")
    return text


def format_number(number: str, style: str) -> str:
    """An E.164 number as a provider writes it.

    e164: +13125551212; digits: 13125551212 (country code, no plus);
    unformatted: IfbyPhone's style, 10 digits for North America
    (3125551212), else country code and number (442071234567).
    """
    if style == "e164":
        return number
    if style == "digits":
        return number.lstrip("+")
    if style == "unformatted":
        parsed = phonenumbers.parse(number)
        if parsed.country_code == 1:
            return str(phonenumbers.national_significant_number(parsed))
        return number.lstrip("+")
    raise ValueError(f"unknown number format {style!r}: one of {', '.join(NUMBER_FORMATS)}")


def reject_unsupported(provider: str, request: CallRequest, names: Iterable[str]) -> None:
    """InvalidCallRequest if the request sets a field this provider cannot honour.

    Silently dropping them would change the call: a future call placed now, a
    survey not run, digits not sent.
    """
    for name in names:
        if getattr(request, name):
            raise InvalidCallRequest(f"{provider} does not support {name}")


def check(schema: Schema, params: Mapping[str, Any], provider: str) -> None:
    """InvalidCallRequest naming each parameter that breaks a documented limit."""
    try:
        schema.load(dict(params))
    except ValidationError as exc:
        raise InvalidCallRequest(f"{provider}: {_flatten(exc.normalized_messages())}") from None


def _flatten(messages: Any) -> str:
    if isinstance(messages, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in sorted(messages.items()))
    if isinstance(messages, list | tuple):
        return " ".join(_flatten(item) for item in messages)
    return str(messages)


def drop_empty(params: Mapping[str, str | None]) -> dict[str, str]:
    """Parameters with a value: optional ones left unset are not sent at all."""
    return {key: value for key, value in params.items() if value is not None and value != ""}
