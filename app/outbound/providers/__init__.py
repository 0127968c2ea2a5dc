"""Outbound-call provider clients, one module each, chosen by name from config.

Pure library code (no Flask): `make_provider(name, config)` takes any mapping
of the flat GLUE_* settings (app.config, or a dict in a job worker or a test).
A provider whose credentials are not set is still made: its calls come back
refused, naming the missing settings, without anything being sent. A setting
with a wrong value (a bad URL, an unknown format) raises ValueError here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from app.outbound.providers.base import (
    CallRequest,
    CallResult,
    InvalidCallRequest,
    Outcome,
    Provider,
)
from app.outbound.providers.dialogtech import DIALOGTECH_URL, DialogTech, DialogTechSettings
from app.outbound.providers.didforsale import (
    DIDFORSALE_URL,
    STATUS_EVENTS,
    DIDforSale,
    DIDforSaleSettings,
)
from app.outbound.providers.ifbyphone import IFBYPHONE_URL, IfbyPhone, IfbyPhoneSettings
from app.outbound.providers.sandbox import Sandbox, SandboxSettings
from app.outbound.providers.twilio import TWILIO_URL, Twilio, TwilioSettings
from app.outbound.providers.voiptech import VoIPtech, VoIPtechSettings

__all__ = [
    "PROVIDER_NAMES",
    "CallRequest",
    "CallResult",
    "InvalidCallRequest",
    "Outcome",
    "Provider",
    "make_provider",
]

PROVIDER_NAMES = ("ifbyphone", "dialogtech", "didforsale", "voiptech", "twilio", "sandbox")


def make_provider(name: str, config: Mapping[str, Any]) -> Provider:
    """The client for provider `name`, set up from flat config keys."""
    common: dict[str, Any] = {
        "connect_timeout": float(config.get("PROVIDER_CONNECT_TIMEOUT") or 5.0),
        "read_timeout": float(config.get("PROVIDER_READ_TIMEOUT") or 60.0),
        "caller_id": _text(config, "PROVIDER_CALLER_ID").strip() or None,
    }
    chosen = (name or "").strip().lower()
    if chosen == "ifbyphone":
        return IfbyPhone(
            IfbyPhoneSettings(
                **common,
                base_url=_url(config, "IFBYPHONE_API_URL", IFBYPHONE_URL),
                key=_text(config, "IFBYPHONE_API_KEY"),
                access_key=_text(config, "IFBYPHONE_ACCESS_KEY"),
                secret_access_key=_text(config, "IFBYPHONE_SECRET_ACCESS_KEY"),
                account=_text(config, "IFBYPHONE_ACCOUNT"),
                password=_text(config, "IFBYPHONE_PASSWORD"),
            )
        )
    if chosen == "dialogtech":
        return DialogTech(
            DialogTechSettings(
                **common,
                base_url=_url(config, "DIALOGTECH_API_URL", DIALOGTECH_URL),
                access_key=_text(config, "DIALOGTECH_ACCESS_KEY"),
                secret_access_key=_text(config, "DIALOGTECH_SECRET_ACCESS_KEY"),
            )
        )
    if chosen == "didforsale":
        events = re.split(r"[\s,]+", _text(config, "DIDFORSALE_STATUS_EVENTS").strip())
        return DIDforSale(
            DIDforSaleSettings(
                **common,
                base_url=_url(config, "DIDFORSALE_API_URL", DIDFORSALE_URL),
                api_key=_text(config, "DIDFORSALE_API_KEY"),
                # Glue's status hook checks the `apikey` DIDforSale sends back.
                callback_secret=_text(config, "DIDML_SECRET"),
                number_format=_text(config, "DIDFORSALE_NUMBER_FORMAT").strip() or "digits",
                body=_text(config, "DIDFORSALE_BODY").strip() or "form",
                status_events=tuple(event for event in events if event) or STATUS_EVENTS,
            )
        )
    if chosen == "voiptech":
        return VoIPtech(
            VoIPtechSettings(
                **common,
                base_url=_url(config, "VOIPTECH_URL", ""),
                user=_text(config, "VOIPTECH_USER"),
                password=_text(config, "VOIPTECH_PASSWORD"),
                org=_text(config, "VOIPTECH_ORG"),
                number_format=_text(config, "VOIPTECH_NUMBER_FORMAT").strip() or "digits",
                timezone=_text(config, "VOIPTECH_TIMEZONE").strip() or "UTC",
                ident=_text(config, "VOIPTECH_IDENT"),
                max_retry=int(config.get("VOIPTECH_MAX_RETRY", 2)),
                retry_seconds=int(config.get("VOIPTECH_RETRY_SECONDS", 300)),
            )
        )
    if chosen == "twilio":
        return Twilio(
            TwilioSettings(
                **common,
                base_url=_url(config, "TWILIO_API_URL", TWILIO_URL),
                account_sid=_text(config, "TWILIO_ACCOUNT_SID").strip(),
                auth_token=_text(config, "TWILIO_AUTH_TOKEN"),
                api_key_sid=_text(config, "TWILIO_API_KEY_SID").strip(),
                api_key_secret=_text(config, "TWILIO_API_KEY_SECRET"),
            )
        )
    if chosen == "sandbox":
        return Sandbox(
            SandboxSettings(
                answer_after=float(config.get("SANDBOX_ANSWER_SECONDS", 2.0)),
                # Glue's didML status hook checks it, as for DIDforSale's `secretKey`.
                callback_secret=_text(config, "DIDML_SECRET"),
                caller_id=common["caller_id"],
            )
        )
    raise ValueError(f"unknown call provider {name!r}: one of {', '.join(PROVIDER_NAMES)}")


def _text(config: Mapping[str, Any], key: str) -> str:
    # Credentials are used verbatim: no stripping, whatever they hold.
    value = config.get(key)
    return "" if value is None else str(value)


def _url(config: Mapping[str, Any], key: str, default: str) -> str:
    return _text(config, key).strip() or default
