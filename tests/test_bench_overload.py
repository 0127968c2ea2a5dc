"""The bench's overload run (bench/overload.py): what it reads from the wrk
script's timings and what it concludes, without running wrk."""

from __future__ import annotations

import math

from bench.overload import (
    SHED_NOTE,
    Overload,
    Second,
    Timing,
    measured,
    normal_after,
    normal_again,
    parse_timings,
    per_second,
    percentile,
    projected_normal_after,
    table,
)


def test_timings_are_read_as_the_script_writes_them() -> None:
    text = "0 0.000000 1500 200\n1 0.250000 2500000 500\n\n2 3.500000 -1 0\n3 4.000000 -2 0\n"
    assert parse_timings(text) == [
        Timing(0.0, 1.5, 200),
        Timing(0.25, 2500.0, 500),
        Timing(3.5, None, 0, sent=True),
        Timing(4.0, None, 0, sent=False),
    ]


def test_percentiles_are_nearest_rank_as_in_the_script() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0, 1.0, 2.0], 99) == 3.0
    assert math.isnan(percentile([], 99))


def test_seconds_group_requests_by_when_they_were_due() -> None:
    timings = [Timing(0.1, 5.0), Timing(0.9, 7.0), Timing(1.2, None), Timing(1.5, 3.0)]
    timings.append(Timing(2.0, 1.0))  # past the seconds asked for: left out
    first, second = per_second(timings, 2)
    assert (first.start_s, first.due, first.answered, first.p99_ms) == (0, 2, 2, 7.0)
    assert (second.due, second.answered, second.p99_ms) == (2, 1, 3.0)


def test_a_second_is_normal_when_all_its_requests_were_answered_in_time() -> None:
    assert Second(0, 10, 10, 9.0).normal(10.0)
    assert not Second(0, 10, 10, 11.0).normal(10.0)
    assert not Second(0, 10, 9, 1.0).normal(10.0)  # one still waiting
    assert not Second(0, 0, 0, math.nan).normal(10.0)  # nothing due: nothing was sent


def _seconds(p99s: list[float | None]) -> list[Second]:
    """Seconds of 10 requests each, with these p99s (None: one left unanswered)."""
    return [
        Second(s, 10, 10 if p99 is not None else 9, p99 if p99 is not None else 1.0)
        for s, p99 in enumerate(p99s)
    ]


def test_normal_again_from_the_first_of_three_normal_seconds_in_a_row() -> None:
    seconds = _seconds([5, 900, 2000, 1500, 30, 8, 9, 7, 400])
    assert normal_after(seconds, 2, threshold_ms=10) == 3  # from second 5 on; a later blip
    # Normal seconds fewer than three in a row do not count.
    assert normal_after(_seconds([5, 900, 8, 9, 50, 8, 9, 9]), 2, 10) == 3
    # Normal from the overload's end on.
    assert normal_after(_seconds([5, 900, 8, 9, 9]), 2, 10) == 0
    # The overload's own seconds do not count.
    assert normal_after(_seconds([5, 5, 5, 900, 8, 9, 9]), 3, 10) == 1


def test_not_normal_again_without_three_normal_seconds_in_a_row() -> None:
    assert normal_after(_seconds([5, 900, 8, 9, 50]), 2, 10) is None
    assert normal_after(_seconds([5, 900, 8, 9, None, 9]), 2, 10) is None


def test_the_projection_drains_what_waited_at_the_spare_rate() -> None:
    # Recovery from 10 s to 20 s at 10/s; 300 answers came in it (30/s), and 100
    # requests were still waiting: drained at 20/s spare, 5 s after the run.
    answered = [Timing(9.0 + i / 30, 1000.0) for i in range(300)]  # answered from 10 s
    waiting = [Timing(15.0, None, 0, sent=False)] * 100
    assert projected_normal_after(answered + waiting, 10, 10, 10.0) == 15.0
    # Answers no faster than arrivals: never.
    assert projected_normal_after(answered + waiting, 10, 10, 30.0) == math.inf


def _run(
    timings: list[Timing],
    rows: dict[tuple[str, str | None], int],
    calls: int,
    log_lines: list[str] | None = None,
) -> Overload:
    return measured(
        db="sqlite",
        users=1000,
        own_rate=100.0,
        overload_s=2,
        recovery_s=5,
        paced_p99_ms=5.0,
        timings=timings,
        wrk_errors={"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0},
        rows=rows,
        calls=calls,
        log_lines=log_lines or [],
    )


def test_the_overload_phase_counts_callers_past_the_platforms_timeout() -> None:
    overload = [Timing(i / 100, 6000.0 if i % 4 == 0 else 100.0) for i in range(200)]
    overload[1] = Timing(0.01, None, 0, sent=False)
    overload[2] = Timing(0.02, 50.0, 500)
    recovery = [Timing(2 + i / 50, 8.0) for i in range(250)]
    run = _run(overload + recovery, {("turn", "verified"): 449}, calls=449)
    assert (run.due, run.sent, run.answered) == (200, 199, 199)
    # 50 answered after 6 s and one never sent.
    assert run.over_timeout == 51
    assert run.over_timeout_share == 51 / 200
    assert (run.p50_ms, run.max_ms, run.not_200) == (100.0, 6000.0, 1)
    assert run.rate == 200.0 and run.recovery_rate == 50.0
    assert run.threshold_ms == 10.0
    assert run.normal_after_s == 0
    assert (run.verified, run.lost, run.stored_twice, run.broken) == (449, 0, 0, False)


def test_rows_lost_or_stored_twice_break_the_run_and_fallbacks_do_not() -> None:
    timings = [Timing(i / 10, 10.0) for i in range(50)]
    not_stored = ["2026-12-07 ERROR [x] app.flows.runner: event not stored: platform=ifbyphone"]
    run = _run(timings, {("turn", "verified"): 49}, calls=49, log_lines=not_stored)
    assert (run.verified, run.not_stored, run.lost, run.broken) == (49, 1, 0, False)
    assert run.log_problems == 1
    run = _run(timings, {("turn", "verified"): 47, ("turn", "locked"): 1}, calls=48)
    assert run.other_rows == {"turn/locked": 1}
    assert (run.lost, run.broken) == (2, True)
    run = _run(timings, {("turn", "verified"): 51}, calls=50)
    assert (run.stored_twice, run.broken) == (1, True)


def test_shed_requests_are_counted_among_those_not_stored() -> None:
    timings = [Timing(i / 10, 10.0) for i in range(50)]
    line = "ERROR [{}] app.flows.runner: event not stored: platform=ifbyphone kind=turn notes={}"
    logged = [
        line.format("a", '{"shed_after_seconds": 3.2}'),
        line.format("b", '{"shed_after_seconds": 3.31}'),
        line.format("c", "{}"),
    ]
    run = _run(timings, {("turn", "verified"): 47}, calls=47, log_lines=logged)
    assert (run.verified, run.not_stored, run.shed, run.lost, run.broken) == (47, 3, 2, 0, False)
    [row] = [line for line in table([run]) if line.startswith("sqlite ") and " 47 " in line]
    assert row.split()[1:5] == ["47", "0", "3", "2"]


def test_the_shed_note_is_the_one_the_runner_writes() -> None:
    from app.flows.runner import SHED_NOTE as written

    assert written == SHED_NOTE


def test_the_report_says_when_the_run_ended_before_normal() -> None:
    timings = [Timing(i / 10, 10.0) for i in range(20)]
    timings += [Timing(2 + i / 10, 800.0) for i in range(30)]
    timings += [Timing(4.5, None, 0, sent=False)] * 10
    run = _run(timings, {("turn", "verified"): 50}, calls=50)
    assert run.normal_after_s is None
    # 30 answers in the 5 s of recovery, slower than its 50 requests a second.
    assert normal_again(run) == "> 4 s (never)"
    lines = table([run])
    assert any(line.startswith("sqlite ") and "> 4 s (never)" in line for line in lines)
    assert "p99 s by second due, sqlite: 0.01 0.01 0.80 0.80 0.80 -" in lines
