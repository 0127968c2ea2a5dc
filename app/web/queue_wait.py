"""How long a request waited in front of Glue before a worker began it.

Under overload, requests queue where nothing in Glue bounds their wait: in a
proxy, and in the listen backlog of gunicorn's socket. Two witnesses of that
wait, the larger wins:

- `X-Request-Start`, stamped by a proxy on arrival (`t=` and seconds,
  milliseconds or microseconds since the epoch, told apart by size; nginx:
  `proxy_set_header X-Request-Start "t=${msec}";`). Only a trusted proxy's,
  and only when GLUE_TRUST_REQUEST_START says the proxy sets it on a clock in
  step with Glue's: anyone else could make a request look late, and a clock
  behind by the budget would make every one look so.
- On Linux, the accepted TCP socket (gunicorn passes it as `gunicorn.socket`):
  TCP_INFO's `tcpi_last_data_recv` is the milliseconds since the request's
  last bytes arrived, which is how long it sat in the backlog.
"""

from __future__ import annotations

import math
import socket
import struct
import time
from collections.abc import Mapping
from typing import Any

# struct tcp_info (linux/tcp.h): eight one-byte fields, then 32-bit ones, of
# which tcpi_last_data_recv is the twelfth.
TCP_INFO_SIZE = 104
LAST_DATA_RECV = 52
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


def over_budget(environ: Mapping[str, Any], config: Mapping[str, Any]) -> float | None:
    """The request's wait when it is past GLUE_QUEUE_BUDGET (its caller has used
    up that much of the platform's few seconds already); else None."""
    budget = float(config["QUEUE_BUDGET"])
    if budget <= 0:
        return None
    trust_stamp = bool(config["TRUST_REQUEST_START"]) and int(config["TRUSTED_PROXIES"]) > 0
    wait = waited(environ, trust_stamp)
    return wait if wait is not None and wait > budget else None
