"""The destination policy on its own: real numbers of each type (phonenumbers'
example numbers), countries, prefixes and the settings it is built from."""

from __future__ import annotations

from pathlib import Path

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType

from app import create_app
from app.config import DEFAULTS
from app.outbound.destinations import (
    DEFAULT_REFUSED_TYPES,
    TYPES,
    DestinationPolicy,
    PolicySettingError,
    first_refusal,
)
from tests.helpers.settings import TEST_SECRETS

REGIONS = ("US", "CA", "GB", "FR", "DE", "AU", "IN", "JP")
DEFAULT_REFUSED = {TYPES[name] for name in DEFAULT_REFUSED_TYPES}


def policy(**settings: object) -> DestinationPolicy:
    return DestinationPolicy.from_config({**DEFAULTS, **settings})


def example(region: str, kind: int) -> str:
    number = phonenumbers.example_number_for_type(region, kind)
    assert number is not None, (region, kind)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def examples() -> list[tuple[str, int, str]]:
    """Every example number phonenumbers has for these regions, by type."""
    found = []
    for region in REGIONS:
        for kind in TYPES.values():
            if kind == PhoneNumberType.UNKNOWN:
                continue
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                found.append((region, kind, e164))
    return found


def test_the_defaults_refuse_premium_shared_cost_personal_uan_pager_voicemail_and_unknown() -> None:
    any_country = policy(CALL_ALLOWED_COUNTRIES="*")
    seen_refused, seen_called = set(), set()
    for region, kind, number in examples():
        reason = any_country.refusal(number)
        if kind in DEFAULT_REFUSED:
            assert reason is not None and reason.endswith("numbers are not called"), number
            seen_refused.add(kind)
        else:
            assert reason is None, (region, kind, number, reason)
            seen_called.add(kind)
    # The examples cover every type refused but unknown, and each type called.
    assert seen_refused == DEFAULT_REFUSED - {PhoneNumberType.UNKNOWN}
    assert seen_called == set(TYPES.values()) - DEFAULT_REFUSED


@pytest.mark.parametrize(
    ("region", "kind", "reason"),
    [
        ("US", PhoneNumberType.PREMIUM_RATE, "premium-rate numbers are not called"),
        ("GB", PhoneNumberType.PREMIUM_RATE, "premium-rate numbers are not called"),
        ("FR", PhoneNumberType.SHARED_COST, "shared-cost numbers are not called"),
        ("DE", PhoneNumberType.SHARED_COST, "shared-cost numbers are not called"),
        ("US", PhoneNumberType.PERSONAL_NUMBER, "personal numbers are not called"),
        ("GB", PhoneNumberType.PERSONAL_NUMBER, "personal numbers are not called"),
        ("GB", PhoneNumberType.UAN, "universal access (company) numbers are not called"),
        ("GB", PhoneNumberType.PAGER, "pager numbers are not called"),
        ("DE", PhoneNumberType.VOICEMAIL, "voicemail access numbers are not called"),
    ],
)
def test_each_refused_type_says_why(region: str, kind: int, reason: str) -> None:
    assert policy(CALL_ALLOWED_COUNTRIES=region).refusal(example(region, kind)) == reason


def test_ordinary_voip_and_toll_free_numbers_are_called() -> None:
    assert policy().refusal(example("US", PhoneNumberType.FIXED_LINE_OR_MOBILE)) is None
    assert policy().refusal(example("US", PhoneNumberType.TOLL_FREE)) is None
    gb = policy(CALL_ALLOWED_COUNTRIES="GB")
    for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.VOIP):
        assert gb.refusal(example("GB", kind)) is None


def test_a_number_phonenumbers_does_not_know_is_refused() -> None:
    # A country code nobody has, and a US number whose area code does not exist.
    for number in ("+8091234567", "+12005550100", "+1"):
        assert policy(CALL_ALLOWED_COUNTRIES="*").refusal(number) in (
            "numbers of an unknown type are not called",
            "numbers in no known country are not called",
        ), number
    assert policy().refusal("+12005550100") == "numbers in no known country are not called"


def test_only_the_deployments_region_is_called_by_default() -> None:
    default = policy(DEFAULT_REGION="US")
    assert default.refusal("+13125550101") is None
    # Canada shares +1 with the US but is another country.
    assert default.refusal(example("CA", PhoneNumberType.FIXED_LINE)) == (
        "numbers in CA are not called"
    )
    assert default.refusal(example("GB", PhoneNumberType.MOBILE)) == "numbers in GB are not called"
    assert policy(DEFAULT_REGION="GB").refusal("+13125550101") == "numbers in US are not called"


def test_allowed_countries_replace_the_default_region() -> None:
    north_america = policy(CALL_ALLOWED_COUNTRIES="US CA")
    assert north_america.refusal(example("CA", PhoneNumberType.FIXED_LINE)) is None
    assert north_america.refusal("+13125550101") is None
    assert north_america.refusal(example("GB", PhoneNumberType.MOBILE)) is not None
    # Commas, lower case: the same.
    assert policy(CALL_ALLOWED_COUNTRIES="us,gb") == policy(CALL_ALLOWED_COUNTRIES="GB US")
    # A country allowed does not admit its refused types.
    assert north_america.refusal(example("CA", PhoneNumberType.PREMIUM_RATE)) == (
        "premium-rate numbers are not called"
    )


def test_the_refused_types_are_configurable() -> None:
    voip_too = policy(CALL_ALLOWED_COUNTRIES="GB", CALL_REFUSED_TYPES="premium_rate VOIP")
    assert voip_too.refusal(example("GB", PhoneNumberType.VOIP)) == "VoIP numbers are not called"
    assert voip_too.refusal(example("GB", PhoneNumberType.PERSONAL_NUMBER)) is None
    nothing = policy(CALL_REFUSED_TYPES="")
    assert nothing.refusal(example("US", PhoneNumberType.PREMIUM_RATE)) is None


def test_an_allow_prefix_admits_a_number_of_another_country_or_a_refused_type() -> None:
    premium = example("US", PhoneNumberType.PREMIUM_RATE)  # +1900...
    london = example("GB", PhoneNumberType.FIXED_LINE)  # +4412...
    allowing = policy(CALL_ALLOW_PREFIXES="+1900234 +4412")
    assert allowing.refusal(premium) is None
    assert allowing.refusal(london) is None
    # Only what the prefixes cover.
    assert allowing.refusal("+19003456789") == "premium-rate numbers are not called"
    assert allowing.refusal(example("GB", PhoneNumberType.MOBILE)) == "numbers in GB are not called"


def test_a_deny_prefix_refuses_and_wins_over_an_allow_prefix() -> None:
    denying = policy(CALL_DENY_PREFIXES="+1312555", CALL_ALLOW_PREFIXES="+13125550101 +1")
    assert denying.refusal("+13125550101") == "numbers starting with this prefix are not called"
    assert denying.refusal("+13125550177") == "numbers starting with this prefix are not called"
    assert denying.refusal("+12015550123") is None
    # Without +, and as the integer a JSON-parsed variable would give.
    assert policy(CALL_DENY_PREFIXES=1312).deny_prefixes == ("+1312",)


def test_first_refusal_names_the_number() -> None:
    premium = example("US", PhoneNumberType.PREMIUM_RATE)
    assert first_refusal(policy(), ["+13125550101", None, premium]) == (
        f"{premium}: premium-rate numbers are not called"
    )
    assert first_refusal(policy(), ["+13125550101", None]) is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"CALL_ALLOWED_COUNTRIES": "US XX"}, "GLUE_CALL_ALLOWED_COUNTRIES: unknown region XX"),
        ({"CALL_REFUSED_TYPES": "premium"}, "GLUE_CALL_REFUSED_TYPES: unknown number type"),
        ({"CALL_DENY_PREFIXES": "+1-900"}, "GLUE_CALL_DENY_PREFIXES: '+1-900' is not"),
        ({"CALL_ALLOW_PREFIXES": "44*"}, "GLUE_CALL_ALLOW_PREFIXES: '44*' is not"),
    ],
)
def test_a_setting_that_cannot_be_read_stops_the_start(
    settings: dict[str, str], message: str, tmp_path: Path
) -> None:
    with pytest.raises(PolicySettingError, match=message.replace("+", r"\+").replace("*", r"\*")):
        policy(**settings)
    with pytest.raises(PolicySettingError):
        create_app({"TESTING": True, **TEST_SECRETS, **settings}, instance_path=str(tmp_path / "i"))


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GLUE_CALL_ALLOWED_COUNTRIES", "US CA")
    monkeypatch.setenv("GLUE_CALL_DENY_PREFIXES", "1900")
    monkeypatch.setenv("GLUE_CALL_ALLOW_PREFIXES", "+4420")
    app = create_app({"TESTING": True, **TEST_SECRETS}, instance_path=str(tmp_path / "i"))
    built = DestinationPolicy.from_config(app.config)
    assert built.allowed_countries == {"US", "CA"}
    assert (built.deny_prefixes, built.allow_prefixes) == (("+1900",), ("+4420",))
    assert built.refused_types == DEFAULT_REFUSED
    app.extensions["glue.engine"].dispose()
