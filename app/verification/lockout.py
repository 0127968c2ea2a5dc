"""Lockout policy: how many failures lock an account, and for how long."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LockoutPolicy:
    threshold: int = 5  # failures in a row that lock the account
    base_seconds: int = 900  # the first lockout
    max_seconds: int = 86400

    def duration(self, previous_lockouts: int) -> int:
        """Seconds of the next lockout: doubles with each one before it, capped."""
        return min(self.base_seconds * 2 ** min(previous_lockouts, 30), self.max_seconds)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LockoutPolicy:
        return cls(
            threshold=int(config["LOCKOUT_THRESHOLD"]),
            base_seconds=int(config["LOCKOUT_BASE_SECONDS"]),
            max_seconds=int(config["LOCKOUT_MAX_SECONDS"]),
        )
