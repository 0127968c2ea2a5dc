"""The bench's report from runs' figures: ratios per round, the paced table and
its yardstick, the targets (no wrk run: the figures are given)."""

from __future__ import annotations

import argparse

from bench.run import Run, summarize


def run(server: str, scenario: str, rps: float, p99: float = 5.0, **given: object) -> Run:
    fields: dict[str, object] = {
        "round": 1,
        "server": server,
        "db": "" if server == "floor" else "sqlite",
        "users": 0 if server == "floor" else 1000,
        "scenario": scenario,
        "paced_rate": 0.0,
        "pace": "",
        "rps": rps,
        "p50_ms": 1.0,
        "p99_ms": p99,
        "requests": 1000,
        "wrk_errors": 0,
        "expected_rows": None if server == "floor" else 1000,
        "cpu_ms": 1.0,
    }
    return Run(**(fields | given))  # type: ignore[arg-type]


def test_the_paced_table_shows_the_bound_at_glues_rate_and_the_targets_judge_glue() -> None:
    runs = [
        *(run("floor", s, 6000.0) for s in ("verify", "gather", "status")),
        *(run("glue", s, 700.0) for s in ("verify", "gather", "status")),
        *(run("bound", s, 1000.0) for s in ("verify", "gather", "status")),
        run("glue", "verify", 350.0, p99=12.5, paced_rate=350.0, pace="glue"),
        run("bound", "verify", 350.0, p99=6.25, paced_rate=350.0, pace="glue"),
    ]
    options = argparse.Namespace(users=1000, large_users=0)
    report = summarize(runs, options, [])
    lines = report.splitlines()
    glue = next(line for line in lines if line.startswith("Glue at half its own rate"))
    bound = next(line for line in lines if line.startswith("the bound at the same rate"))
    assert glue.split()[-2:] == ["1.00", "12.50"] and "sqlite" in glue
    assert bound.split()[-4:] == ["350", "350", "1.00", "6.25"]
    [p99] = [line for line in lines if line.startswith("p99 <= 10 ms")]
    assert p99.split()[-3:] == ["12.50", "ms", "FAIL"]  # Glue's p99, not the bound's
    [verify] = [line for line in lines if line.startswith("IfbyPhone verification step: Glue")]
    assert verify.split()[-2:] == ["0.70", "PASS"]
