"""`python -m bench profile` (`make profile`): where a verification step's time goes.

Runs N IfbyPhone verification steps (a new call, account + PIN checked, attempt
stored, XML rendered: the bench's `verify` request) in this process, straight
through Glue's WSGI app (no HTTP server, no test client), under pyinstrument.
Writes bench/out/profile-verify-<db>.html and .txt, and prints a summary: self
time by package (what kind of work) and inclusive time of Glue's own functions
(which part of Glue asks for it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench import dataset
from bench.common import (
    OUT_DIR,
    PROJECT_ROOT,
    SECRETS,
    account_of,
    apply_env,
    glue_env,
    pin_of,
)

PG_PROFILE_DATABASE = "glue_bench_profile"


def _environs(count: int, users: int, tag: str) -> Iterator[dict[str, Any]]:
    from werkzeug.test import EnvironBuilder

    for n in range(count):
        i = (n * 7919) % users
        builder = EnvironBuilder(
            path="/ifbyphone/verify_caller",
            method="POST",
            query_string={"key": SECRETS["IFBYPHONE_SECRET"]},
            data={
                "session_id": f"{tag}-{n}",
                "caller_id": f"312{3_000_000 + n:07d}",
                "timestamp": "2026-11-21 14:00:00",
                "account": account_of(i),
                "pin": pin_of(i),
            },
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )
        try:
            yield builder.get_environ()
        finally:
            builder.close()


def _call(app: Any, environ: dict[str, Any]) -> bytes:
    status: list[str] = []

    def start_response(s: str, _headers: Any, _exc: Any = None) -> None:
        status.append(s)

    iterable = app(environ, start_response)
    try:
        body = b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close:
            close()
    if not status or not status[0].startswith("200") or b"Thank you" not in body:
        raise RuntimeError(f"verification step answered {status} {body[:300]!r}")
    return body


def category(file_path: str) -> str:
    """What kind of code a file is: Glue's module, a package, or the standard library."""
    path = file_path or ""
    root = str(PROJECT_ROOT) + os.sep
    if path.startswith(root + "app" + os.sep):
        return path[len(root) :].removesuffix(".py")
    if "site-packages" + os.sep in path:
        parts = path.split("site-packages" + os.sep, 1)[1].split(os.sep)
        if parts[0] == "sqlalchemy" and len(parts) > 2:
            return f"sqlalchemy/{parts[1]}"  # orm, sql (compiling), engine (executing)
        return parts[0].removesuffix(".py")
    if path.startswith("<") or not path:
        return "(builtin)"
    stdlib = os.path.dirname(os.__file__) + os.sep
    if path.startswith(stdlib):
        rest = path[len(stdlib) :]
        return "stdlib:" + rest.split(os.sep, 1)[0].removesuffix(".py")
    return path


def summarize(session: Any, requests: int, top: int = 25) -> str:
    root = session.root_frame()
    total = root.time if root else 0.0
    by_category: dict[str, float] = defaultdict(float)
    app_inclusive: dict[str, float] = defaultdict(float)

    def walk(frame: Any, parent_category: str, stack: frozenset[str]) -> None:
        if frame.is_synthetic:
            return  # "[self]" and the like: already in their parent's total_self_time
        path = frame.file_path or ""
        if path.startswith("<built-in>") or (not path and frame.function):
            # C code: named by what it is (sqlite3's execute, a lock's acquire, ...),
            # so the time spent in the database driver shows as such.
            own = f"(C) {frame.function}"
        else:
            own = category(path) if path else parent_category
        by_category[own] += frame.total_self_time
        key = f"{frame.function} ({own}:{frame.line_no})"
        if own.startswith("app/") and key not in stack:
            app_inclusive[key] += frame.time
            stack = stack | {key}
        for child in frame.children:
            walk(child, own, stack)

    if root is not None:
        walk(root, "(root)", frozenset())
    per_request_ms = total / requests * 1000 if requests else 0.0
    lines = [
        f"{requests} verification steps, {total:.2f} s sampled, "
        f"{per_request_ms:.2f} ms per step in this process",
        "",
        "Self time by package/module (what kind of work):",
    ]
    lines += [
        f"  {seconds / total * 100:5.1f}%  {seconds / requests * 1e3:6.3f} ms  {name}"
        for name, seconds in sorted(by_category.items(), key=lambda kv: -kv[1])[:top]
        if total
    ]
    lines += ["", "Inclusive time of Glue's functions (which part of Glue spends it):"]
    lines += [
        f"  {seconds / total * 100:5.1f}%  {seconds / requests * 1e3:6.3f} ms  {name}"
        for name, seconds in sorted(app_inclusive.items(), key=lambda kv: -kv[1])[:top]
        if total
    ]
    return "\n".join(lines)


def main(options: argparse.Namespace) -> int:
    from pyinstrument import Profiler

    workdir = Path(tempfile.mkdtemp(prefix="glue-profile-"))
    if options.db == "postgres":
        why = dataset.postgres_reachable()
        if why:
            print(f"PostgreSQL unreachable: {why}", file=sys.stderr)
            return 1
        db = dataset.postgres_database(PG_PROFILE_DATABASE, options.users, "postgres")
    else:
        db = dataset.sqlite_database(workdir, options.users, "sqlite")
    apply_env(glue_env(db.url, workdir))
    dataset.prepare(db, print)

    from app import create_app

    app = create_app()
    warm = list(_environs(options.warmup, options.users, "warm"))
    measured = list(_environs(options.requests, options.users, "prof"))
    for environ in warm:
        _call(app, environ)
    # The same steps without the profiler first: what one costs, wall and CPU,
    # and which SQL statements it sends.
    plain = list(_environs(options.requests, options.users, "plain"))
    statements: Counter[str] = Counter()
    with app.app_context():
        from app.db import get_engine

        engine = get_engine()

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements[" ".join(statement.split())[:110]] += 1

    event.listen(engine, "before_cursor_execute", count)
    wall, cpu = time.perf_counter(), time.process_time()
    for environ in plain:
        _call(app, environ)
    wall_ms = (time.perf_counter() - wall) / options.requests * 1e3
    cpu_ms = (time.process_time() - cpu) / options.requests * 1e3
    event.remove(engine, "before_cursor_execute", count)
    sql_lines = [
        f"SQL statements per step: {sum(statements.values()) / options.requests:.1f} "
        "(plus BEGIN/COMMIT)"
    ] + [f"  {n / options.requests:4.1f}  {statement}" for statement, n in statements.most_common()]

    profiler = Profiler(interval=options.interval)
    started = time.perf_counter()
    profiler.start()
    for environ in measured:
        _call(app, environ)
    profiler.stop()
    elapsed = time.perf_counter() - started

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stem = OUT_DIR / f"profile-verify-{options.db}"
    session = profiler.last_session
    text = profiler.output_text(unicode=True, color=False, show_all=False)
    summary = summarize(session, options.requests)
    header = (
        f"Glue verification step, in process, {options.db}, {options.users:,} users: "
        f"{options.requests} requests in {elapsed:.2f} s "
        f"({options.requests / elapsed:.0f}/s with the profiler on); without it "
        f"{wall_ms:.2f} ms wall, {cpu_ms:.2f} ms CPU per step, one at a time\n"
    )
    summary += "\n\n" + "\n".join(sql_lines)
    stem.with_suffix(".txt").write_text(header + "\n" + summary + "\n\n" + text)
    stem.with_suffix(".html").write_text(profiler.output_html())
    print(header)
    print(summary)
    print(f"\nfull tree: {stem}.txt, {stem}.html")
    with app.app_context():
        from app.db import get_engine

        get_engine().dispose()
    if not options.keep:
        if options.db == "postgres":
            dataset.drop_postgres(PG_PROFILE_DATABASE)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0
