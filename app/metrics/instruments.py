"""What Glue counts, and one function per thing counted.

Every label takes a bounded set of values: routes are the app's URL rules
(never a raw path), platforms and providers are the ones Glue knows, flows are
the published ones, statuses and outcomes are fixed words. No label ever names
a caller, a number or an account.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

# Imported for what it does first: counts go to the host's folder.
from app.metrics import files  # noqa: F401

# Not registered anywhere: /metrics reads every process's files instead.
REQUESTS = Counter(
    "glue_http_requests",
    "HTTP requests answered, by URL rule, platform and status",
    ["route", "platform", "status"],
    registry=None,
)
LATENCY = Histogram(
    "glue_http_request_duration_seconds",
    "Seconds from a request's arrival in the app to its answer, by URL rule and platform",
    ["route", "platform"],
    # A platform waits a few seconds at most; database bounds are under a second.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=None,
)
VERIFICATIONS = Counter(
    "glue_verifications",
    "Verifications ended, by flow and outcome (verified, failed, locked, no_input)",
    ["flow", "outcome"],
    registry=None,
)
LOCKOUTS = Counter(
    "glue_lockouts",
    "Accounts locked by a failed attempt, by what the caller claimed (account, group, caller_id)",
    ["claim"],
    registry=None,
)
CALLS_PLACED = Counter(
    "glue_calls_placed",
    "Attempts to place an outbound call, by provider and outcome",
    ["provider", "outcome"],
    registry=None,
)
DATABASE_ERRORS = Counter(
    "glue_database_errors",
    "Errors from the database (connections and statements), by kind",
    ["kind"],
    registry=None,
)
FALLBACKS = Counter(
    "glue_fallbacks_served",
    "Platform requests answered with the flow's fallback (its error steps) "
    "because the turn failed or was shed, by platform, flow and reason "
    "(database, error or overload)",
    ["platform", "flow", "reason"],
    registry=None,
)
SHED = Counter(
    "glue_turns_shed",
    "Platform turns answered with the flow's fallback, without their work, because "
    "they had waited in front of Glue past GLUE_QUEUE_BUDGET, or past "
    "GLUE_QUEUE_TARGET while the queue stood, by platform",
    ["platform"],
    registry=None,
)

QUEUE_WAIT = Histogram(
    "glue_request_queue_seconds",
    "Seconds platform turns had waited in front of Glue (a proxy's queue, the "
    "listen backlog) when a worker began them, by platform",
    ["platform"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=None,
)


# Labelled series, each looked up once (labels() costs as much as the count
# itself): those counted on every platform request, or every shed one. As
# bounded as the labels.
_series: dict[tuple[Any, tuple[str, ...]], Any] = {}


def _labelled(metric: Any, *values: str) -> Any:
    key = (metric, values)
    series = _series.get(key)
    if series is None:
        series = _series[key] = metric.labels(*values)
    return series


def request_answered(route: str, platform: str, status: int, seconds: float) -> None:
    _labelled(REQUESTS, route, platform, str(status)).inc()
    _labelled(LATENCY, route, platform).observe(seconds)


def verification_ended(flow: str, outcome: str) -> None:
    VERIFICATIONS.labels(flow, outcome).inc()


def account_locked(claim: str) -> None:
    LOCKOUTS.labels(claim).inc()


def call_placed(provider: str, outcome: str) -> None:
    CALLS_PLACED.labels(provider, outcome).inc()


def database_error(kind: str) -> None:
    DATABASE_ERRORS.labels(kind).inc()


def fallback_served(platform: str, flow: str, reason: str) -> None:
    _labelled(FALLBACKS, platform, flow, reason).inc()


def turn_shed(platform: str) -> None:
    _labelled(SHED, platform).inc()


def queue_waited(platform: str, seconds: float) -> None:
    _labelled(QUEUE_WAIT, platform).observe(seconds)
