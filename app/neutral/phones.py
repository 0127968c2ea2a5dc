"""Phone numbers: everything stored is E.164, parsed by `phonenumbers`."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers


class PhoneError(ValueError):
    """A phone number that cannot be read or is not a valid number."""


def to_e164(raw: str, region: str = "US") -> str:
    """Normalise a number as a person or a platform writes it to E.164 (+13125551212)."""
    text = raw.strip()
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"invalid phone number {raw!r}: {exc}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise PhoneError(f"invalid phone number {raw!r}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=4096)
def try_e164(raw: str | None, region: str = "US") -> str | None:
    """E.164 for a caller ID if it is a valid number, else None (withheld, 'anonymous').

    Cached: one request reads its caller's number for the rate limits, the
    runner and the verifier, and parsing is the costly part."""
    if not raw:
        return None
    try:
        return to_e164(raw, region)
    except PhoneError:
        return None


def unformatted(e164: str) -> str:
    """Digits as IfbyPhone wants them: 10 digits for North America, else country code + number."""
    parsed = phonenumbers.parse(e164)
    if parsed.country_code == 1:
        return phonenumbers.national_significant_number(parsed)
    return e164.lstrip("+")
