"""The flow editor's drafts: each admin's unpublished edit of a flow, and publishing it.

A draft remembers the published version it started from (its base). Publishing
goes through `versions.publish`, the path `flask forms publish` and the file
watcher take, so a draft that fails the check is refused. It is also refused
when the flow was published by someone else since the base: the admin is shown
what changed and publishes again knowingly, never over it unseen. Like
service.py, nothing here commits: the views do.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.admin.service import DiffLine, diff_lines, record_action
from app.db import begin_write
from app.flows import versions
from app.flows.loader import FLOW_NAME, RESERVED_FLOW_NAMES, Problem
from app.models import FlowDraft, FlowVersion, User, utcnow

# /admin/flows/new is the New flow page, so no flow page could be at that address.
ADMIN_WORDS = frozenset({"new"})
# Longest source accepted from the browser: far more than any flow, far less
# than a request may carry.
MAX_SOURCE = 60_000

# A new flow's first text: it passes the check as it stands, so the admin edits
# from a working flow (survo_forms/verify_caller.yaml explains every key).
STARTER = """\
description: A new flow. Say what it is for.
questions:
  - {name: account, type: digits, min_digits: 1, max_digits: 10}
  - {name: pin, type: digits, min_digits: 4, max_digits: 8, secret: true}
verify: {by: account, claim: account, pin: pin, tries: 3}
on:
  verified: [{say: "Thank you, {name}."}, {transfer: verified}]
  failed: [{say: "Sorry, we could not verify you."}, hangup]
"""


class DraftError(ValueError):
    """A draft action that cannot be done; the message is one sentence for the page."""


class NotPublished(DraftError):
    """The draft fails the check: nothing was published."""

    def __init__(self, name: str, problems: list[Problem]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"{name} was not published: it has {count}.")


@dataclass(eq=False)
class BaseChanged(DraftError):
    """The flow was published since the draft's base: what each side changed."""

    name: str
    base: FlowVersion | None  # None: the draft started the flow
    current: FlowVersion
    source: str  # the draft
    theirs: list[DiffLine]  # base -> current: what was published meanwhile
    mine: list[DiffLine]  # base -> draft: the admin's edit
    result: list[DiffLine]  # current -> draft: what publishing the draft now changes

    def __str__(self) -> str:
        was = f"version {self.base.number}" if self.base else "no version"
        return (
            f"{self.name} was published as version {self.current.number} "
            f"since you started from {was}: see what changed, then publish again."
        )


@dataclass(frozen=True)
class Editing:
    """What the editor opens for an admin: the draft if any, else the published source."""

    name: str
    source: str
    base: int | None  # the published number the text started from
    published: FlowVersion | None
    draft: FlowDraft | None
    has_file: bool

    @property
    def is_new(self) -> bool:
        return self.published is None and not self.has_file


def new_flow_name(session: Session, directory: Path, name: str) -> str:
    """name, if a new flow may take it; raises DraftError saying why not."""
    name = name.strip()
    if not FLOW_NAME.fullmatch(name):
        raise DraftError("A flow's name is 1 to 64 letters, digits, _ or -.")
    if name in RESERVED_FLOW_NAMES or name in ADMIN_WORDS:
        raise DraftError(f"{name!r} is a route of Glue's: choose another name.")
    if versions.published(session, name) is not None or (directory / f"{name}.yaml").exists():
        raise DraftError(f"There is a flow called {name} already.")
    return name


def editing(session: Session, directory: Path, admin: User, name: str) -> Editing:
    """The admin's draft of name, else its published source, else its file, else STARTER."""
    draft = draft_of(session, admin, name)
    published = versions.published(session, name)
    path = directory / f"{name}.yaml"
    has_file = path.is_file()
    if draft is not None:
        return Editing(name, draft.source, draft.base_version, published, draft, has_file)
    base = published.number if published else None
    if published is not None:
        return Editing(name, published.source, base, published, None, has_file)
    source = STARTER
    if has_file:
        with contextlib.suppress(OSError, UnicodeDecodeError):  # unreadable: start afresh
            source = path.read_text(encoding="utf-8")
    return Editing(name, source, None, None, None, has_file)


def draft_of(session: Session, admin: User, name: str) -> FlowDraft | None:
    return session.scalar(
        select(FlowDraft).where(FlowDraft.flow == name, FlowDraft.user_id == admin.id)
    )


def save_draft(
    session: Session, admin: User, name: str, source: str, base: int | None
) -> FlowDraft:
    """Keep source as the admin's draft of name, started from version base."""
    _check_size(source)
    begin_write(session)
    draft = draft_of(session, admin, name)
    if draft is None:
        draft = FlowDraft(flow=name, user_id=admin.id, source=source, base_version=base)
        session.add(draft)
    draft.source = source
    draft.base_version = base
    draft.updated_at = utcnow()
    session.flush()
    return draft


def discard_draft(session: Session, admin: User, name: str) -> bool:
    """Delete the admin's draft of name; False if there was none."""
    begin_write(session)
    result = session.execute(
        delete(FlowDraft).where(FlowDraft.flow == name, FlowDraft.user_id == admin.id)
    )
    return bool(getattr(result, "rowcount", 0))


def publish_draft(
    session: Session, admin: User, name: str, source: str, base: int | None, note: str = ""
) -> FlowVersion | None:
    """Publish source as name's next version and drop the admin's draft of it.

    None when it is the published source already. Raises NotPublished when it
    fails the check, BaseChanged when the flow was published since `base`
    (the session must then be rolled back: a publish that lost a race to
    another one is undone, not numbered after it).
    """
    _check_size(source)
    begin_write(session)  # reads the published number, then writes the next
    current = versions.published(session, name)
    if current is None and base is not None:
        raise DraftError(f"{name} has no version {base} any more: start again from the file.")
    if current is not None and current.number != base:
        raise _base_changed(session, name, base, current, source)
    try:
        row = versions.publish(
            session,
            name,
            source,
            by=f"admin:{admin.account_number}",
            note=note.strip(),
            origin="editor",
        )
    except versions.PublishError as exc:
        raise NotPublished(name, exc.problems) from None
    if row is not None and row.number != (base or 0) + 1:
        # Another publish of the same flow committed between our read and our
        # insert (versions numbered ours after it).
        winner = versions.version(session, name, row.number - 1)
        assert winner is not None
        raise _base_changed(session, name, base, winner, source)
    session.execute(delete(FlowDraft).where(FlowDraft.flow == name, FlowDraft.user_id == admin.id))
    if row is not None:
        was = f"was v{current.number}" if current else "a new flow"
        detail = f"v{row.number} ({was})" + (f": {row.note}" if row.note else "")
        record_action(session, admin, "publish", "flow", name, detail)
    return row


def draft_diff(published: FlowVersion | None, source: str) -> list[DiffLine]:
    """What publishing source would change in the published version."""
    if published is None:
        return diff_lines(versions.diff("", source, a_label="nothing", b_label="your draft"))
    return diff_lines(versions.diff(published, source, b_label="your draft"))


def write_flow_file(directory: Path, name: str, source: str) -> Path:
    """Write source as the flow's file, whole or not at all (OSError if it cannot be)."""
    path = directory / f"{name}.yaml"
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(source)
        os.replace(temporary, path)
    except OSError:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _base_changed(
    session: Session, name: str, base: int | None, current: FlowVersion, source: str
) -> BaseChanged:
    started = versions.version(session, name, base) if base is not None else None
    before: FlowVersion | str = started if started is not None else ""
    return BaseChanged(
        name=name,
        base=started,
        current=current,
        source=source,
        theirs=diff_lines(versions.diff(before, current, a_label="" if started else "nothing")),
        mine=diff_lines(
            versions.diff(
                before, source, a_label="" if started else "nothing", b_label="your draft"
            )
        ),
        result=diff_lines(versions.diff(current, source, b_label="your draft")),
    )


def _check_size(source: str) -> None:
    if len(source) > MAX_SOURCE:
        raise DraftError(f"A flow's text may have at most {MAX_SOURCE} characters.")
