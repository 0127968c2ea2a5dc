"""Lockout durations (pure)."""

from app.verification.lockout import LockoutPolicy


def test_lockout_doubles_with_each_lockout_and_is_capped() -> None:
    policy = LockoutPolicy(threshold=5, base_seconds=60, max_seconds=600)
    assert [policy.duration(n) for n in range(6)] == [60, 120, 240, 480, 600, 600]


def test_huge_lockout_counts_do_not_overflow() -> None:
    assert LockoutPolicy(base_seconds=60, max_seconds=3600).duration(10**6) == 3600


def test_from_config_reads_the_policy() -> None:
    config = {"LOCKOUT_THRESHOLD": 3, "LOCKOUT_BASE_SECONDS": 10, "LOCKOUT_MAX_SECONDS": 99}
    assert LockoutPolicy.from_config(config) == LockoutPolicy(3, 10, 99)
