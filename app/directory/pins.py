"""PIN policy and keyed PIN hashes.

A PIN is stored as HMAC-SHA256(server secret, salt + PIN) with a random
per-record salt. The server secret lives outside the database, so a stolen
database alone cannot be brute-forced: a 4-digit PIN space is tiny, and only the
key stands between it and an attacker.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Flask, current_app

SCHEME = "hmac-sha256"


class PinError(ValueError):
    """A PIN that breaks the policy."""


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
