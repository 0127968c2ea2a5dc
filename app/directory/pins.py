"""PIN policy and keyed PIN hashes.

The policy is the one rule for every PIN the directory takes (the CLI, the
import, the demo): digits only, GLUE_PIN_MIN_LENGTH to GLUE_PIN_MAX_LENGTH of
them. Its default matches the PIN questions of the shipped flows, which take 4
to 8 digits: a PIN longer than a flow's question takes could never be keyed in.
`flask forms check` reports a flow whose PIN question cannot take every length
the policy allows, and the CLI also refuses a PIN that no flow could take.

A PIN is stored as HMAC-SHA256(server secret, salt + PIN) with a random
per-record salt. The server secret lives outside the database, so a stolen
database alone cannot be brute-forced: a 4-digit PIN space is tiny, and only the
key stands between it and an attacker.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from flask import Flask, current_app

SCHEME = "hmac-sha256"


class PinError(ValueError):
    """A PIN that breaks the policy."""


@dataclass(frozen=True)
class PinPolicy:
    """How long a PIN may be; `flows` narrows it to lengths some flow can take."""

    min_length: int = 4
    max_length: int = 8
    # Flow name -> the PIN lengths its PIN question takes (lowest, highest).
    # Empty: no flow is consulted (no flows, or none loaded).
    flows: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PinPolicy:
        return cls(int(config["PIN_MIN_LENGTH"]), int(config["PIN_MAX_LENGTH"]))

    def with_flows(self, flows: Mapping[str, tuple[int, int]]) -> PinPolicy:
        return replace(self, flows=dict(flows))

    def check(self, pin: str) -> str:
        """Return the PIN if the policy allows it and some flow can take it,
        else raise PinError saying why."""
        check_policy(pin, self.min_length, self.max_length)
        if self.flows and not any(low <= len(pin) <= high for low, high in self.flows.values()):
            takes = ", ".join(f"{name} {low}-{high}" for name, (low, high) in self.flows.items())
            raise PinError(
                f"no flow can take a {len(pin)}-digit PIN (their PIN questions take: "
                f"{takes} digits)"
            )
        return pin


def check_policy(pin: str, min_length: int, max_length: int) -> str:
    """Return the PIN if it is min..max ASCII digits, else raise PinError."""
    if not (pin.isascii() and pin.isdigit()):
        raise PinError("PIN must contain digits only")
    if not min_length <= len(pin) <= max_length:
        raise PinError(f"PIN must be {min_length}-{max_length} digits")
    return pin


class PinHasher:
    def __init__(self, secret: str) -> None:
        self._key = secret.encode()
        # Compared against when a claim matches no record, so that an unknown
        # account costs the same time as a known one with a wrong PIN.
        self.decoy = self.hash("0000")

    def hash(self, pin: str) -> str:
        salt = secrets.token_hex(16)
        return f"{SCHEME}${salt}${self._mac(salt, pin)}"

    def verify(self, pin: str, stored: str | None) -> bool:
        """Constant-time check of a PIN against a stored hash."""
        if not stored:
            return False
        try:
            scheme, salt, mac = stored.split("$")
        except ValueError:
            return False
        if scheme != SCHEME:
            return False
        return hmac.compare_digest(self._mac(salt, pin), mac)

    def derive(self, purpose: str, seed: str) -> bytes:
        """A value only the holder of the key can derive from `seed`, one per purpose."""
        return hmac.new(self._key, f"{purpose}:{seed}".encode(), hashlib.sha256).digest()

    def _mac(self, salt: str, pin: str) -> str:
        return hmac.new(self._key, f"{salt}:{pin}".encode(), hashlib.sha256).hexdigest()


def looks_like_hash(value: str) -> bool:
    """True for a value in the stored format (used by import of exported hashes)."""
    parts = value.split("$")
    return len(parts) == 3 and parts[0] == SCHEME and len(parts[2]) == 64


def init_app(app: Flask) -> None:
    app.extensions["glue.pin_hasher"] = PinHasher(app.config["PIN_SECRET"])


def get_hasher() -> PinHasher:
    hasher: PinHasher = current_app.extensions["glue.pin_hasher"]
    return hasher
