"""PIN policy and keyed hashes (pure)."""

import pytest

from app.directory.pins import PinError, PinHasher, check_policy, looks_like_hash


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
