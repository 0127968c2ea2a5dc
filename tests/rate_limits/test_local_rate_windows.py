"""The in-process moving windows: `limits`' moving-window meaning, a cost per hit
that does not grow with the callers seen, and no background threads."""

from __future__ import annotations

import gc
import threading
import time

import pytest
from limits import parse

from app.rate_limits.local_windows import LocalMovingWindows

THREE_A_MINUTE = parse("3/minute")
TWO_AN_HOUR = parse("2/hour")


class Clock:
    def __init__(self) -> None:
        self.now = 5_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def windows(clock: Clock) -> LocalMovingWindows:
    return LocalMovingWindows(clock)


def test_the_window_moves_with_each_hit(windows: LocalMovingWindows, clock: Clock) -> None:
    assert [windows.hit(THREE_A_MINUTE, "caller", "+1312") for _ in range(3)] == [True] * 3
    clock.now += 30
    assert windows.hit(THREE_A_MINUTE, "caller", "+1312") is False
    clock.now += 30.5  # the first three hits are more than a minute old
    assert windows.hit(THREE_A_MINUTE, "caller", "+1312") is True
    assert windows.hit(THREE_A_MINUTE, "caller", "+1312") is True


def test_a_refused_hit_is_not_counted(windows: LocalMovingWindows, clock: Clock) -> None:
    for _ in range(3):
        windows.hit(THREE_A_MINUTE, "k")
    for _ in range(50):
        clock.now += 1
        assert windows.hit(THREE_A_MINUTE, "k") is False
    clock.now += 11  # 61 s after the three counted hits, whatever was refused since
    assert windows.hit(THREE_A_MINUTE, "k") is True


def test_keys_and_limits_count_apart(windows: LocalMovingWindows) -> None:
    assert windows.hit(TWO_AN_HOUR, "a") and windows.hit(TWO_AN_HOUR, "a")
    assert windows.hit(TWO_AN_HOUR, "a") is False
    assert windows.hit(TWO_AN_HOUR, "b") is True
    assert windows.hit(THREE_A_MINUTE, "a") is True


def test_window_stats_say_when_the_oldest_hit_leaves(
    windows: LocalMovingWindows, clock: Clock
) -> None:
    def stats() -> tuple[float, int]:
        """Seconds until the window frees a hit (reset_time is wall-clock), and hits left."""
        reset_time, remaining = windows.get_window_stats(THREE_A_MINUTE, "k")
        return round(reset_time - time.time()), remaining

    assert stats() == (60, 3)
    windows.hit(THREE_A_MINUTE, "k")
    clock.now += 20
    windows.hit(THREE_A_MINUTE, "k")
    assert stats() == (40, 1)
    clock.now += 45
    assert stats() == (15, 2)


def test_a_hit_one_window_old_still_counts_as_in_limits(
    windows: LocalMovingWindows, clock: Clock
) -> None:
    for _ in range(3):
        windows.hit(THREE_A_MINUTE, "k")
    clock.now += 60
    assert windows.hit(THREE_A_MINUTE, "k") is False
    clock.now += 0.001
    assert windows.hit(THREE_A_MINUTE, "k") is True


def test_quiet_keys_are_forgotten(windows: LocalMovingWindows, clock: Clock) -> None:
    for n in range(10_000):
        windows.hit(TWO_AN_HOUR, "caller", str(n))
        windows.hit(THREE_A_MINUTE, "caller", str(n))
    assert len(windows) == 20_000
    clock.now += 61
    windows.hit(THREE_A_MINUTE, "caller", "new")
    assert len(windows) == 10_001  # the minute's keys went quiet; the hour's did not
    clock.now += 3600
    windows.hit(TWO_AN_HOUR, "caller", "new")
    windows.hit(THREE_A_MINUTE, "caller", "newer")
    assert len(windows) == 2


def test_no_thread_is_started() -> None:
    before = threading.active_count()
    windows = LocalMovingWindows()
    for n in range(2_000):
        windows.hit(THREE_A_MINUTE, "caller", str(n))
    assert threading.active_count() == before


def test_the_callers_held_add_nothing_for_the_garbage_collector_to_walk(
    windows: LocalMovingWindows, clock: Clock
) -> None:
    """A full collection walks every object the collector tracks: an hour of
    callers must not be among them."""
    gc.collect()
    before = len(gc.get_objects())
    for n in range(2_000):
        clock.now += 0.01
        windows.hit(TWO_AN_HOUR, "caller", f"+1312{n:07d}")
        windows.hit(THREE_A_MINUTE, "caller", f"+1312{n:07d}")
    gc.collect()
    assert len(windows) == 4_000
    assert len(gc.get_objects()) - before < 100


def test_a_key_with_many_hits_keeps_the_moving_window(
    windows: LocalMovingWindows, clock: Clock
) -> None:
    """A platform's source address: thousands of hits a minute in one key."""
    per_source = parse("3000/minute")
    start = clock.now
    for n in range(1, 3_001):
        clock.now = start + n / 100  # 30 s of hits
        assert windows.hit(per_source, "source", "10.0.0.1")
    assert windows.hit(per_source, "source", "10.0.0.1") is False
    assert windows.get_window_stats(per_source, "source", "10.0.0.1").remaining == 0
    clock.now += 30.505  # the first 50 hits are now more than a minute old
    assert [windows.hit(per_source, "source", "10.0.0.1") for _ in range(51)] == [True] * 50 + [
        False
    ]
    clock.now += 60.5
    assert windows.get_window_stats(per_source, "source", "10.0.0.1").remaining == 3_000
