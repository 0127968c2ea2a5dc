"""The loaded flows of FLOWS_DIR, reloaded when an admin edits a file.

A broken edit never takes a flow down: the last good version keeps serving and
the problems are logged and kept in `problems` for the admin to see. A broken
file found at a non-strict start-up is logged as one line naming the file.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app

from app.flows.loader import FLOW_NAME, FlowFileError, Problem, load_flow
from app.flows.model import Flow

EXTENSION = "glue.flows"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Entry:
    flow: Flow | None  # None: the file never loaded cleanly
    mtime_ns: int
    checked_at: float  # time.monotonic() of the last stat


class FlowRegistry:
    def __init__(self, directory: Path, reload_seconds: float) -> None:
        self.directory = directory
        self.reload_seconds = reload_seconds
        self.problems: dict[str, list[Problem]] = {}  # flow name -> problems of its file
        # Set once start-up has loaded every file: from then on a failed reload
        # is logged when it is found, by a request or by the admin page alike.
        self.watching = False
        self._entries: dict[str, _Entry] = {}
        # Readers look entries up without it (a dict lookup is atomic); the lock
        # only keeps two threads from reloading the same file and racing the swap.
        self._lock = threading.Lock()

    def load_all(self) -> list[Problem]:
        """Load every *.yaml in the directory; returns the problems of those that failed."""
        if not self.directory.is_dir():
            raise NotADirectoryError(f"flow directory not found: {self.directory}")
        problems: list[Problem] = []
        for path in sorted(self.directory.glob("*.yaml")):
            problems += self._refresh(path.stem)
        return problems

    def names(self) -> list[str]:
        """The flow names the directory holds now, whether their files load or not."""
        paths = self.directory.glob("*.yaml") if self.directory.is_dir() else []
        return sorted(path.stem for path in paths if FLOW_NAME.fullmatch(path.stem))

    def get(self, name: str) -> Flow | None:
        """The flow called name (checking its file for edits now and then), or None."""
        if not FLOW_NAME.fullmatch(name):  # names come from URLs: never a path
            return None
        entry = self._entries.get(name)
        if entry is None or time.monotonic() - entry.checked_at >= self.reload_seconds:
            self._refresh(name)
            entry = self._entries.get(name)
        return entry.flow if entry else None

    def _refresh(self, name: str) -> list[Problem]:
        """Re-read name's file if it changed; returns the problems of a failed load."""
        path = self.directory / f"{name}.yaml"
        with self._lock:
            now = time.monotonic()
            try:
                mtime_ns = path.stat().st_mtime_ns
            except FileNotFoundError:
                # Deleted, or never existed: keep no entry, so unknown names cost nothing.
                self._entries.pop(name, None)
                self.problems.pop(name, None)
                return []
            entry = self._entries.get(name)
            if entry is not None and entry.mtime_ns == mtime_ns:
                self._entries[name] = _Entry(entry.flow, mtime_ns, now)
                return []
            try:
                flow = load_flow(path)
            except FlowFileError as exc:
                self.problems[name] = exc.problems
                self._entries[name] = _Entry(entry.flow if entry else None, mtime_ns, now)
                if self.watching:  # start-up reports its own problems
                    for problem in exc.problems:
                        logger.error(
                            "flow %s not reloaded (the last good version, if any, stays): %s",
                            name,
                            problem,
                        )
                return exc.problems
            self.problems.pop(name, None)
            self._entries[name] = _Entry(flow, mtime_ns, now)
            return []


def init_app(app: Flask, strict: bool) -> None:
    """Load FLOWS_DIR. strict: any broken file stops start-up; else log it and go on."""
    registry = FlowRegistry(
        Path(app.config["FLOWS_DIR"]), float(app.config["FLOWS_RELOAD_SECONDS"])
    )
    problems = registry.load_all()
    if problems and strict:
        raise FlowFileError(problems)
    # One line per broken file, not per problem: `flask forms check` (an app made
    # like this one runs every command) prints each problem itself, and the admin
    # pages show them from `problems`.
    for file, count in Counter(problem.file for problem in problems).items():
        logger.warning(
            "flow file %s not loaded (%d problem%s): `flask forms check` lists them",
            file,
            count,
            "" if count == 1 else "s",
        )
    registry.watching = True
    app.extensions[EXTENSION] = registry


def current_registry() -> FlowRegistry:
    registry: FlowRegistry = current_app.extensions[EXTENSION]
    return registry


def get_flow(name: str) -> Flow | None:
    """The current app's flow called name (an untrusted string from a URL), or None."""
    return current_registry().get(name)
