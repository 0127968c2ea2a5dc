"""What the admin overview shows, read from the database alone (a single host
needs no metrics server): calls per hour, each flow's verification funnel,
the providers' outcomes, and how long the platforms' requests took.

Counting is done by the database (GROUP BY an hour bucket, on SQLite and
PostgreSQL alike); percentiles in Python over the day's timed requests, one
code path for both.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, or_, select
from sqlalchemy.orm import Session

from app.flows.progress import CLAIM, PIN
from app.flows.statuses import FINAL_RANK, NO_FLOW, RANK
from app.models import Call, CallAction, CallEvent

# A call silent this long, with no final outcome and no report of its end, is
# taken for one whose caller hung up: not every platform says so.
SILENT = timedelta(minutes=30)
STAGES = ("called", "claim entered", "PIN entered", "verified", "failed", "locked", "gave up")
# Outcomes that end a verification; any other end is a caller who gave up.
DECIDED = ("verified", "failed", "locked")
FINAL_PLATFORM_STATUSES = tuple(status for status, rank in RANK.items() if rank >= FINAL_RANK)
NO_OUTCOME = "none"  # a call's outcome before its flow reached one


def hour_bucket(column: Any, dialect: str) -> ColumnElement[Any]:
    """The start of the hour `column` falls in: date_trunc on PostgreSQL, a
    formatted string on SQLite (read back with `bucket_time`)."""
    if dialect == "postgresql":
        return func.date_trunc("hour", column)
    return func.strftime("%Y-%m-%d %H:00:00", column)


def bucket_time(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def hours(since: datetime, until: datetime) -> list[datetime]:
    """Every hour's start from the one holding `since` to the one holding `until`."""
    first = since.replace(minute=0, second=0, microsecond=0)
    count = int((until - first) / timedelta(hours=1)) + 1
    return [first + timedelta(hours=n) for n in range(count)]


# --- calls per hour ---------------------------------------------------------------


@dataclass(frozen=True)
class HourCount:
    hour: datetime  # naive UTC
    platform: str
    outcome: str
    calls: int


def calls_per_hour(session: Session, since: datetime) -> list[HourCount]:
    """Calls started since `since`, counted by hour, platform and outcome."""
    bucket = hour_bucket(Call.started_at, session.get_bind().dialect.name).label("hour")
    outcome = func.coalesce(Call.outcome, NO_OUTCOME).label("outcome")
    stmt = (
        select(bucket, Call.platform, outcome, func.count())
        .where(Call.started_at >= since, Call.flow != NO_FLOW)
        .group_by(bucket, Call.platform, outcome)
    )
    return [HourCount(bucket_time(h), p, o, n) for h, p, o, n in session.execute(stmt)]


def hourly_series(
    counts: Iterable[HourCount], slots: Sequence[datetime], by: str
) -> dict[str, list[int]]:
    """For each platform (by="platform") or outcome, its calls in each hour of `slots`."""
    index = {hour: n for n, hour in enumerate(slots)}
    series: dict[str, list[int]] = {}
    for count in counts:
        name = getattr(count, by)
        values = series.setdefault(name, [0] * len(slots))
        if count.hour in index:
            values[index[count.hour]] += count.calls
    return dict(sorted(series.items()))


# --- funnels -------------------------------------------------------------------------


@dataclass(frozen=True)
class Funnel:
    flow: str
    stages: Mapping[str, int]  # every name of STAGES


def funnels(session: Session, since: datetime, now: datetime) -> list[Funnel]:
    """Each flow's calls since `since`, by how far they got."""
    over = case(
        (
            or_(
                Call.ended_at.is_not(None),
                Call.platform_status.in_(FINAL_PLATFORM_STATUSES),
                Call.updated_at < now - SILENT,
            ),
            True,
        ),
        else_=False,
    ).label("over")
    stmt = (
        select(Call.flow, Call.reached, Call.outcome, over, func.count())
        .where(Call.started_at >= since, Call.flow != NO_FLOW)
        .group_by(Call.flow, Call.reached, Call.outcome, over)
    )
    return fold_funnels((f, r, o, bool(v), n) for f, r, o, v, n in session.execute(stmt))


def fold_funnels(rows: Iterable[tuple[str, str | None, str | None, bool, int]]) -> list[Funnel]:
    """Rows of (flow, reached, outcome, over, calls) as each flow's funnel. A
    call that reached the PIN also entered its claim; one still under way has
    not given up (yet)."""
    stages: dict[str, Counter[str]] = defaultdict(Counter)
    for flow, reached, outcome, over, calls in rows:
        counter = stages[flow]
        counter["called"] += calls
        if reached in (CLAIM, PIN):
            counter["claim entered"] += calls
        if reached == PIN:
            counter["PIN entered"] += calls
        if outcome in DECIDED:
            counter[str(outcome)] += calls
        elif over and outcome != "error":
            counter["gave up"] += calls
    return [
        Funnel(flow, {stage: stages[flow][stage] for stage in STAGES}) for flow in sorted(stages)
    ]


# --- providers -----------------------------------------------------------------------


def provider_outcomes(session: Session, since: datetime) -> dict[str, dict[str, int]]:
    """Calls Glue placed since `since`: for each provider, how many in each status."""
    stmt = (
        select(CallAction.provider, CallAction.status, func.count())
        .where(CallAction.created_at >= since)
        .group_by(CallAction.provider, CallAction.status)
    )
    found: dict[str, dict[str, int]] = defaultdict(dict)
    for provider, status, calls in session.execute(stmt):
        found[provider][status] = calls
    return {provider: found[provider] for provider in sorted(found)}


# --- request times ---------------------------------------------------------------------


@dataclass(frozen=True)
class RouteTiming:
    route: str
    requests: int
    p50: int  # milliseconds
    p99: int


def route_name(platform: str, kind: str) -> str:
    """The route an event's request came to, as the pages name it."""
    return f"/{platform}/status" if kind == "status" else f"/{platform}/<flow>"


def route_timings(session: Session, since: datetime) -> list[RouteTiming]:
    """p50 and p99 of the timed platform requests since `since`, per route.

    The database ranks each route's times (a window function, on SQLite and
    PostgreSQL alike) and returns only the two ranked at the percentiles:
    nearest rank, ceil(n * p / 100) in integer arithmetic."""
    route = (CallEvent.platform, CallEvent.kind)
    ranked = (
        select(
            CallEvent.platform,
            CallEvent.kind,
            CallEvent.duration_ms,
            func.row_number().over(partition_by=route, order_by=CallEvent.duration_ms).label("n"),
            func.count().over(partition_by=route).label("total"),
        )
        .where(CallEvent.received_at >= since, CallEvent.duration_ms.is_not(None))
        .subquery()
    )
    p50 = (ranked.c.total * 50 + 99) // 100
    p99 = (ranked.c.total * 99 + 99) // 100
    stmt = select(
        ranked.c.platform, ranked.c.kind, ranked.c.total, ranked.c.n, ranked.c.duration_ms, p50, p99
    ).where(or_(ranked.c.n == p50, ranked.c.n == p99))
    found: dict[str, dict[str, int]] = defaultdict(dict)
    for platform, kind, total, n, duration, at_p50, at_p99 in session.execute(stmt):
        times = found[route_name(platform, kind)]
        times["requests"] = total
        if n == at_p50:
            times["p50"] = duration
        if n == at_p99:
            times["p99"] = duration
    return [
        RouteTiming(name, times["requests"], times["p50"], times["p99"])
        for name, times in sorted(found.items())
    ]
