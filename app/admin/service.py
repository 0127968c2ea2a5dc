"""What the admin pages read and do: plain functions over a session and the flow registry.

They never commit (the views do, once per request), and they read lockout
counters as stored, never from the session's cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from math import ceil
from pathlib import Path
from typing import Generic, Literal, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app.db import begin_write
from app.directory import service as directory
from app.directory.service import DirectoryError
from app.flows import graph, versions
from app.flows.loader import Problem
from app.flows.model import Flow
from app.flows.registry import FlowRegistry
from app.models import (
    AdminAction,
    Call,
    FlowVersion,
    Group,
    UnknownClaim,
    User,
    VerificationAttempt,
    utcnow,
)

PER_PAGE = 50
ACTIONS_SHOWN = 50
# Lockout state must be read as stored: a caller may have just changed it.
FRESH = {"populate_existing": True}

T = TypeVar("T")
UnlockKind = Literal["user", "group", "unknown"]
CLAIM_TYPES = ("account", "group", "caller_id")


class AdminError(ValueError):
    """An admin action that cannot be done; the message is one sentence for the page."""


# --- flows ---------------------------------------------------------------------


@dataclass(frozen=True)
class FlowStatus:
    name: str
    file: str  # the file's name in the flow directory
    problems: tuple[str, ...]  # "file:line: field: message"; empty: OK
    serving: bool  # a version is published (whatever the file holds now)
    description: str = ""
    published: FlowVersion | None = None  # the version new calls start on
    file_checksum: str | None = None  # of the file's text; None: no file, or unreadable

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def differs(self) -> bool:
        """The file is not what is published: edited since, never published, or a
        rollback put an older version in use."""
        if not self.file:
            return False
        return self.published is None or self.file_checksum != self.published.checksum


def flow_statuses(session: Session, registry: FlowRegistry) -> list[FlowStatus]:
    """Every flow file with its check status (each file re-checked now if it changed)
    and its published version, then the flows published with no file here."""
    registry.load_all()  # the registry's reload check, file by file
    published = {version.flow: version for version in _published_versions(session)}
    statuses = []
    for path in sorted(registry.directory.glob("*.yaml")):
        name = path.stem
        flow = registry.get(name)
        problems = tuple(_problem_text(p) for p in registry.problems.get(name, []))
        statuses.append(
            FlowStatus(
                name=name,
                file=path.name,
                problems=problems,
                serving=flow is not None,
                description=flow.description if flow else "",
                published=published.pop(name, None),
                file_checksum=_file_checksum(path),
            )
        )
    for name, version in sorted(published.items()):
        flow = registry.get(name)
        statuses.append(
            FlowStatus(
                name=name,
                file="",
                problems=(),
                serving=flow is not None,
                description=flow.description if flow else "",
                published=version,
            )
        )
    return statuses


def flow_status(
    session: Session, registry: FlowRegistry, name: str
) -> tuple[FlowStatus, Flow | None] | None:
    """One flow's status and its loaded flow, or None if there is no such flow."""
    for status in flow_statuses(session, registry):
        if status.name == name:
            return status, registry.get(name) if status.serving else None
    return None


def _published_versions(session: Session) -> list[FlowVersion]:
    """Each flow's published (highest-numbered) version, in one query."""
    newest = (
        select(FlowVersion.flow, func.max(FlowVersion.number).label("number"))
        .group_by(FlowVersion.flow)
        .subquery()
    )
    stmt = select(FlowVersion).join(
        newest, (FlowVersion.flow == newest.c.flow) & (FlowVersion.number == newest.c.number)
    )
    return list(session.scalars(stmt))


def _file_checksum(path: Path) -> str | None:
    """The checksum a publish of this file would store; None if it cannot be read."""
    try:
        return versions.checksum(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


def _problem_text(problem: Problem) -> str:
    """As `flask forms check` prints it (with its fix hint), but with the file's
    name only: the server's directory layout is not the admin's business."""
    return str(replace(problem, file=Path(problem.file).name))


def flow_graph_svg(flow: Flow) -> bytes:
    """The flow drawn as an SVG document; raises GraphError when Graphviz cannot draw."""
    return graph.render(flow, fmt="svg")


# --- flow versions -----------------------------------------------------------------

DiffKind = Literal["file", "hunk", "add", "del", "same"]


@dataclass(frozen=True)
class DiffLine:
    kind: DiffKind
    text: str


@dataclass(frozen=True)
class VersionDiff:
    a: FlowVersion | None  # None: b is the flow's first version, shown against nothing
    b: FlowVersion
    lines: list[DiffLine]
    numbers: list[int]  # every version of the flow, newest first, to choose others


def diff_lines(diff: str) -> list[DiffLine]:
    """A unified diff's lines, each with what it is (for its colour)."""
    lines = []
    for line in diff.splitlines():
        kind: DiffKind
        if line.startswith(("--- ", "+++ ")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        lines.append(DiffLine(kind, line))
    return lines


def version_diff(session: Session, name: str, a: int | None, b: int | None) -> VersionDiff | None:
    """The diff from version a to version b of a flow, or None if either is not there.

    b defaults to the published version, a to the version before b.
    """
    history = versions.history(session, name)
    by_number = {version.number: version for version in history}
    if not history:
        return None
    new = by_number.get(history[0].number if b is None else b)
    if new is None:
        return None
    if a is None:
        older = [number for number in by_number if number < new.number]
        old = by_number[max(older)] if older else None
    else:
        old = by_number.get(a)
        if old is None:
            return None
    text = versions.diff("" if old is None else old, new, a_label="" if old else "nothing")
    return VersionDiff(old, new, diff_lines(text), list(by_number))


def rollback(session: Session, admin: User, name: str, number: int) -> FlowVersion:
    """Publish version `number` of a flow again, as a new version, and record who did it.

    Raises AdminError when there is no such version, it is the published one, or
    its source no longer passes the check.
    """
    begin_write(session)  # reads the published number, then writes the next
    published = versions.published(session, name)
    if published is None or versions.version(session, name, number) is None:
        raise AdminError(f"The flow {name} has no version {number}.")
    if number == published.number:
        raise AdminError(f"Version {number} of {name} is the published one already.")
    try:
        new = versions.rollback(session, name, number, by=f"admin:{admin.account_number}")
    except LookupError:
        raise AdminError(f"The flow {name} has no version {number}.") from None
    except versions.PublishError as exc:
        first = _problem_text(exc.problems[0]) if exc.problems else "it fails the check"
        raise AdminError(f"Version {number} of {name} cannot be published again: {first}") from None
    detail = f"to v{number}, published as v{new.number} (was v{published.number})"
    record_action(session, admin, "rollback", "flow", name, detail)
    return new


# --- calls and pages of lists ----------------------------------------------------------


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    number: int  # 1-based
    total: int
    per_page: int = PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, ceil(self.total / self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def call_detail(session: Session, call_id: int) -> tuple[Call, list[VerificationAttempt]] | None:
    """A call with its events (in the order received) and its verification attempts."""
    call = session.scalar(select(Call).where(Call.id == call_id).options(selectinload(Call.events)))
    if call is None:
        return None
    attempts = session.scalars(
        select(VerificationAttempt)
        .where(VerificationAttempt.call_id == call_id)
        .order_by(VerificationAttempt.id)
    )
    return call, list(attempts)


def call_path_svg(registry: FlowRegistry, call: Call) -> bytes | None:
    """The graph of the flow version the call ran, its path lit (`graph.call_path`);
    None for a call from before versions, or a version that no longer loads.
    Raises GraphError when Graphviz cannot draw."""
    if call.flow_version is None:
        return None
    flow = registry.get_version(call.flow, call.flow_version)
    if flow is None:
        return None
    outcomes = [event.outcome for event in call.events if event.kind == "turn"]
    return graph.highlighted(graph.render(flow, "svg"), graph.call_path(flow, outcomes))


# --- locks -------------------------------------------------------------------------


@dataclass(frozen=True)
class Locks:
    users: list[User] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    unknown: list[UnknownClaim] = field(default_factory=list)
    now: datetime = field(default_factory=utcnow)

    def until(self, record: User | Group | UnknownClaim) -> datetime | None:
        """When the record's latest lockout ends (its own phones' or others')."""
        if isinstance(record, UnknownClaim):
            return record.locked_until
        return record.locked_until_latest()

    def locked(self, record: User | Group | UnknownClaim) -> bool:
        until = self.until(record)
        return until is not None and until > self.now


def admin_actions(session: Session, limit: int = ACTIONS_SHOWN) -> list[AdminAction]:
    """The admin actions recorded, newest first."""
    stmt = (
        select(AdminAction)
        .options(selectinload(AdminAction.user))
        .order_by(AdminAction.created_at.desc(), AdminAction.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def unlock(
    session: Session, admin: User, kind: UnlockKind, number: str, claim_type: str = ""
) -> AdminAction:
    """Reset the failure counters of a user, group or unknown claim, and record who did it.

    Raises AdminError when there is no such record.
    """
    begin_write(session)  # reads the counters, then writes them
    record: User | Group | UnknownClaim
    if kind == "unknown":
        if claim_type not in CLAIM_TYPES:
            raise AdminError(f"Unknown claim type {claim_type!r}.")
        found = session.scalar(
            select(UnknownClaim)
            .where(UnknownClaim.claim_type == claim_type, UnknownClaim.claimed == number)
            .execution_options(**FRESH)
        )
        if found is None:
            raise AdminError(f"There is no unknown {claim_type} {number} on record.")
        record, target_kind = found, f"unknown_{claim_type}"
        before = _counters(record)
        record.failed_attempts = 0
        record.lockouts = 0
        record.locked_until = None
    else:
        try:
            before_record = (
                directory.get_user(session, number)
                if kind == "user"
                else directory.get_group(session, number)
            )
            session.refresh(before_record)  # as stored now, not as cached
            before = _counters(before_record)
            record = directory.unlock(session, kind, number)
        except DirectoryError as exc:
            raise AdminError(_sentence(str(exc))) from None
        target_kind = kind
    return record_action(session, admin, "unlock", target_kind, number, f"was: {before}")


def record_action(
    session: Session, admin: User, action: str, target_kind: str, target_number: str, detail: str
) -> AdminAction:
    """Keep who did what to which record (the caller commits)."""
    done = AdminAction(
        user_id=admin.id,
        action=action,
        target_kind=target_kind,
        target_number=target_number,
        detail=detail[:500],
        created_at=utcnow(),
    )
    session.add(done)
    return done


def _counters(record: User | Group | UnknownClaim) -> str:
    text = _counted(record.failed_attempts, record.lockouts, record.locked_until)
    if isinstance(record, UnknownClaim):
        return text
    own = _counted(record.owner_failed_attempts, record.owner_lockouts, record.owner_locked_until)
    return f"{text}; from its own phones: {own}"


def _counted(failed: int, lockouts: int, until: datetime | None) -> str:
    locked = f"locked until {until:%Y-%m-%d %H:%M:%S} UTC" if until else "not locked"
    return f"{failed} failed attempts, {lockouts} lockouts, {locked}"


def _sentence(message: str) -> str:
    message = message.strip()
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
