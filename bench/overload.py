"""Overload: Glue's verification step at twice its own rate, then at half of it.

One paced wrk run per database: OVERLOAD_FACTOR x R for the overload phase,
then RECOVERY_FACTOR x R, where R is Glue's own verify rate at full speed (the
median of the rounds). Latency counts from when each request was due, so the
queue that forms in wrk (one connection per thread) is the callers' wait. The
script sends each request's due time as X-Request-Start and the server trusts
it, as behind a proxy that stamps arrivals, so Glue sheds what waited past its
queue budget (GLUE_QUEUE_BUDGET), or past its target while the queue stood
(GLUE_QUEUE_TARGET).
bench/lua/glue.lua writes every request's due time and latency; this module
reads them, says what callers got in the overload phase, and how long after it
the latency was normal again.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

OVERLOAD_FACTOR = 2.0
RECOVERY_FACTOR = 0.5
# What the platforms give a webhook: a caller whose answer comes later hears
# the platform's own failure message, whatever Glue answers.
PLATFORM_TIMEOUT_MS = 5000.0
# A second of the recovery phase is normal when the p99 of the requests due in
# it is within this many times the p99 paced at half Glue's own rate; latency
# is normal again from the first of NORMAL_RUN normal seconds in a row (one
# second alone may be a lull in a queue, and a slow one later another process's).
NORMAL_FACTOR = 2.0
NORMAL_RUN = 3
# The note of an `event not stored` line whose request was shed (app.flows.runner).
SHED_NOTE = "shed_after_seconds"
NOT_ANSWERED, NOT_SENT = -1, -2  # the script's latency for requests without an answer


@dataclass(frozen=True)
class Timing:
    """One request of the run, as bench/lua/glue.lua wrote it."""

    due_s: float  # seconds into the schedule when it was due
    latency_ms: float | None  # from when it was due; None: no answer by the end of the run
    status: int = 200  # 0 without an answer
    sent: bool = True


def parse_timings(text: str) -> list[Timing]:
    """The lines `thread due_s latency_us status` of the script's timings file."""
    timings = []
    for line in text.splitlines():
        if not line.strip():
            continue
        _thread, due, latency, status = line.split()
        micros = int(latency)
        answered = micros >= 0
        timings.append(
            Timing(
                due_s=float(due),
                latency_ms=micros / 1000 if answered else None,
                status=int(status),
                sent=micros != NOT_SENT,
            )
        )
    return timings


def percentile(values: list[float], p: float) -> float:
    """Nearest rank, as the wrk script computes it; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * p / 100)) - 1]


@dataclass(frozen=True)
class Second:
    """The requests due in one second of the schedule."""

    start_s: int
    due: int
    answered: int
    p99_ms: float  # of those answered; NaN for none

    def normal(self, threshold_ms: float) -> bool:
        """Every request due in it was answered, within the threshold at p99."""
        return self.due > 0 and self.answered == self.due and self.p99_ms <= threshold_ms


def per_second(timings: Iterable[Timing], seconds: int) -> list[Second]:
    """Seconds 0 .. seconds-1 of the schedule, each with the requests due in it."""
    latencies: dict[int, list[float]] = defaultdict(list)
    due: dict[int, int] = defaultdict(int)
    for timing in timings:
        second = math.floor(timing.due_s)
        if not 0 <= second < seconds:
            continue
        due[second] += 1
        if timing.latency_ms is not None:
            latencies[second].append(timing.latency_ms)
    return [
        Second(s, due[s], len(latencies[s]), percentile(latencies[s], 99)) for s in range(seconds)
    ]


def normal_after(seconds: list[Second], from_s: int, threshold_ms: float) -> int | None:
    """Whole seconds from `from_s` to the first of NORMAL_RUN normal seconds in a
    row; None if there are none."""
    in_row = 0
    for second in seconds:
        if second.start_s < from_s:
            continue
        in_row = in_row + 1 if second.normal(threshold_ms) else 0
        if in_row == NORMAL_RUN:
            return second.start_s - NORMAL_RUN + 1 - from_s
    return None


def projected_normal_after(
    timings: list[Timing], overload_s: float, recovery_s: float, recovery_rate: float
) -> float:
    """Seconds from the end of the overload phase until the requests still
    waiting when the run ended would have been answered, at the rate answers
    came during the recovery phase (the server had a queue all along); inf if
    that rate does not exceed the recovery's own."""
    end = overload_s + recovery_s
    waiting = sum(t.latency_ms is None for t in timings)
    answers = sum(
        t.latency_ms is not None and overload_s <= t.due_s + t.latency_ms / 1000 < end
        for t in timings
    )
    spare = answers / recovery_s - recovery_rate
    return recovery_s + waiting / spare if spare > 0 else math.inf


@dataclass
class Overload:
    """One database's overload run: the overload phase, what callers got, the recovery."""

    db: str
    users: int
    own_rate: float  # Glue's verify req/s at full speed (median of the rounds)
    rate: float  # paced, in the overload phase
    recovery_rate: float
    overload_s: float
    recovery_s: float
    # The overload phase: requests due in it, sent, answered (any status).
    due: int
    sent: int
    answered: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    # Answered later than the platforms' timeout, or not answered by the end.
    over_timeout: int
    not_200: int  # answered in the overload phase with a status other than 200
    # The whole run.
    wrk_errors: dict[str, int]
    unanswered_at_end: int  # due in the judged seconds, no answer when the run ended
    threshold_ms: float  # a normal second's p99 at most
    normal_after_s: int | None  # from the end of the overload phase; None: not in the run
    projected_normal_after_s: float  # when not in the run (projected_normal_after)
    # What the run left: rows by outcome, requests logged as not stored.
    verified: int = 0
    other_rows: dict[str, int] = field(default_factory=dict)
    not_stored: int = 0
    shed: int = 0  # of those, shed: they had waited past Glue's budget or target
    lost: int = 0  # sent, neither stored nor logged as not stored
    stored_twice: int = 0  # rows beyond one per call
    log_problems: int = 0
    seconds: list[Second] = field(default_factory=list)

    @property
    def over_timeout_share(self) -> float:
        return self.over_timeout / self.due if self.due else math.nan

    @property
    def broken(self) -> bool:
        """Slow answers and fallbacks are what the run measures; rows lost or
        stored twice mean its figures do not say what callers got."""
        return self.lost != 0 or self.stored_twice != 0


def measured(
    *,
    db: str,
    users: int,
    own_rate: float,
    overload_s: float,
    recovery_s: float,
    paced_p99_ms: float,
    timings: list[Timing],
    wrk_errors: dict[str, int],
    rows: dict[tuple[str, str | None], int],
    calls: int,
    log_lines: list[str],
) -> Overload:
    """The overload run's figures from the script's timings, the rows the run left
    (`rows` by kind and outcome, in `calls` distinct calls) and the app's warnings
    and errors logged meanwhile.

    The run's last second is left out of the recovery: wrk stopped during it, so
    its slowest requests may have had no time to be answered. Each request is a
    new call whose turn stores ("turn", "verified"), or, when the database fails
    or the request is shed, is logged as not stored (the caller heard the flow's
    fallback).
    """
    overload = [t for t in timings if t.due_s < overload_s]
    answered = [t.latency_ms for t in overload if t.latency_ms is not None]
    seconds = per_second(timings, int(overload_s + recovery_s) - 1)
    threshold = NORMAL_FACTOR * paced_p99_ms
    others = dict(rows)
    verified = others.pop(("turn", "verified"), 0)
    stored = sum(rows.values())
    not_stored = sum("event not stored:" in line for line in log_lines)
    shed = sum(SHED_NOTE in line for line in log_lines if "event not stored:" in line)
    return Overload(
        db=db,
        users=users,
        own_rate=own_rate,
        rate=own_rate * OVERLOAD_FACTOR,
        recovery_rate=own_rate * RECOVERY_FACTOR,
        overload_s=overload_s,
        recovery_s=recovery_s,
        due=len(overload),
        sent=sum(t.sent for t in overload),
        answered=len(answered),
        p50_ms=percentile(answered, 50),
        p90_ms=percentile(answered, 90),
        p99_ms=percentile(answered, 99),
        max_ms=max(answered, default=math.nan),
        over_timeout=sum(
            t.latency_ms is None or t.latency_ms > PLATFORM_TIMEOUT_MS for t in overload
        ),
        not_200=sum(t.latency_ms is not None and t.status != 200 for t in overload),
        wrk_errors=wrk_errors,
        unanswered_at_end=sum(s.due - s.answered for s in seconds),
        threshold_ms=threshold,
        normal_after_s=normal_after(seconds, math.ceil(overload_s), threshold),
        projected_normal_after_s=projected_normal_after(
            timings, overload_s, recovery_s, own_rate * RECOVERY_FACTOR
        ),
        verified=verified,
        other_rows={f"{kind}/{outcome}": n for (kind, outcome), n in others.items()},
        not_stored=not_stored,
        shed=shed,
        lost=max(0, sum(t.sent for t in timings) - stored - not_stored),
        stored_twice=stored - calls,
        log_problems=len(log_lines),
        seconds=seconds,
    )


# --- the report ------------------------------------------------------------------------------


def table(overloads: list[Overload]) -> list[str]:
    """The report's overload tables: the overload phase, then what callers got."""
    if not overloads:
        return []
    first = overloads[0]
    lines = [
        f"Overload: verification step paced at {first.rate / first.own_rate:g}x Glue's own rate"
        f" for {first.overload_s:g} s, then at {first.recovery_rate / first.own_rate:g}x"
        f" for {first.recovery_s:g} s"
    ]
    head = (
        f"{'db':<9} {'own /s':>6} {'paced /s':>8} {'due':>6} {'sent':>6} {'answered':>8}"
        f" {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7} {'> 5 s':>12}"
        f" {'wrk errors':>10} {'not 200':>7}"
    )
    lines += [head, "-" * len(head)]
    for o in overloads:
        over = f"{o.over_timeout} ({o.over_timeout_share:.0%})"
        lines.append(
            f"{o.db:<9} {o.own_rate:>6.0f} {o.rate:>8.0f} {o.due:>6} {o.sent:>6} {o.answered:>8}"
            f" {o.p50_ms:>7.0f} {o.p90_ms:>7.0f} {o.p99_ms:>7.0f} {o.max_ms:>7.0f} {over:>12}"
            f" {sum(o.wrk_errors.values()):>10} {o.not_200:>7}"
        )
    lines.append("")
    head = (
        f"{'db':<9} {'verified':>8} {'other rows':>18} {'not stored':>10} {'shed':>6} {'lost':>5}"
        f" {'twice':>5} {'normal p99 ms':>13} {'normal again after':>22} {'unanswered':>10}"
    )
    lines += [head, "-" * len(head)]
    for o in overloads:
        other = ", ".join(f"{k} {n}" for k, n in o.other_rows.items()) or "0"
        after = normal_again(o)
        lines.append(
            f"{o.db:<9} {o.verified:>8} {other:>18} {o.not_stored:>10} {o.shed:>6} {o.lost:>5}"
            f" {o.stored_twice:>5} {o.threshold_ms:>13.1f} {after:>22} {o.unanswered_at_end:>10}"
        )
    for o in overloads:
        series = " ".join(_seconds(s.p99_ms) if s.answered else "-" for s in o.seconds)
        lines.append(f"p99 s by second due, {o.db}: {series}")
    lines += [
        "Latency from when each request was due (one connection per wrk thread: the queue forms",
        "in wrk). > 5 s: answered later than the platforms' 5 s, or not at all: that caller heard",
        "the platform's failure message. Rows: call_events of the run, recovery included; not",
        "stored: requests the app logged as not stored (it answered the flow's fallback); shed:",
        "of those, the ones that had waited past Glue's queue budget, or its target while the",
        "queue stood (the script sends each request's due time as X-Request-Start, as a proxy",
        "stamps arrivals); lost: sent, neither stored nor logged. Normal again after: from the",
        "end of the overload phase",
        f"to the first of {NORMAL_RUN} seconds in a row in which every request due was answered,"
        f" with a p99",
        f"within the normal p99 ({NORMAL_FACTOR:g}x the p99 paced at half Glue's own rate); the"
        " run's last",
        "second is not judged. Unanswered: requests due in the judged seconds with no answer when",
        "the run ended. (~N s): not normal by the end of the run; projected from the requests",
        "still waiting then, answered at the rate answers came in the recovery phase.",
    ]
    return lines


def normal_again(o: Overload) -> str:
    if o.normal_after_s is not None:
        return f"{o.normal_after_s} s"
    judged = len(o.seconds) - math.ceil(o.overload_s)
    projected = o.projected_normal_after_s
    return f"> {judged} s (~{projected:.0f} s)" if projected < math.inf else f"> {judged} s (never)"


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.2f}"
