"""The flows this process serves: a cache of the published versions in the database.

New calls start on a flow's published version (its highest number, see
app/flows/versions.py). Each process keeps the parsed versions it has used, by
(name, number): a version never changes, so it is never parsed twice. Which
number is published is learnt by polling `generation()` (one tiny query) at most
every FLOWS_POLL_SECONDS, when a request asks for a flow (in a thread of its
own, see `poll`): in steady state a request costs no query, and every worker on
every host starts new calls on a new version within about that long after it is
published.

The files in FLOWS_DIR are where flows are written. `flask forms publish` makes
them versions; with FLOWS_AUTO_PUBLISH (development), a file edited since its
flow's published version is published as soon as it is seen, through the same
check. A broken file is never published: its problems are logged and kept in
`problems`, and the published version goes on serving. Until the database has
answered once, the files themselves are served (version None), so a worker that
starts while the database is down still answers with each flow's apology.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.db import begin_read, begin_write, request_transaction_open
from app.flows import versions
from app.flows.loader import FLOW_NAME, FlowFileError, Problem, load_flow, load_flow_text
from app.flows.model import Flow

EXTENSION = "glue.flows"
# Seconds a request waits for a look at the published versions (one small
# query, a millisecond or two) before it goes on with those it knows.
POLL_WAIT = 0.2

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Entry:
    flow: Flow | None  # None: the file never loaded cleanly
    mtime_ns: int
    checked_at: float  # time.monotonic() of the last stat


class FlowRegistry:
    def __init__(
        self,
        directory: Path,
        reload_seconds: float,
        sessions: sessionmaker[Session] | None = None,
        poll_seconds: float = 1.0,
        auto_publish: bool = False,
    ) -> None:
        self.directory = directory
        self.reload_seconds = reload_seconds
        self.poll_seconds = poll_seconds
        self.auto_publish = auto_publish
        self.problems: dict[str, list[Problem]] = {}  # flow name -> problems of its file
        # Set once start-up has loaded every file: from then on a failed reload
        # is logged when it is found, by a request or by the admin page alike.
        self.watching = False
        self._sessions = sessions
        self._entries: dict[str, _Entry] = {}  # the files, as last read
        # Files read cleanly and not yet held against the published version.
        self._unsettled: set[str] = set()
        self._versions: dict[tuple[str, int], Flow] = {}  # parsed versions: immutable
        self._published: dict[str, int] = {}  # name -> published number
        self._generation: int | None = None  # None: the database has not answered yet
        self._polled_at = float("-inf")
        self._poll_failed = False
        self._looking: threading.Thread | None = None
        # Readers look entries up without it (a dict lookup is atomic); the lock
        # only keeps two threads from reloading the same file and racing the swap.
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()

    def load_all(self) -> list[Problem]:
        """Read every *.yaml in the directory (publishing edited ones with
        auto-publish); returns the problems of those that failed."""
        if not self.directory.is_dir():
            raise NotADirectoryError(f"flow directory not found: {self.directory}")
        problems: list[Problem] = []
        for path in sorted(self.directory.glob("*.yaml")):
            problems += self._refresh(path.stem)
        return problems

    def names(self) -> list[str]:
        """The flows published (as last polled) and those the directory holds now."""
        paths = self.directory.glob("*.yaml") if self.directory.is_dir() else []
        files = {path.stem for path in paths if FLOW_NAME.fullmatch(path.stem)}
        return sorted(files | set(self._published))

    def get(self, name: str) -> Flow | None:
        """The published version of the flow called name, or None."""
        if not FLOW_NAME.fullmatch(name):  # names come from URLs: never a path
            return None
        if self.auto_publish:
            entry = self._entries.get(name)
            due = entry is None or time.monotonic() - entry.checked_at >= self.reload_seconds
            if due or name in self._unsettled:
                self._refresh(name)
        self.poll()
        if self._generation is None:  # no database yet: the files as they are
            entry = self._entries.get(name)
            return entry.flow if entry else None
        number = self._published.get(name)
        return self.get_version(name, number) if number is not None else None

    def published_number(self, name: str) -> int | None:
        """The number of name's published version, as last polled."""
        self.poll()
        return self._published.get(name)

    def get_version(self, name: str, number: int) -> Flow | None:
        """Version `number` of the flow called name (read once, then kept), or None."""
        key = (name, number)
        flow = self._versions.get(key)
        if flow is not None or self._sessions is None:
            return flow
        try:
            with self._sessions() as session:
                begin_read(session)  # within a turn, which holds the write lock
                row = versions.version(session, name, number)
        except SQLAlchemyError:
            logger.exception("flow %s version %d could not be read", name, number)
            return None
        if row is None:
            return None
        try:
            loaded = load_flow_text(row.source, name, f"{name} v{number}")
        except FlowFileError as exc:  # checked when published, by an older Glue
            logger.error("flow %s version %d no longer loads: %s", name, number, exc)
            return None
        flow = replace(loaded, version=number)
        self._versions[key] = flow
        return flow

    def poll(self, force: bool = False) -> None:
        """Learn the published numbers if anything was published since the last
        look, which is at most poll_seconds old (force: look now, and wait).

        The look runs in a thread of its own, waited for POLL_WAIT at most: a
        database that has stopped answering costs a request that long, never
        its own wait on top of the request's."""
        if self._sessions is None:
            return
        if not force and time.monotonic() - self._polled_at < self.poll_seconds:
            return
        with self._poll_lock:
            looking = self._looking
            if looking is None or not looking.is_alive():
                self._polled_at = time.monotonic()
                looking = threading.Thread(target=self._look, name="glue-flow-poll", daemon=True)
                self._looking = looking
                looking.start()
        looking.join(None if force else POLL_WAIT)

    def _look(self) -> None:
        assert self._sessions is not None
        try:
            with self._sessions() as session:
                generation = versions.generation(session)
                if generation != self._generation:
                    self._published = versions.published_numbers(session)
                    self._generation = generation
            if self._poll_failed:
                logger.info("published flow versions read again")
            self._poll_failed = False
        except SQLAlchemyError as exc:
            # Keep serving what is known; say so once per outage.
            if not self._poll_failed:
                logger.warning("published flow versions not read (%s): serving those known", exc)
            self._poll_failed = True

    def _refresh(self, name: str) -> list[Problem]:
        """Re-read name's file if it changed (and publish it, with auto-publish);
        returns the problems of a failed load."""
        path = self.directory / f"{name}.yaml"
        with self._lock:
            now = time.monotonic()
            try:
                mtime_ns = path.stat().st_mtime_ns
            except FileNotFoundError:
                # Deleted, or never existed: keep no entry, so unknown names cost
                # nothing. A published flow stays published.
                self._entries.pop(name, None)
                self.problems.pop(name, None)
                self._unsettled.discard(name)
                return []
            entry = self._entries.get(name)
            if entry is not None and entry.mtime_ns == mtime_ns:
                self._entries[name] = _Entry(entry.flow, mtime_ns, now)
            else:
                try:
                    flow = load_flow(path)
                except FlowFileError as exc:
                    self._entries[name] = _Entry(entry.flow if entry else None, mtime_ns, now)
                    self._unsettled.discard(name)
                    return self._broken(name, exc.problems)
                self.problems.pop(name, None)
                self._entries[name] = _Entry(flow, mtime_ns, now)
                self._unsettled.add(name)
            if self.auto_publish and self.watching and name in self._unsettled:
                return self._publish_file(name, path, mtime_ns)
            return []

    def _publish_file(self, name: str, path: Path, mtime_ns: int) -> list[Problem]:
        """Publish the file if it was edited after its flow's published version
        (so a rollback is not undone by the file it rolled away from)."""
        if self._sessions is None:
            return []
        edited = datetime.fromtimestamp(mtime_ns / 1e9, UTC).replace(tzinfo=None)
        # A turn reading its call's flow holds SQLite's write lock: a writer on
        # another connection would wait for it. Within a turn the file is only
        # compared with the published version; an edit stays unsettled, and
        # the next read of the flow outside a turn (a new call to its URL)
        # publishes it. Alike on every database.
        in_turn = request_transaction_open()
        try:
            source = path.read_text(encoding="utf-8")
            with self._sessions() as session:
                (begin_read if in_turn else begin_write)(session)
                current = versions.published(session, name)
                if current is not None and (
                    current.created_at >= edited or current.checksum == versions.checksum(source)
                ):
                    self._unsettled.discard(name)
                    known = current.number == self._published.get(name)
                    session.rollback()
                    if not known:  # another process published it: serve that now
                        self.poll(force=True)
                    return []
                if in_turn:
                    return []
                row = versions.publish(
                    session, name, source, by="file", origin="file", file=str(path)
                )
                session.commit()
        except versions.PublishError as exc:
            self._unsettled.discard(name)
            return self._broken(name, exc.problems)
        except (OSError, UnicodeDecodeError, SQLAlchemyError) as exc:
            logger.error("flow file %s not published: %s", path, exc)
            return []
        self._unsettled.discard(name)
        if row is not None:
            logger.info("flow %s: %s published as version %d", name, path, row.number)
            self.poll(force=True)
        return []

    def _broken(self, name: str, problems: list[Problem]) -> list[Problem]:
        self.problems[name] = problems
        if self.watching:  # start-up reports its own problems
            for problem in problems:
                logger.error(
                    "flow %s not published (the published version, if any, stays): %s",
                    name,
                    problem,
                )
        return problems


def init_app(app: Flask, strict: bool) -> None:
    """Check FLOWS_DIR. strict: any broken file stops start-up; else log it and go on.

    The database is not read here (`flask db upgrade` builds this app before the
    tables exist): the first request does."""
    registry = FlowRegistry(
        Path(app.config["FLOWS_DIR"]),
        float(app.config["FLOWS_RELOAD_SECONDS"]),
        app.extensions["glue.sessionmaker"],
        poll_seconds=float(app.config["FLOWS_POLL_SECONDS"]),
        auto_publish=bool(app.config["FLOWS_AUTO_PUBLISH"]),
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
    """The current app's published flow called name (an untrusted string from a URL), or None."""
    return current_registry().get(name)


def get_flow_version(name: str, number: int) -> Flow | None:
    """Version `number` of the current app's flow called name, or None."""
    return current_registry().get_version(name, number)
