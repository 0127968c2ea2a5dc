"""`python -m bench` (`make bench`): Glue against the floor and the bound, under wrk.

One round:
  floor   verify, gather and status request shapes at full speed
  for each database (SQLite, PostgreSQL), with the small directory (1,000 users):
    Glue   verify, gather, status at full speed (same wrk threads/connections/duration
           as the floor), then verify paced at half Glue's own verify rate (the p99 target)
    bound  the same three steps written by hand (bench/bound.py), at full speed
    Glue   with the large directory (1,000,000 users): verify at full speed
Every run of Glue and the bound checks the rows it left, and the CPU time its
gunicorn workers spent (from /proc) per request served.
After the rounds, for each database (bench/overload.py):
  overload  verify paced at twice Glue's own rate, then at half of it
Rounds repeat (--runs); the tables show medians, and ratios are medians of the
per-round ratios (each Glue run is compared with the bound's and the floor's
runs of its own round). The report ends with the targets, each PASS or FAIL.
The exit status is 0 whatever the targets say (it is a report), and 1 when a
run is broken (fewer expected rows than requests, wrk errors, app warnings), so
its figures do not measure what they claim to. An overload run is broken only
when it lost rows or stored some twice: slow answers are what it measures.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import dataset, overload, xmlbench
from bench.common import OUT_DIR, PG_DATABASES, SECRETS, glue_env
from bench.dataset import Database
from bench.load import LoadShape, Server, WrkResult, run_wrk

SCENARIOS = ("verify", "gather", "status")
SCENARIO_LABELS = {
    "verify": "IfbyPhone verification step",
    "gather": "didML Gather step",
    "status": "status callback",
}
# The targets: each step's req/s as a share of its bound's, p99 (ms) paced at half
# Glue's own verify rate, and the large directory's p50 over the small one's.
BOUND_TARGET = 0.7
P99_TARGET_MS = 10.0
SCALE_TARGET = 1.2
# What each step the bound answers stores, one row per request (kind, outcome).
BOUND_ROWS: dict[str, tuple[str, str | None]] = {
    "verify": ("turn", "verified"),
    "gather": ("turn", "asking"),
    "status": ("status", None),
}
WARMUP_SECONDS = 1.0


@dataclass
class Run:
    round: int
    server: str  # floor | glue | bound
    db: str  # "" for the floor; sqlite | postgres
    users: int
    scenario: str
    paced_rate: float
    pace: str  # "" full speed; "glue": half Glue's own verify rate
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    wrk_errors: int
    expected_rows: int | None = None  # Glue: rows the run left with the expected outcome
    other_rows: int | None = None
    log_problems: int | None = None
    cpu_ms: float | None = None  # the workers' CPU per request served (/proc)


class Bench:
    def __init__(self, options: argparse.Namespace) -> None:
        self.o = options
        self.shape = LoadShape(options.threads, options.connections, options.duration)
        self.workdir = Path(tempfile.mkdtemp(prefix="glue-bench-"))
        self.runs: list[Run] = []
        self.overload_runs: list[overload.Overload] = []
        self.dbs: dict[tuple[str, str], Database] = {}
        self.backends: list[str] = []
        self.started = time.monotonic()

    def log(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:6.1f}s] {message}", flush=True)

    # --- setup ---------------------------------------------------------------------------

    def setup(self) -> None:
        backends = self.o.db
        if "postgres" in backends:
            why = dataset.postgres_reachable()
            if why:
                self.log(f"PostgreSQL unreachable ({why}): SQLite only")
                backends = [b for b in backends if b != "postgres"]
        self.backends = backends
        self.log(
            f"loading directories (small {self.o.users:,}, large {self.o.large_users:,} users)"
        )
        for backend in backends:
            for size, users in (("small", self.o.users), ("large", self.o.large_users)):
                if size == "large" and not self.o.large_users:
                    continue
                label = f"{backend} {_count(users)}"
                if backend == "sqlite":
                    db = dataset.sqlite_database(self.workdir, users, label)
                else:
                    db = dataset.postgres_database(PG_DATABASES[size], users, label)
                self.dbs[(backend, size)] = db
        for db in self.dbs.values():
            dataset.migrate(db)
        # Two at a time: SQLite's inserts and PostgreSQL's COPY run outside the GIL.
        with ThreadPoolExecutor(max_workers=2) as pool:
            for future in [pool.submit(dataset.load, db, self.log) for db in self.dbs.values()]:
                future.result()

    def teardown(self) -> None:
        if not self.o.keep:
            if "postgres" in self.backends:
                for name in PG_DATABASES.values():
                    dataset.drop_postgres(name)
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            self.log(f"kept {self.workdir} and the PostgreSQL databases")

    # --- one round -------------------------------------------------------------------------

    def round(self, r: int) -> None:
        self.floor_round(r)
        for backend in self.backends:
            self.glue_round(r, self.dbs[(backend, "small")], paced=True)
            self.bound_round(r, self.dbs[(backend, "small")])
            if (backend, "large") in self.dbs:
                self.glue_round(r, self.dbs[(backend, "large")], scenarios=("verify",))

    def floor_round(self, r: int) -> None:
        env = glue_env("sqlite://", self.workdir)
        ports = 2 * len(SCENARIOS)
        with Server("floor", "bench.floor:app", env, self.workdir, ports=ports) as server:
            for scenario in SCENARIOS:
                args = self.script_args(f"f{r}{scenario[0]}", users=self.o.users, calls=1)
                run_wrk(server.next_base(), self.warmup_shape(), scenario, args)
                cpu = server.worker_cpu_seconds()
                result = run_wrk(server.next_base(), self.shape, scenario, args)
                cpu = server.worker_cpu_seconds() - cpu
                per_request = cpu * 1000 / result.requests if result.requests else None
                self.record(r, "floor", None, scenario, result, cpu_ms=per_request)

    def glue_round(
        self,
        r: int,
        db: Database,
        paced: bool = False,
        scenarios: tuple[str, ...] = SCENARIOS,
    ) -> None:
        env = glue_env(db.url, self.workdir)
        engine = dataset.engine_for(db)
        ports = 2 * len(scenarios) + 2
        name = f"glue {db.label}"
        try:
            with Server(name, "wsgi:app", env, self.workdir, ports=ports) as server:
                for scenario in scenarios:
                    tag = f"r{r}{db.kind[0]}{db.users}{scenario[0]}"
                    expected = self.probe(server, engine, scenario, f"{tag}p", db)
                    self.warm_and_measure(r, server, engine, db, scenario, tag, expected, "glue")
                if paced and "verify" in scenarios:
                    own = next(
                        run.rps
                        for run in reversed(self.runs)
                        if run.server == "glue" and run.scenario == "verify" and not run.pace
                    )
                    args = self.script_args(f"r{r}{db.kind[0]}{db.users}half", users=db.users)
                    expected = ("turn", "verified")
                    self.measure(
                        r, server, engine, db, "verify", args, expected, rate=own / 2, pace="glue"
                    )
        finally:
            engine.dispose()

    def overload_run(self, db: Database) -> None:
        """Glue's verification step paced at twice its own rate, then at half of it,
        on a server of its own: what callers got, and how soon it was normal again."""
        step = ("glue", db.kind, db.users, "verify")
        verify = [run for run in self.runs if (run.server, run.db, run.users, run.scenario) == step]
        own = median([run.rps for run in verify if not run.pace])
        paced_p99 = median([run.p99_ms for run in verify if run.pace == "glue"])
        if own != own or paced_p99 != paced_p99:  # NaN: not measured in the rounds
            return
        o = self.o
        rate, rate2 = own * overload.OVERLOAD_FACTOR, own * overload.RECOVERY_FACTOR
        # As behind a proxy that stamps each request's arrival: the script sends
        # its due time as X-Request-Start, and Glue sheds past its queue budget
        # (or its target, while the queue stands).
        trusted = {"GLUE_TRUSTED_PROXIES": "1", "GLUE_TRUST_REQUEST_START": "true"}
        env = glue_env(db.url, self.workdir, trusted)
        engine = dataset.engine_for(db)
        tag = f"o{db.kind[0]}{db.users}"
        timings = self.workdir / f"timings-{tag}.txt"
        shape = LoadShape(o.paced_threads, o.paced_threads, o.overload + o.recovery)
        args = {**self.script_args(tag, users=db.users), "switch_s": o.overload, "rate2": rate2}
        self.log(
            f"  overload {db.label}: {rate:.0f}/s for {o.overload:g} s,"
            f" then {rate2:.0f}/s for {o.recovery:g} s"
        )
        try:
            with Server(f"glue {db.label} overload", "wsgi:app", env, self.workdir, 2) as server:
                warm = self.script_args(f"{tag}w", users=db.users)
                run_wrk(server.next_base(), self.warmup_shape(), "verify", warm)
                self.drain(engine)
                before = dataset.max_event_id(engine)
                problems = len(server.log_problems())
                result = run_wrk(server.next_base(), shape, "verify", args, rate, timings)
                self.drain(engine)
                rows = dataset.events_since(engine, before)
                calls = dataset.calls_with_events_since(engine, before)
                log_lines = server.log_problems()[problems:]
        finally:
            engine.dispose()
        run = overload.measured(
            db=db.kind,
            users=db.users,
            own_rate=own,
            overload_s=o.overload,
            recovery_s=o.recovery,
            paced_p99_ms=paced_p99,
            timings=overload.parse_timings(timings.read_text()),
            wrk_errors=result.errors,
            rows=rows,
            calls=calls,
            log_lines=log_lines,
        )
        self.overload_runs.append(run)
        self.log(
            f"  overload {db.label}: due {run.due}, answered {run.answered}, p50"
            f" {run.p50_ms:.0f} ms, p99 {run.p99_ms:.0f} ms, max {run.max_ms:.0f} ms,"
            f" > 5 s {run.over_timeout_share:.0%}; rows verified {run.verified}, other"
            f" {sum(run.other_rows.values())}, not stored {run.not_stored} (shed {run.shed}),"
            f" lost {run.lost},"
            f" twice {run.stored_twice}; normal again after {overload.normal_again(run)}"
        )
        for message in sorted({_message(line) for line in log_lines})[:3]:
            self.log(f"    app log: {message}")

    def bound_round(self, r: int, db: Database) -> None:
        """The three steps written by hand (bench/bound.py), at full speed; its
        didML calls are prepared in the state Glue's round read from a real call."""
        engine = dataset.engine_for(db)
        env = glue_env(db.url, self.workdir)
        ports = 2 * len(SCENARIOS)
        try:
            with Server(
                f"bound {db.label}", "bench.bound:app", env, self.workdir, ports=ports
            ) as server:
                for scenario in SCENARIOS:
                    tag = f"r{r}{db.kind[0]}{db.users}b{scenario[0]}"
                    expected = BOUND_ROWS[scenario]
                    self.warm_and_measure(r, server, engine, db, scenario, tag, expected, "bound")
                # At the rate Glue's paced run had this round: what latency the
                # machine and the database leave any implementation of the step.
                paced = [
                    run.paced_rate
                    for run in self.runs
                    if (run.round, run.server, run.db, run.users, run.scenario, run.pace)
                    == (r, "glue", db.kind, db.users, "verify", "glue")
                ]
                if paced:
                    args = self.script_args(f"r{r}{db.kind[0]}{db.users}bhalf", users=db.users)
                    expected = BOUND_ROWS["verify"]
                    self.measure(
                        r, server, engine, db, "verify", args, expected, paced[-1], "glue", "bound"
                    )
        finally:
            engine.dispose()

    def warm_and_measure(
        self,
        r: int,
        server: Server,
        engine: Any,
        db: Database,
        scenario: str,
        tag: str,
        expected: tuple[str, str | None],
        who: str,
    ) -> None:
        """`scenario` warmed up on calls of its own, then measured at full speed."""
        calls = self.gather_calls(server, engine, scenario, f"{tag}w", db, 1)
        warm = self.script_args(f"{tag}w", users=db.users, calls=calls)
        run_wrk(server.next_base(), self.warmup_shape(), scenario, warm)
        self.drain(engine)
        calls = self.gather_calls(server, engine, scenario, tag, db, self.o.duration)
        args = self.script_args(tag, users=db.users, calls=calls)
        self.measure(r, server, engine, db, scenario, args, expected, who=who)

    def measure(
        self,
        r: int,
        server: Server,
        engine: Any,
        db: Database,
        scenario: str,
        args: dict[str, Any],
        expected: tuple[str, str | None],
        rate: float = 0.0,
        pace: str = "",
        who: str = "glue",
    ) -> None:
        """One run of `who` (glue or bound), with the rows it left checked."""
        before = dataset.max_event_id(engine)
        problems = len(server.log_problems())
        shape = self.paced_shape() if rate else self.shape
        cpu = server.worker_cpu_seconds()
        result = run_wrk(server.next_base(), shape, scenario, args, rate=rate)
        self.drain(engine)
        cpu = server.worker_cpu_seconds() - cpu
        rows = dataset.events_since(engine, before)
        # Served: one row per request answered, those wrk left behind included.
        served = sum(rows.values())
        kind, outcome = expected
        matching = [k for k in rows if k[0] == kind and (outcome is None or k[1] == outcome)]
        good = sum(rows.pop(k) for k in matching)
        new_problems = server.log_problems()[problems:]
        self.record(
            r,
            who,
            db,
            scenario,
            result,
            paced_rate=rate,
            pace=pace,
            expected_rows=good,
            other_rows=sum(rows.values()),
            log_problems=len(new_problems),
            cpu_ms=cpu * 1000 / served if served else None,
        )
        if rows:
            self.log(f"    unexpected rows {dict(rows)} (expected {expected})")
        for message in sorted({_message(line) for line in new_problems})[:3]:
            self.log(f"    app log: {message}")

    def drain(self, engine: Any, quiet: float = 0.3, limit: float = 15.0) -> None:
        """Wait until the server has finished the requests wrk left behind (gunicorn
        answers the connections it accepted after wrk stopped counting), so that
        they are neither counted in the checks nor felt by the next run."""
        deadline = time.monotonic() + limit
        last = dataset.max_event_id(engine)
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = dataset.max_event_id(engine)
            if now == last:
                return
            last = now

    # --- requests ----------------------------------------------------------------------------

    def probe(
        self, server: Server, engine: Any, scenario: str, tag: str, db: Database
    ) -> tuple[str, str | None]:
        """Send one request of the scenario, check the answer; the (kind, outcome)
        of the event it stored is what every request of the run must store."""
        from bench.common import account_of, pin_of

        key_ifbyphone, key_didml = SECRETS["IFBYPHONE_SECRET"], SECRETS["DIDML_SECRET"]
        if scenario == "verify":
            status, body = server.post(
                f"/ifbyphone/verify_caller?key={key_ifbyphone}",
                {
                    "session_id": f"{tag}-1",
                    "caller_id": "3125550199",
                    "account": account_of(db.users - 1),
                    "pin": pin_of(db.users - 1),
                },
            )
            ok = status == 200 and b"Thank you, Bench User" in body
        elif scenario == "gather":
            self.gather_calls(server, engine, scenario, tag, db, 0, count=1)
            status, body = server.post(
                f"/didml/verify_caller?key={key_didml}&turn=1&question=account",
                {**_didml_fields(f"{tag}-0"), "Digits": "10000001"},
            )
            ok = status == 200 and b"question=pin" in body
        else:
            status, body = server.post(
                f"/didml/status?key={key_didml}",
                {"callSid": f"{tag}-1", "CallStatus": "ringing", "Direction": "Outbound"},
            )
            ok = status == 204
        if not ok:
            raise RuntimeError(
                f"{server.name}: {scenario} probe answered {status} {body[:300]!r}\n"
                f"{server.log_tail()}"
            )
        last = dataset.events_since(engine, dataset.max_event_id(engine) - 1)
        [((kind, outcome), _)] = last.items()
        # A status callback's row keeps the status it reported: any one will do.
        return (kind, None if scenario == "status" else outcome)

    def gather_calls(
        self,
        server: Server,
        engine: Any,
        scenario: str,
        tag: str,
        db: Database,
        seconds: float,
        count: int | None = None,
    ) -> int:
        """Prepared didML calls TAG-0..: enough for `seconds` at a generous rate."""
        if scenario != "gather":
            return 0
        if count is None:
            count = int(max(seconds, WARMUP_SECONDS) * self.o.max_rate)
        if not hasattr(self, "_gather_state"):
            self._gather_state: dict[str, Any] = {}
        if db.url not in self._gather_state:
            # The state a real call is in once it was asked for its account.
            call_id = f"{tag}-first"
            status, body = server.post(
                f"/didml/verify_caller?key={SECRETS['DIDML_SECRET']}", _didml_fields(call_id)
            )
            if status != 200 or b"question=account" not in body:
                raise RuntimeError(f"didML first request answered {status} {body[:300]!r}")
            self._gather_state[db.url] = dataset.call_state(engine, "didml", call_id)
        dataset.prepare_calls(engine, tag, count, self._gather_state[db.url], "+13125550199")
        return count

    def script_args(self, tag: str, users: int, calls: int = 0) -> dict[str, Any]:
        return {
            "tag": tag,
            "users": users,
            "calls": calls,
            "ikey": SECRETS["IFBYPHONE_SECRET"],
            "dkey": SECRETS["DIDML_SECRET"],
        }

    def warmup_shape(self) -> LoadShape:
        return LoadShape(self.shape.threads, self.shape.connections, WARMUP_SECONDS)

    def paced_shape(self) -> LoadShape:
        return LoadShape(self.o.paced_threads, self.o.paced_threads, self.o.duration)

    def record(
        self,
        r: int,
        server: str,
        db: Database | None,
        scenario: str,
        result: WrkResult,
        paced_rate: float = 0.0,
        pace: str = "",
        **extra: Any,
    ) -> None:
        p50, p99 = result.p50_ms, result.p99_ms
        if paced_rate and result.paced:
            p50, p99 = result.paced["p50_ms"], result.paced["p99_ms"]
        run = Run(
            round=r,
            server=server,
            db=db.kind if db else "",
            users=db.users if db else 0,
            scenario=scenario,
            paced_rate=paced_rate,
            pace=pace,
            rps=result.rps,
            p50_ms=p50,
            p99_ms=p99,
            requests=result.requests,
            wrk_errors=result.error_count,
            **extra,
        )
        self.runs.append(run)
        where = f"{server} {db.label}" if db else "floor"
        pace = f" paced at {paced_rate:.0f}/s" if paced_rate else ""
        checks = ""
        if run.expected_rows is not None:
            checks = f"  rows ok {run.expected_rows}/{run.requests}"
            if run.other_rows:
                checks += f", other {run.other_rows}"
            if run.log_problems:
                checks += f", app log warnings/errors {run.log_problems}"
        errors = f"  wrk errors {run.wrk_errors}" if run.wrk_errors else ""
        cpu = f"  CPU {run.cpu_ms:.2f} ms/req" if run.cpu_ms is not None else ""
        self.log(
            f"  round {r} {where:<16} {scenario:<6}{pace}: {run.rps:8.1f} req/s"
            f"  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms{cpu}{checks}{errors}"
        )


def _message(line: str) -> str:
    """A log line without its time and request id, to tell distinct problems apart."""
    text = re.sub(r"^\S+ \S+ ", "", line)
    text = re.sub(r"\[[0-9a-f]{32}\] ", "", text)
    return text[:160]


def _didml_fields(call_id: str) -> dict[str, str]:
    return {
        "callSid": call_id,
        "From": "+13125550199",
        "To": "+18005551212",
        "CallStatus": "in-progress",
        "Direction": "inbound",
    }


def _count(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


# --- the report ------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(
    runs: list[Run],
    options: argparse.Namespace,
    xml: list[xmlbench.DocResult],
    overload_runs: list[overload.Overload] | None = None,
) -> str:
    by: dict[tuple[Any, ...], list[Run]] = defaultdict(list)
    for run in runs:
        by[(run.server, run.db, run.users, run.scenario, run.pace)].append(run)
    backends = sorted({run.db for run in runs if run.db}, key=lambda b: b != "sqlite")
    small, large = options.users, options.large_users
    targets: list[tuple[str, str, str, str]] = []  # target, db, measured, verdict

    def of_round(server: str, backend: str, scenario: str, r: int) -> Run | None:
        found = by[(server, backend, small if backend else 0, scenario, "")]
        return next((x for x in found if x.round == r), None)

    def ratios(scenario: str, backend: str, over: str) -> list[float]:
        """Glue's req/s over `over`'s (bound or floor), round by round."""
        return [
            g.rps / other.rps
            for g in by[("glue", backend, small, scenario, "")]
            if (other := of_round(over, "" if over == "floor" else backend, scenario, g.round))
            and other.rps
        ]

    # The steps: Glue, its bound and the floor side by side.
    head = (
        f"{'step (' + _count(small) + ' users)':<30} {'db':<9} {'Glue req/s':>10} {'p99 ms':>7}"
        f" {'bound req/s':>11} {'p99 ms':>7} {'floor req/s':>11} {'Glue/bound':>10}"
        f" {'Glue/floor':>10} {'CPU ms/step: Glue':>17} {'bound':>6} {'floor':>6}"
    )
    lines = [head, "-" * len(head)]
    for scenario in SCENARIOS:
        for backend in backends:
            glue = by[("glue", backend, small, scenario, "")]
            if not glue:
                continue
            bound = by[("bound", backend, small, scenario, "")]
            floor = by[("floor", "", 0, scenario, "")]
            over_bound = median(ratios(scenario, backend, "bound"))
            lines.append(
                f"{SCENARIO_LABELS[scenario]:<30} {backend:<9}"
                f" {_median(glue, 'rps'):>10.0f} {_median(glue, 'p99_ms'):>7.2f}"
                f" {_median(bound, 'rps'):>11.0f} {_median(bound, 'p99_ms'):>7.2f}"
                f" {_median(floor, 'rps'):>11.0f} {over_bound:>10.2f}"
                f" {median(ratios(scenario, backend, 'floor')):>10.2f}"
                f" {_median(glue, 'cpu_ms'):>17.2f} {_median(bound, 'cpu_ms'):>6.2f}"
                f" {_median(floor, 'cpu_ms'):>6.2f}"
            )
            targets.append(
                (
                    f"{SCENARIO_LABELS[scenario]}: Glue/bound req/s >= {BOUND_TARGET:g}",
                    backend,
                    f"{over_bound:.2f}",
                    _verdict(over_bound >= BOUND_TARGET, over_bound),
                )
            )
    lines.append(
        "bound: the step's database work written by hand on the floor's stack (bench/bound.py,"
        " raw driver\ncalls, none of Glue's guarantees); floor: a fixed reply (bench/floor.py)."
        " Ratios: medians of the\nper-round ratios. CPU: user+system time of the gunicorn"
        " workers (/proc) over the requests served."
    )

    # Latency paced at half Glue's own rate.
    lines.append("")
    head = (
        f"{'verification step, paced':<30} {'db':<9} {'rate /s':>8} {'reached /s':>10}"
        f" {'p50 ms':>7} {'p99 ms':>7}"
    )
    lines += [head, "-" * len(head)]
    for backend in backends:
        paced = by[("glue", backend, small, "verify", "glue")]
        if not paced:
            continue
        p99 = _median(paced, "p99_ms")
        lines.append(
            f"{'Glue at half its own rate':<30} {backend:<9} {_median(paced, 'paced_rate'):>8.0f}"
            f" {_median(paced, 'rps'):>10.0f} {_median(paced, 'p50_ms'):>7.2f} {p99:>7.2f}"
        )
        bound = by[("bound", backend, small, "verify", "glue")]
        if bound:
            lines.append(
                f"{'the bound at the same rate':<30} {backend:<9}"
                f" {_median(bound, 'paced_rate'):>8.0f} {_median(bound, 'rps'):>10.0f}"
                f" {_median(bound, 'p50_ms'):>7.2f} {_median(bound, 'p99_ms'):>7.2f}"
            )
        targets.append(
            (
                f"p99 <= {P99_TARGET_MS:g} ms at half Glue's own verify rate",
                backend,
                f"{p99:.2f} ms",
                _verdict(p99 <= P99_TARGET_MS, p99),
            )
        )
    lines.append(
        "Latency from when each request was due (wrk with a Lua pacer, one connection per"
        " thread:\nbench/lua/glue.lua), so a server that falls behind is not excused."
    )

    # Scale
    if large:
        lines.append("")
        head = (
            f"{'verification step':<20} {'db':<10} {_count(small) + ' req/s':>10} {'p50 ms':>7}"
            f" {'p99 ms':>7} {_count(large) + ' req/s':>11} {'p50 ms':>7} {'p99 ms':>7}"
            f" {'p50 x':>6} {'p99 x':>6}"
        )
        lines += [head, "-" * len(head)]
        for backend in backends:
            base = by[("glue", backend, small, "verify", "")]
            big = by[("glue", backend, large, "verify", "")]
            if not base or not big:
                continue
            pairs = [(b, g) for g in big for b in base if b.round == g.round]
            p50x = median([g.p50_ms / b.p50_ms for b, g in pairs])
            p99x = median([g.p99_ms / b.p99_ms for b, g in pairs])
            lines.append(
                f"{'users ' + _count(small) + ' vs ' + _count(large):<20} {backend:<10}"
                f" {_median(base, 'rps'):>10.0f} {_median(base, 'p50_ms'):>7.2f}"
                f" {_median(base, 'p99_ms'):>7.2f} {_median(big, 'rps'):>11.0f}"
                f" {_median(big, 'p50_ms'):>7.2f} {_median(big, 'p99_ms'):>7.2f}"
                f" {p50x:>6.2f} {p99x:>6.2f}"
            )
            targets.append(
                (
                    f"{_count(large)} users: p50 within {SCALE_TARGET:g}x of {_count(small)}",
                    backend,
                    f"{p50x:.2f}x",
                    _verdict(p50x <= SCALE_TARGET, p50x),
                )
            )
        lines.append(
            "p50 x / p99 x: the large directory's latency over the small one's "
            "(median of per-round ratios), same concurrency."
        )

    if overload_runs:
        lines += ["", *overload.table(overload_runs)]

    if xml:
        lines += ["", xmlbench.table(xml)]
        slowest = min(x.speedup for x in xml)
        targets.append(
            (
                "TwiML rendering faster than twilio-python (every document)",
                "",
                f"{slowest:.2f}x at the least",
                _verdict(slowest > 1.0, slowest),
            )
        )

    checks = [run for run in runs if run.server != "floor"]
    lines.append("")
    if broken(runs, overload_runs):
        short = [
            r for r in checks if r.expected_rows is not None and r.expected_rows < 0.98 * r.requests
        ]
        noisy = [run for run in checks if run.log_problems or run.wrk_errors]
        lost = [o for o in overload_runs or [] if o.broken]
        lines.append(
            f"BROKEN RUN: {len(short)} Glue or bound run(s) stored fewer expected rows than "
            f"requests, {len(noisy)} had wrk errors or app warnings, {len(lost)} overload run(s)"
            " lost rows or stored some twice (see the per-run lines above)."
        )
    else:
        lines.append(
            "Checks: every Glue and bound run stored one row with the expected outcome per request "
            "(call_events), no wrk errors, no app warnings."
            + (
                " Every overload run stored one row per request sent or logged it as not stored."
                if overload_runs
                else ""
            )
        )

    lines.append("")
    head = f"{'target':<58} {'db':<9} {'measured':>20}  result"
    lines += [head, "-" * len(head)]
    lines += [f"{t:<58} {db:<9} {m:>20}  {v}" for t, db, m, v in targets]
    return "\n".join(lines)


def broken(runs: list[Run], overload_runs: list[overload.Overload] | None = None) -> bool:
    """A Glue or bound run whose figures do not measure what they claim: it stored
    fewer rows with the expected outcome than requests, or wrk or the app saw errors;
    an overload run that lost rows or stored some twice."""
    return any(
        (run.expected_rows is not None and run.expected_rows < 0.98 * run.requests)
        or run.log_problems
        or run.wrk_errors
        for run in runs
        if run.server != "floor"
    ) or any(o.broken for o in overload_runs or [])


def _median(runs: list[Run], attribute: str) -> float:
    values = [getattr(run, attribute) for run in runs]
    return median([v for v in values if v is not None])


def _verdict(met: bool, value: float) -> str:
    if value != value:  # NaN: a side of the comparison was not measured
        return "not measured"
    return "PASS" if met else "FAIL"


def machine_notes() -> str:
    import os

    load = Path("/proc/loadavg").read_text().split()[:3]
    return f"{os.cpu_count()} CPUs, load average {' '.join(load)} at the start"


def main(options: argparse.Namespace) -> int:
    bench = Bench(options)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    bench.log(
        f"Glue bench: {options.runs} round(s), wrk -t{options.threads} -c{options.connections}"
        f" -d{options.duration:g}s, gunicorn 2 sync workers; {machine_notes()}"
    )
    xml_results: list[xmlbench.DocResult] = []
    try:
        bench.setup()
        for r in range(1, options.runs + 1):
            bench.log(f"round {r}/{options.runs}")
            bench.round(r)
        if options.overload:
            bench.log("overload: twice Glue's own verify rate, then half of it")
            for backend in bench.backends:
                bench.overload_run(bench.dbs[(backend, "small")])
        if not options.no_xml:
            bench.log("XML rendering: our TwiML dialect vs twilio-python")
            xml_results = xmlbench.run(repeat=options.xml_repeat, rounds=max(3, options.runs))
    finally:
        bench.teardown()
    report = summarize(bench.runs, options, xml_results, bench.overload_runs)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (OUT_DIR / f"results-{stamp}.json").write_text(
        json.dumps(
            {
                "options": vars(options),
                "runs": [asdict(run) for run in bench.runs],
                "overload": [asdict(o) for o in bench.overload_runs],
                "xml": [asdict(x) for x in xml_results],
            },
            indent=2,
        )
    )
    (OUT_DIR / f"report-{stamp}.txt").write_text(report + "\n")
    print()
    print(report)
    total = time.monotonic() - bench.started
    print(f"\n(total {total:.0f} s; written to bench/out/report-{stamp}.txt)")
    return 1 if broken(bench.runs, bench.overload_runs) else 0
