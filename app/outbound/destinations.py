"""Which numbers Glue may call: the destination policy, checked before anything is sent.

Every call costs money and rings a person, and a click-to-call service that
dials whatever number it is given is the classic target of toll fraud (calls
pumped to premium-rate or far-away numbers that share their revenue). So each
number a call would ring is read by `phonenumbers` and checked, in this order:

1. a deny prefix refuses it (deny wins over everything);
2. an allow prefix admits it, whatever its country or type;
3. a country not allowed refuses it;
4. a number type refused (by default premium rate, shared cost, personal
   numbers, UAN, pagers, voicemail access and unknown) refuses it.

Pure: no Flask, no database; the policy is built from the settings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberType

# Number types by their names in the settings (phonenumbers' names, lower case).
TYPES: Mapping[str, int] = {
    name.lower(): value
    for name, value in vars(PhoneNumberType).items()
    if name.isupper() and isinstance(value, int)
}
NAME_OF_TYPE: Mapping[int, str] = {value: name for name, value in TYPES.items()}

# Refused unless the settings say otherwise. Premium rate and shared cost are
# charged above a normal call; personal numbers (UK 070, US 500), UAN (company
# numbers such as UK 055) and pagers are often charged like premium numbers and
# are known toll-fraud targets; no person answers a pager or a voicemail access
# number; unknown means phonenumbers cannot say what the number is. VoIP and
# toll-free numbers are called: many people's own phones are VoIP numbers, and
# a toll-free call is paid by the number called.
DEFAULT_REFUSED_TYPES = (
    "premium_rate",
    "shared_cost",
    "personal_number",
    "uan",
    "pager",
    "voicemail",
    "unknown",
)

# Why a number of each type is refused, as a person reads it.
TYPE_REASON: Mapping[int, str] = {
    PhoneNumberType.PREMIUM_RATE: "premium-rate numbers are not called",
    PhoneNumberType.SHARED_COST: "shared-cost numbers are not called",
    PhoneNumberType.PERSONAL_NUMBER: "personal numbers are not called",
    PhoneNumberType.UAN: "universal access (company) numbers are not called",
    PhoneNumberType.PAGER: "pager numbers are not called",
    PhoneNumberType.VOICEMAIL: "voicemail access numbers are not called",
    PhoneNumberType.UNKNOWN: "numbers of an unknown type are not called",
    PhoneNumberType.VOIP: "VoIP numbers are not called",
    PhoneNumberType.TOLL_FREE: "toll-free numbers are not called",
    PhoneNumberType.MOBILE: "mobile numbers are not called",
    PhoneNumberType.FIXED_LINE: "fixed-line numbers are not called",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed-line and mobile numbers are not called",
}

ANY_COUNTRY = "*"
_SEPARATORS = re.compile(r"[\s,;]+")
_PREFIX = re.compile(r"\+?[0-9]{1,15}")


class PolicySettingError(ValueError):
    """A destination policy setting that cannot be read."""


@dataclass(frozen=True)
class DestinationPolicy:
    """Which numbers may be called. `allowed_countries` holds region codes
    (`US`, `CA`); None allows every country. Prefixes are E.164 (`+1900`)."""

    allowed_countries: frozenset[str] | None
    refused_types: frozenset[int]
    allow_prefixes: tuple[str, ...] = ()
    deny_prefixes: tuple[str, ...] = ()

    def refusal(self, e164: str) -> str | None:
        """Why `e164` may not be called, or None if it may."""
        number = e164.strip()
        if not number.startswith("+"):
            number = "+" + number
        if _matches(number, self.deny_prefixes):
            return "numbers starting with this prefix are not called"
        if _matches(number, self.allow_prefixes):
            return None
        try:
            parsed = phonenumbers.parse(number)
        except phonenumbers.NumberParseException:
            parsed = None
        region = phonenumbers.region_code_for_number(parsed) if parsed is not None else None
        if self.allowed_countries is not None and region not in self.allowed_countries:
            return f"numbers in {_country_name(region)} are not called"
        kind = (
            phonenumbers.number_type(parsed)
            if parsed is not None and phonenumbers.is_valid_number(parsed)
            else PhoneNumberType.UNKNOWN
        )
        if kind in self.refused_types:
            return TYPE_REASON.get(kind, f"{NAME_OF_TYPE.get(kind, kind)} numbers are not called")
        return None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DestinationPolicy:
        """The policy of GLUE_CALL_ALLOWED_COUNTRIES (empty: GLUE_DEFAULT_REGION;
        `*`: any), GLUE_CALL_REFUSED_TYPES, GLUE_CALL_ALLOW_PREFIXES and
        GLUE_CALL_DENY_PREFIXES (words separated by spaces or commas)."""
        countries = _words(config.get("CALL_ALLOWED_COUNTRIES")) or _words(
            config.get("DEFAULT_REGION")
        )
        allowed: frozenset[str] | None
        if ANY_COUNTRY in countries:
            allowed = None
        else:
            allowed = frozenset(word.upper() for word in countries)
            known = phonenumbers.SUPPORTED_REGIONS
            unknown = sorted(allowed - known)
            if unknown:
                raise PolicySettingError(
                    f"GLUE_CALL_ALLOWED_COUNTRIES: unknown region {', '.join(unknown)} "
                    "(two-letter codes such as US, CA, GB; or * for any)"
                )
        refused = set()
        for word in _words(config.get("CALL_REFUSED_TYPES")):
            name = word.lower()
            if name not in TYPES:
                raise PolicySettingError(
                    f"GLUE_CALL_REFUSED_TYPES: unknown number type {word!r} "
                    f"(one of {', '.join(sorted(TYPES))})"
                )
            refused.add(TYPES[name])
        return cls(
            allowed_countries=allowed,
            refused_types=frozenset(refused),
            allow_prefixes=_prefixes("GLUE_CALL_ALLOW_PREFIXES", config.get("CALL_ALLOW_PREFIXES")),
            deny_prefixes=_prefixes("GLUE_CALL_DENY_PREFIXES", config.get("CALL_DENY_PREFIXES")),
        )


def first_refusal(policy: DestinationPolicy, numbers: Iterable[str | None]) -> str | None:
    """The reason the first refused number is refused, naming it; None if all may be called."""
    for number in numbers:
        if number:
            reason = policy.refusal(number)
            if reason is not None:
                return f"{number}: {reason}"
    return None


def _matches(number: str, prefixes: Iterable[str]) -> bool:
    return any(number.startswith(prefix) for prefix in prefixes)


def _words(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple | set | frozenset):
        return [str(item) for item in value if str(item).strip()]
    return [word for word in _SEPARATORS.split(str(value)) if word]


def _prefixes(setting: str, value: Any) -> tuple[str, ...]:
    found = []
    for word in _words(value):
        if not _PREFIX.fullmatch(word):
            raise PolicySettingError(f"{setting}: {word!r} is not an E.164 prefix such as +1900")
        found.append(word if word.startswith("+") else "+" + word)
    return tuple(found)


def _country_name(region: str | None) -> str:
    if not region or region == phonenumbers.UNKNOWN_REGION:
        return "no known country"
    return region
