"""How long a request waited in front of Glue before a worker began it.

Under overload, requests queue where nothing in Glue bounds their wait: in a
proxy, and in the listen backlog of gunicorn's socket. Two witnesses of that
wait, the larger wins:

- `X-Request-Start`, stamped by a proxy on arrival (`t=` and seconds,
  milliseconds or microseconds since the epoch, told apart by size; nginx:
  `proxy_set_header X-Request-Start "t=${msec}";`). Only a trusted proxy's,
  and only when GLUE_TRUST_REQUEST_START says the proxy sets it on a clock in
  step with Glue's: anyone else could make a request look late, and a clock
  behind by the target would make every one look so, and be shed once that
  looked like a standing queue.
- On Linux, the accepted TCP socket (gunicorn passes it as `gunicorn.socket`):
  TCP_INFO's `tcpi_last_data_recv` is the milliseconds since the request's
  last bytes arrived, which is how long it sat in the backlog.

A turn is shed when it waited past GLUE_QUEUE_BUDGET, or past the much shorter
GLUE_QUEUE_TARGET while the queue stands: when every turn this process began
for STANDING_INTERVAL had waited past the target (the controlled-delay rule).
A burst that the workers clear within the interval loses nobody; under
sustained overload the queue stays at about the target instead of the budget,
so the callers served wait about the target, and the others hear the apology
at once rather than after the budget's silence.
"""

from __future__ import annotations

import math
import socket
import struct
import time
from collections.abc import Mapping
from typing import Any

from app.metrics import instruments as metrics

# struct tcp_info (linux/tcp.h): eight one-byte fields, then 32-bit ones, of
# which tcpi_last_data_recv is the twelfth.
TCP_INFO_SIZE = 104
LAST_DATA_RECV = 52
EXTENSION = "glue.standing_queue"
# How long every turn must have waited past the target before the queue is
# taken to stand: a burst of callers, or a stall of the database, is over
# within it, and callers queued that long are still answered within the
# platforms' 5 s.
STANDING_INTERVAL = 2.0
# A stamp this far from the clock is a wrong clock or unit, not a queue.
PLAUSIBLE_SECONDS = 3600.0
# Seconds since the epoch stay below this until the year 5138; milliseconds and
# microseconds are above it.
SECONDS_BELOW = 1e11


def waited(environ: Mapping[str, Any], trust_stamp: bool) -> float | None:
    """Seconds the request waited before this worker began it; None when nothing says."""
    waits = [from_socket(environ.get("gunicorn.socket"))]
    stamp = environ.get("HTTP_X_REQUEST_START")
    if trust_stamp and stamp:
        waits.append(from_request_start(stamp, time.time()))
    known = [wait for wait in waits if wait is not None]
    return max(known) if known else None


def from_request_start(value: str, now: float) -> float | None:
    """The wait an `X-Request-Start` value says (`t=1733580000.123`, or in
    milliseconds or microseconds, with or without `t=`), at `now` (epoch seconds)."""
    text = value.strip().removeprefix("t=")
    try:
        stamp = float(text)
    except ValueError:
        return None
    if not math.isfinite(stamp) or stamp <= 0:
        return None
    while stamp >= SECONDS_BELOW:
        stamp /= 1000
    wait = now - stamp
    if abs(wait) > PLAUSIBLE_SECONDS:
        return None
    return max(wait, 0.0)  # a proxy's clock a little ahead of ours


def from_socket(sock: Any) -> float | None:
    """Seconds since the last bytes arrived on `sock`, a TCP socket on Linux; else None."""
    option = getattr(socket, "TCP_INFO", None)
    if option is None or not isinstance(sock, socket.socket):
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, option, TCP_INFO_SIZE)
    except OSError:
        return None  # a Unix socket, or a closed one
    if len(info) < LAST_DATA_RECV + 4:
        return None
    (milliseconds,) = struct.unpack_from("=I", info, LAST_DATA_RECV)
    return float(milliseconds) / 1000


class StandingQueue:
    """Whether the queue in front of this process stands: every turn it began
    for the last `interval` seconds had waited past the target. One per
    process (app.extensions). Under threaded workers each call reads the
    state once and writes it whole, so a race costs one request an early or
    late switch, never an error."""

    def __init__(self, interval: float = STANDING_INTERVAL) -> None:
        self.interval = interval
        # (since when every turn waited past the target, the last such turn)
        self._above: tuple[float, float] | None = None
        self._last_shed = -math.inf

    def stands(self, wait: float, target: float, now: float) -> bool:
        """Note a turn's `wait` at `now` (monotonic seconds): True when it waited
        past `target` and the queue stands (the turn is then counted as shed)."""
        if wait <= target:
            self._above = None
            return False
        above = self._above
        if above is None or now - above[1] > self.interval:
            # A new queue; or no turn for an interval, so nothing stood meanwhile.
            # Soon after shedding it is the same overload: shed at once.
            recent = now - self._last_shed < self.interval
            since = now - self.interval if recent else now
        else:
            since = above[0]
        self._above = (since, now)
        if now - since < self.interval:
            return False
        self._last_shed = now
        return True


def too_late(
    environ: Mapping[str, Any], config: Mapping[str, Any], standing: StandingQueue, platform: str
) -> float | None:
    """The `platform`'s turn's wait when it should be shed: past GLUE_QUEUE_BUDGET (its
    caller has used up that much of the platform's few seconds already), or
    past GLUE_QUEUE_TARGET while the queue stands; else None. Every wait
    known is counted, shedding or not (glue_request_queue_seconds)."""
    trust_stamp = bool(config["TRUST_REQUEST_START"]) and int(config["TRUSTED_PROXIES"]) > 0
    wait = waited(environ, trust_stamp)
    if wait is None:
        return None
    metrics.queue_waited(platform, wait)
    budget = float(config["QUEUE_BUDGET"])
    if budget <= 0:
        return None
    target = float(config["QUEUE_TARGET"])
    # Every turn is noted, those past the budget too: they are the queue standing.
    stands = target > 0 and standing.stands(wait, target, time.monotonic())
    return wait if stands or wait > budget else None
