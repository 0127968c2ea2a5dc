"""Moving-window rate limits in this process's memory, for when there is no Redis.

`limits`' own memory storage sweeps every key it holds from a timer thread,
every 10 ms. A key per caller number is kept for an hour, so that sweep grows
with every new caller and holds the GIL while requests wait. Here a key is pruned when
it is hit, and keys that have gone quiet are dropped oldest first by the hits
that come after, so a hit costs the same however many callers there have been.
A caller's few hits are a tuple of floats, which the garbage collector stops
tracking, so a full collection does not walk every caller of the last hour; a
key with more (a platform's source address) is a deque, added to in place
rather than copied on every hit.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import OrderedDict, deque
from collections.abc import Callable

from limits import RateLimitItem
from limits.util import WindowStats

FEW = 16  # hits a key keeps as a tuple; past that, a deque
Hits = tuple[float, ...] | deque[float]


class LocalMovingWindows:
    """The two calls of `limits.strategies.MovingWindowRateLimiter` Glue makes,
    with the same meaning: a hit is refused, and not counted, when the last
    window already holds the limit's amount."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock  # never steps back, so each key's hits stay in order
        self._lock = threading.Lock()
        # Per window length: each key's hit times, oldest first. The keys are
        # in the order of their last hit, so the quiet ones are at the front.
        self._windows: dict[int, OrderedDict[str, Hits]] = {}

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        expiry = item.get_expiry()
        key = item.key_for(*identifiers)
        with self._lock:
            now = self._clock()
            keys = self._windows.setdefault(expiry, OrderedDict())
            _forget_quiet(keys, now - expiry)
            hits = _since(keys.get(key, ()), now - expiry)
            if len(hits) + cost > item.amount:
                if key in keys:
                    keys[key] = hits  # pruned, in its place among the keys
                return False
            keys[key] = _added(hits, now, cost)
            keys.move_to_end(key)
            return True

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        """When the oldest hit in the window leaves it (seconds since the epoch,
        as `limits` gives it), and how many are left."""
        expiry = item.get_expiry()
        with self._lock:
            now = self._clock()
            keys = self._windows.get(expiry)
            hits: Hits = keys.get(item.key_for(*identifiers), ()) if keys is not None else ()
            hits = _since(hits, now - expiry)
            if not hits:
                return WindowStats(time.time() + expiry, item.amount)
            return WindowStats(time.time() + hits[0] + expiry - now, item.amount - len(hits))

    def __len__(self) -> int:
        """How many keys are held."""
        with self._lock:
            return sum(len(keys) for keys in self._windows.values())


def _since(hits: Hits, horizon: float) -> Hits:
    """The hits within the window (one exactly a window old counts, as in `limits`)."""
    if isinstance(hits, deque):
        while hits and hits[0] < horizon:
            hits.popleft()
        return hits
    first = bisect_left(hits, horizon)
    return hits[first:] if first else hits


def _added(hits: Hits, now: float, cost: int) -> Hits:
    if isinstance(hits, deque):
        hits.extend([now] * cost)
        return hits
    if len(hits) + cost > FEW:
        return deque((*hits, *[now] * cost))
    return hits + (now,) * cost


def _forget_quiet(keys: OrderedDict[str, Hits], horizon: float) -> None:
    """Drop the keys whose every hit is out of the window."""
    while keys:
        key, hits = next(iter(keys.items()))
        if hits and hits[-1] >= horizon:
            return
        del keys[key]
