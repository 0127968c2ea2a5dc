"""Published flow versions: each is a checked YAML source kept in the database.

A flow's published version is its highest-numbered one; new calls start on it,
and every call keeps the version it started on. Versions are never changed: a
rollback publishes an old version's source again, as a new number. Callers
commit (or roll back) the session.
"""

from __future__ import annotations

import difflib
import hashlib

from flask import current_app, has_app_context
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.directory.pins import PinPolicy
from app.flows.loader import FlowFileError, Problem, load_flow_text
from app.flows.model import Flow
from app.models import FlowVersion


class PublishError(Exception):
    """The source fails `flask forms check`: nothing was published."""

    def __init__(self, name: str, problems: list[Problem]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__("\n  ".join([f"{name} not published, {count}:", *map(str, problems)]))


def checksum(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def check(name: str, source: str, file: str | None = None, pins: PinPolicy | None = None) -> Flow:
    """The flow the source makes, checked as `flask forms check` checks a file
    (with the app's PIN policy when there is an app); raises PublishError."""
    if pins is None and has_app_context():
        pins = PinPolicy.from_config(current_app.config)
    try:
        return load_flow_text(source, name, file, pins)
    except FlowFileError as exc:
        raise PublishError(name, exc.problems) from None


def publish(
    session: Session,
    name: str,
    source: str,
    *,
    by: str,
    note: str = "",
    origin: str = "file",
    file: str | None = None,
    pins: PinPolicy | None = None,
) -> FlowVersion | None:
    """Publish source as name's next version, once it passes the check
    (PublishError otherwise, and nothing is written). None when it is the
    published version's source already. `file` names it in problems."""
    check(name, source, file, pins)
    return _insert(session, name, source, by=by, note=note, origin=origin, unless_same=True)


def _insert(
    session: Session,
    name: str,
    source: str,
    *,
    by: str,
    note: str,
    origin: str,
    unless_same: bool,
) -> FlowVersion | None:
    """Insert source as name's next number; None if unless_same and it is the
    published source already."""
    digest = checksum(source)
    for attempt in range(2):
        current = published(session, name)
        if unless_same and current is not None and current.checksum == digest:
            return None
        row = FlowVersion(
            flow=name,
            number=(current.number if current else 0) + 1,
            source=source,
            checksum=digest,
            created_by=by[:100],
            note=note[:500],
            origin=origin,
        )
        # A savepoint: losing the race to another publisher of the same flow
        # undoes only this insert, and the retry reads the winner's number.
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            if attempt:
                raise
            continue
        return row
    raise AssertionError("unreachable")  # pragma: no cover


def published(session: Session, name: str) -> FlowVersion | None:
    """The version new calls of name start on, or None."""
    return session.scalars(
        select(FlowVersion)
        .where(FlowVersion.flow == name)
        .order_by(FlowVersion.number.desc())
        .limit(1)
    ).first()


def version(session: Session, name: str, number: int) -> FlowVersion | None:
    return session.scalars(
        select(FlowVersion).where(FlowVersion.flow == name, FlowVersion.number == number)
    ).first()


def history(session: Session, name: str) -> list[FlowVersion]:
    """name's versions, newest first."""
    return list(
        session.scalars(
            select(FlowVersion).where(FlowVersion.flow == name).order_by(FlowVersion.number.desc())
        )
    )


def flow_names(session: Session) -> list[str]:
    """Every flow with a version, by name."""
    return list(session.scalars(select(FlowVersion.flow).distinct().order_by(FlowVersion.flow)))


def published_numbers(session: Session) -> dict[str, int]:
    """Each flow's published version number, in one query."""
    rows = session.execute(
        select(FlowVersion.flow, func.max(FlowVersion.number)).group_by(FlowVersion.flow)
    )
    return {flow: number for flow, number in rows}


def rollback(session: Session, name: str, number: int, *, by: str, note: str = "") -> FlowVersion:
    """Publish version number's source again, as a new version (LookupError if
    there is no such version). Rolling back to the published version's own
    source still makes a new version, so the history shows the rollback."""
    old = version(session, name, number)
    if old is None:
        raise LookupError(f"{name} has no version {number}")
    note = note or f"rollback to {number}"
    row = _insert(session, name, old.source, by=by, note=note, origin="rollback", unless_same=False)
    assert row is not None  # unless_same=False always inserts
    return row


def diff(a: FlowVersion | str, b: FlowVersion | str, a_label: str = "", b_label: str = "") -> str:
    """A unified diff from a to b, each a version (labelled "name vN") or a source."""

    def text_and_label(side: FlowVersion | str, label: str, default: str) -> tuple[str, str]:
        if isinstance(side, FlowVersion):
            return side.source, label or f"{side.flow} v{side.number}"
        return side, label or default

    a_text, a_name = text_and_label(a, a_label, "a")
    b_text, b_name = text_and_label(b, b_label, "b")
    lines = difflib.unified_diff(
        a_text.splitlines(), b_text.splitlines(), a_name, b_name, lineterm=""
    )
    return "".join(f"{line}\n" for line in lines)


def generation(session: Session) -> int:
    """A number that grows with every publish (the newest version's id): one
    cheap query tells a worker whether anything was published since it looked."""
    return session.scalar(select(func.max(FlowVersion.id))) or 0
