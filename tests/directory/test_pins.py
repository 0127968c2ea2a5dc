"""PIN policy and keyed hashes (pure)."""

import pytest

from app.directory.pins import PinError, PinHasher, PinPolicy, check_policy, looks_like_hash


def test_hash_verifies_only_the_right_pin() -> None:
    hasher = PinHasher("server-secret")
    stored = hasher.hash("2468")
    assert hasher.verify("2468", stored)
    assert not hasher.verify("2469", stored)
    assert not hasher.verify("", stored)
    assert "2468" not in stored
    assert looks_like_hash(stored)


def test_same_pin_gets_a_different_salt_each_time() -> None:
    hasher = PinHasher("server-secret")
    first, second = hasher.hash("2468"), hasher.hash("2468")
    assert first != second
    assert hasher.verify("2468", first) and hasher.verify("2468", second)


def test_database_alone_does_not_verify_without_the_server_secret() -> None:
    stored = PinHasher("server-secret").hash("2468")
    assert not PinHasher("another-secret").verify("2468", stored)


@pytest.mark.parametrize("stored", [None, "", "garbage", "md5$aa$bb", "hmac-sha256$x"])
def test_unusable_stored_values_never_verify(stored: str | None) -> None:
    assert not PinHasher("s").verify("2468", stored)


@pytest.mark.parametrize("pin", ["1234", "0000", "1234567890"])
def test_policy_accepts_4_to_10_digits(pin: str) -> None:
    assert check_policy(pin, 4, 10) == pin


FULLWIDTH_1234 = "\uff11\uff12\uff13\uff14"  # digits to str.isdigit(), not to a keypad


@pytest.mark.parametrize("pin", ["123", "12345678901", "12a4", "", FULLWIDTH_1234, " 1234"])
def test_policy_refuses_other_pins(pin: str) -> None:
    with pytest.raises(PinError):
        check_policy(pin, 4, 10)


@pytest.mark.parametrize(
    ("pin", "allowed"),
    [
        ("1234", True),
        ("12345678", True),
        ("123", False),
        ("123456789", False),
        ("1234567890", False),
    ],
)
def test_the_default_policy_is_what_the_shipped_flows_take(pin: str, allowed: bool) -> None:
    # survo_forms/*.yaml ask for 4 to 8 digits: a 9- or 10-digit PIN could never be keyed in.
    if allowed:
        assert PinPolicy().check(pin) == pin
    else:
        with pytest.raises(PinError, match=r"^PIN must be 4-8 digits$"):
            PinPolicy().check(pin)


def test_the_policy_comes_from_the_configuration() -> None:
    policy = PinPolicy.from_config({"PIN_MIN_LENGTH": "6", "PIN_MAX_LENGTH": 12})
    assert (policy.min_length, policy.max_length, policy.flows) == (6, 12, {})


def test_with_flows_a_pin_must_fit_at_least_one_flows_pin_question() -> None:
    policy = PinPolicy(4, 10).with_flows({"verify_caller": (4, 8), "long_line": (6, 9)})
    assert policy.check("12345678") == "12345678"
    assert policy.check("123456789") == "123456789"  # long_line takes it
    with pytest.raises(PinError) as caught:
        policy.check("1234567890")
    assert str(caught.value) == (
        "no flow can take a 10-digit PIN (their PIN questions take: "
        "verify_caller 4-8, long_line 6-9 digits)"
    )
    with pytest.raises(PinError, match=r"^PIN must be 4-10 digits$"):
        policy.check("12345678901")  # the policy itself comes first
