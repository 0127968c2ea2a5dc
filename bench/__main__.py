"""Command line: `python -m bench [run] [options]`, `python -m bench xml|profile`."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

# The job queue is made when app.outbound.jobs is imported: never the real one.
os.environ.setdefault("GLUE_QUEUE_PATH", os.path.join(tempfile.gettempdir(), "glue-bench-jobs.db"))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = top.add_subparsers(dest="command")

    run = commands.add_parser("run", help="Glue vs the floor under wrk (the default)")
    run.add_argument(
        "--quick",
        action="store_true",
        help="1 round, 3 s runs, 100k large users, overload 5 s then recovery 10 s",
    )
    run.add_argument("--runs", type=int, default=3, help="rounds (default 3); medians reported")
    run.add_argument("--duration", type=float, default=6.0, help="seconds per wrk run (6)")
    run.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    run.add_argument("--connections", type=int, default=4, help="wrk connections (4)")
    run.add_argument(
        "--paced-threads",
        type=int,
        default=4,
        help="wrk threads (one connection each) of the paced runs (4)",
    )
    run.add_argument("--users", type=int, default=1000, help="small directory (1000)")
    run.add_argument(
        "--large-users", type=int, default=1_000_000, help="large directory (1000000; 0: skip)"
    )
    run.add_argument(
        "--db",
        default="sqlite,postgres",
        type=lambda s: [part for part in s.split(",") if part],
        help="sqlite,postgres (both by default; PostgreSQL skipped when unreachable)",
    )
    run.add_argument(
        "--max-rate",
        type=float,
        default=3000.0,
        help="req/s the didML Gather calls are prepared for (3000)",
    )
    run.add_argument(
        "--overload",
        type=float,
        help="seconds of the overload run at twice Glue's verify rate (10; 0: skip)",
    )
    run.add_argument(
        "--recovery",
        type=float,
        help="seconds at half Glue's verify rate after the overload (20)",
    )
    run.add_argument("--no-xml", action="store_true", help="skip the XML micro-benchmark")
    run.add_argument("--xml-repeat", type=int, default=2000)
    run.add_argument("--keep", action="store_true", help="keep the databases afterwards")

    xml = commands.add_parser("xml", help="our TwiML rendering vs twilio-python")
    xml.add_argument("--repeat", type=int, default=3000, help="documents per timing (3000)")
    xml.add_argument("--rounds", type=int, default=7, help="timings, median kept (7)")

    profile = commands.add_parser("profile", help="pyinstrument over in-process verification")
    profile.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    profile.add_argument("--requests", type=int, default=1000)
    profile.add_argument("--warmup", type=int, default=200)
    profile.add_argument("--users", type=int, default=1000)
    profile.add_argument("--interval", type=float, default=0.001, help="sampling s (0.001)")
    profile.add_argument("--keep", action="store_true")
    return top


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0].startswith("-"):
        args = ["run", *args]
    options = parser().parse_args(args)
    if options.command == "xml":
        from bench import xmlbench

        return xmlbench.main(options)
    if options.command == "profile":
        from bench import profiling as profile

        return profile.main(options)
    if options.quick:
        options.runs, options.duration, options.xml_repeat = 1, 3.0, 1000
        if options.large_users == 1_000_000:
            options.large_users = 100_000
    if options.overload is None:
        options.overload = 5.0 if options.quick else 10.0
    if options.recovery is None:
        options.recovery = 10.0 if options.quick else 20.0
    from bench import run

    return run.main(options)


if __name__ == "__main__":
    sys.exit(main())
