"""Rate limits on the routes where callers enter PINs: per caller number and per
source address, checked after authentication (so a stranger cannot spend a
caller's allowance). And limits on the calls Glue places (CallLimits): per user
and per API token, and on the calls that read a user a code.

Built on `limits`, the engine under Flask-Limiter, because the check must come
after a platform's authentication and answer in the platform's XML. Counters
live in Redis when GLUE_REDIS_URL is set (shared by every worker and host), and
in the process otherwise (app/rate_limits/local_windows.py, not `limits`' memory
storage: see there why). If the store fails, the call goes on: a caller is
never cut off because Redis is down, and the log says so.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

from flask import Flask, current_app
from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from limits.util import WindowStats
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import queue_settings
from app.rate_limits.local_windows import LocalMovingWindows

log = logging.getLogger(__name__)

EXTENSION = "glue.rate_limits"
CALLS_EXTENSION = "glue.call_limits"
# Redis must answer fast or not at all: a caller is waiting.
REDIS_OPTIONS: dict[str, float | str | bool] = {
    "socket_timeout": 0.25,
    "socket_connect_timeout": 0.25,
}


@dataclass(frozen=True)
class Breach:
    """Which allowance a request went over, and when to try again."""

    scope: str  # "caller" or "source"
    limit: str
    retry_after: int  # seconds


class MovingWindows(Protocol):
    """What Glue asks of a moving-window limiter: `limits`' or the in-process one."""

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool: ...

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats: ...


class PinRouteLimits:
    def __init__(self, limiter: MovingWindows, per_caller: str, per_source: str) -> None:
        self.limiter = limiter
        self.per_caller = parse_many(per_caller) if per_caller else []
        self.per_source = parse_many(per_source) if per_source else []

    def hit(self, source: str, caller: str | None) -> Breach | None:
        """Count one request; the first allowance it goes over, if any.

        `caller` is None when the request names no call (it is malformed): it
        counts for its source only.
        """
        checks = [("source", source, item) for item in self.per_source]
        if caller is not None:
            checks += [("caller", caller, item) for item in self.per_caller]
        for scope, key, item in checks:
            if not self._hit(item, scope, key):
                return Breach(scope, str(item), self._retry_after(item, scope, key))
        return None

    def _hit(self, item: RateLimitItem, scope: str, key: str) -> bool:
        try:
            return self.limiter.hit(item, "pin-routes", scope, key)
        except Exception:
            log.warning("rate-limit store unreachable: %s not counted", scope, exc_info=True)
            return True

    def _retry_after(self, item: RateLimitItem, scope: str, key: str) -> int:
        try:
            reset_at = self.limiter.get_window_stats(item, "pin-routes", scope, key).reset_time
        except Exception:
            return item.get_expiry()
        return max(1, int(reset_at - time.time()) + 1)


class CallLimits:
    """Allowances of calls placed: each call counts against its user's and (from
    the API) its token's; a call that reads a code also against its user's code
    calls. Checked before anything is recorded, so a refused call is neither
    placed nor queued, and is not counted."""

    def __init__(self, limiter: MovingWindows, per_user: str, per_token: str, codes: str) -> None:
        self.limiter = limiter
        self.allowances = {
            scope: parse_many(value) if value else []
            for scope, value in (("user", per_user), ("token", per_token), ("code", codes))
        }

    def hit(self, user: str, token: str | None = None, code: bool = False) -> Breach | None:
        """Count one call for `user` (and `token`, and a code call); the first
        allowance it would go over, if any (then nothing is counted)."""
        keys = [("user", user)]
        if token is not None:
            keys.append(("token", token))
        if code:
            keys.append(("code", user))
        checks = [(scope, key, item) for scope, key in keys for item in self.allowances[scope]]
        # All are looked at before any is counted: a call refused by one
        # allowance spends none of the others.
        for scope, key, item in checks:
            stats = self._stats(item, scope, key)
            if stats is not None and stats.remaining < 1:
                return Breach(scope, str(item), _seconds_until(stats.reset_time))
        for scope, key, item in checks:
            try:
                counted = self.limiter.hit(item, "calls", scope, key)
            except Exception:
                log.warning("rate-limit store unreachable: %s call not counted", scope)
                continue
            if not counted:  # another request took the last one meanwhile
                stats = self._stats(item, scope, key)
                wait = _seconds_until(stats.reset_time) if stats else item.get_expiry()
                return Breach(scope, str(item), wait)
        return None

    def _stats(self, item: RateLimitItem, scope: str, key: str) -> WindowStats | None:
        try:
            return self.limiter.get_window_stats(item, "calls", scope, key)
        except Exception:
            log.warning("rate-limit store unreachable: %s call not counted", scope)
            return None


def _seconds_until(reset_at: float) -> int:
    return max(1, int(reset_at - time.time()) + 1)


def storage_uri(app: Flask) -> str:
    """GLUE_RATE_LIMIT_STORAGE_URL, else the queue's Redis, else this process's memory."""
    return app.config["RATE_LIMIT_STORAGE_URL"] or queue_settings().redis_url or "memory://"


def moving_windows(uri: str) -> MovingWindows:
    if uri == "memory://":
        return LocalMovingWindows()
    options = REDIS_OPTIONS if uri.startswith(("redis://", "rediss://")) else {}
    storage = storage_from_string(uri, **options)
    assert isinstance(storage, Storage)  # a synchronous store: "redis://", not "async+redis://"
    return MovingWindowRateLimiter(storage)


def init_app(app: Flask) -> None:
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        # Behind N proxies the source is the address the Nth one saw, read from
        # X-Forwarded-For; trusting more than there are would let anyone pick theirs.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies)  # type: ignore[method-assign]
    limiter = moving_windows(storage_uri(app))
    app.extensions[CALLS_EXTENSION] = CallLimits(
        limiter,
        app.config["CALL_LIMIT_PER_USER"],
        app.config["CALL_LIMIT_PER_TOKEN"],
        app.config["CODE_CALL_LIMIT_PER_USER"],
    )
    app.extensions[EXTENSION] = PinRouteLimits(
        limiter,
        app.config["RATE_LIMIT_PER_CALLER"] if app.config["RATE_LIMIT_ENABLED"] else "",
        app.config["RATE_LIMIT_PER_SOURCE"] if app.config["RATE_LIMIT_ENABLED"] else "",
    )


def get_limits() -> PinRouteLimits:
    limits: PinRouteLimits = current_app.extensions[EXTENSION]
    return limits


def get_call_limits() -> CallLimits:
    limits: CallLimits = current_app.extensions[CALLS_EXTENSION]
    return limits
