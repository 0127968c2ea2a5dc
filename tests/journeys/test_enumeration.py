"""Enumeration safety, re-checked on every platform: a caller trying account
numbers learns nothing from what they hear. An unknown account, a disabled one
and a real one with a wrong PIN sound alike, and lock after the same number of
tries (on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.helpers.directory import add_user
from tests.helpers.journeys import PLATFORMS, Driver, Heard


@pytest.fixture
def app_config(app_config: dict[str, object]) -> dict[str, object]:
    # One test number makes every call here: more than one caller's allowance.
    return {**app_config, "RATE_LIMIT_ENABLED": False}


def wrong_pins_until_locked(client: FlaskClient, platform: str, account: str) -> list[Heard]:
    """Two calls of wrong PINs for `account` (three tries, then two), then one
    with the real PIN of account 1001: what the caller hears each time."""
    first = Driver(client, platform, "verify_caller", f"{account}-1")
    second = Driver(client, platform, "verify_caller", f"{account}-2")
    heard = [first.attempt(account, "0000") for _ in range(3)]
    heard += [second.attempt(account, "0000") for _ in range(2)]
    last = Driver(client, platform, "verify_caller", f"{account}-3")
    return [*heard, last.attempt(account, "2468")]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_unknown_disabled_and_real_accounts_sound_alike(
    client: FlaskClient, session: Session, platform: str
) -> None:
    add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    add_user(session, "1005", "Gone Away", "2468", "+13125550105", active=False)
    real = wrong_pins_until_locked(client, platform, "1001")
    unknown = wrong_pins_until_locked(client, platform, "9999")
    disabled = wrong_pins_until_locked(client, platform, "1005")
    assert real == unknown == disabled
    # The last try had the right PIN for 1001: refused because it was locked.
    assert "locked" in real[-1].says[0]
