"""The editor's drafts service, on SQLite and PostgreSQL: drafts kept per admin,
published through the versions path, refused when broken or when the base moved."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.admin import drafts
from app.flows import versions
from app.models import AdminAction, FlowDraft, FlowVersion, User
from tests.helpers.settings import PROJECT_ROOT

SOURCE = (PROJECT_ROOT / "survo_forms" / "verify_caller.yaml").read_text(encoding="utf-8")
EDITED = SOURCE.replace("Thank you, {name}.", "Welcome back, {name}.")


@pytest.fixture
def ruth(people: dict[str, User]) -> User:
    return people["ruth"]


@pytest.fixture
def ada(session: Session, people: dict[str, User]) -> User:
    """A second admin."""
    people["ada"].is_admin = True
    session.commit()
    return people["ada"]


def published_number(session: Session, name: str) -> int | None:
    session.expire_all()
    row = versions.published(session, name)
    return row.number if row else None


def test_a_draft_is_kept_per_admin_and_found_again(
    session: Session, ruth: User, ada: User, flows_dir: Path
) -> None:
    base = published_number(session, "verify_caller")
    assert base == 1  # the app published the shipped files

    drafts.save_draft(session, ruth, "verify_caller", EDITED, base)
    session.commit()
    drafts.save_draft(session, ruth, "verify_caller", EDITED + "# again\n", base)
    session.commit()

    rows = session.scalars(select(FlowDraft)).all()
    assert [(r.flow, r.user_id, r.base_version) for r in rows] == [("verify_caller", ruth.id, 1)]
    assert rows[0].source.endswith("# again\n")

    mine = drafts.editing(session, flows_dir, ruth, "verify_caller")
    assert (mine.source, mine.base, mine.draft is not None) == (EDITED + "# again\n", 1, True)
    theirs = drafts.editing(session, flows_dir, ada, "verify_caller")
    assert (theirs.source, theirs.base, theirs.draft) == (SOURCE, 1, None)
    assert not theirs.is_new

    assert drafts.discard_draft(session, ruth, "verify_caller")
    session.commit()
    assert session.scalars(select(FlowDraft)).all() == []
    assert not drafts.discard_draft(session, ruth, "verify_caller")


def test_publishing_a_draft_makes_the_next_version_and_drops_the_draft(
    session: Session, ruth: User
) -> None:
    drafts.save_draft(session, ruth, "verify_caller", EDITED, 1)
    session.commit()

    row = drafts.publish_draft(session, ruth, "verify_caller", EDITED, 1, note=" new greeting ")
    session.commit()

    assert row is not None
    stored = session.scalars(
        select(FlowVersion).where(FlowVersion.flow == "verify_caller", FlowVersion.number == 2)
    ).one()
    assert (stored.source, stored.created_by, stored.origin, stored.note) == (
        EDITED,
        "admin:1900",
        "editor",
        "new greeting",
    )
    assert stored.checksum == versions.checksum(EDITED)
    assert session.scalars(select(FlowDraft)).all() == []
    action = session.scalars(select(AdminAction)).one()
    assert (action.action, action.target_kind, action.target_number, action.user_id) == (
        "publish",
        "flow",
        "verify_caller",
        ruth.id,
    )
    assert action.detail == "v2 (was v1): new greeting"


def test_the_published_source_again_publishes_nothing(session: Session, ruth: User) -> None:
    assert drafts.publish_draft(session, ruth, "verify_caller", SOURCE, 1) is None
    session.commit()
    assert published_number(session, "verify_caller") == 1
    assert session.scalars(select(AdminAction)).all() == []


def test_a_draft_that_fails_the_check_is_not_published(session: Session, ruth: User) -> None:
    broken = SOURCE.replace("pin: pin", "pin: code", 1)
    with pytest.raises(drafts.NotPublished) as info:
        drafts.publish_draft(session, ruth, "verify_caller", broken, 1)
    session.rollback()
    assert [(p.field, p.message) for p in info.value.problems] == [
        ("verify.pin", "no question named code")
    ]
    assert str(info.value) == "verify_caller was not published: it has 1 problem."
    assert published_number(session, "verify_caller") == 1


def test_a_second_admin_is_told_the_base_changed_and_shown_both_edits(
    session: Session, ruth: User, ada: User
) -> None:
    drafts.save_draft(session, ruth, "verify_caller", EDITED, 1)
    theirs = SOURCE.replace("Sorry, we could not verify you.", "Goodbye.")
    drafts.save_draft(session, ada, "verify_caller", theirs, 1)
    session.commit()
    assert drafts.publish_draft(session, ada, "verify_caller", theirs, 1) is not None
    session.commit()

    with pytest.raises(drafts.BaseChanged) as info:
        drafts.publish_draft(session, ruth, "verify_caller", EDITED, 1)
    session.rollback()
    changed = info.value
    assert (changed.base and changed.base.number, changed.current.number) == (1, 2)
    assert str(changed) == (
        "verify_caller was published as version 2 since you started from version 1: "
        "see what changed, then publish again."
    )
    added = {
        kind: [line.text for line in lines if line.kind == "add"]
        for kind, lines in (
            ("theirs", changed.theirs),
            ("mine", changed.mine),
            ("result", changed.result),
        )
    }
    assert any("Goodbye." in text for text in added["theirs"])
    assert any("Welcome back" in text for text in added["mine"])
    # Publishing hers now would take Ada's line out again: shown, not done.
    removed = [line.text for line in changed.result if line.kind == "del"]
    assert any("Goodbye." in text for text in removed)
    assert published_number(session, "verify_caller") == 2
    assert drafts.draft_of(session, ruth, "verify_caller") is not None  # her draft is kept

    # Seen: she publishes over version 2, knowingly.
    row = drafts.publish_draft(session, ruth, "verify_caller", EDITED, 2)
    session.commit()
    assert row is not None and row.number == 3


def test_a_new_flow_starts_from_a_text_that_passes_the_check(
    session: Session, ruth: User, flows_dir: Path
) -> None:
    name = drafts.new_flow_name(session, flows_dir, " night_line ")
    assert name == "night_line"
    opened = drafts.editing(session, flows_dir, ruth, name)
    assert (opened.source, opened.base, opened.is_new) == (drafts.STARTER, None, True)

    row = drafts.publish_draft(session, ruth, name, drafts.STARTER, None, note="first")
    session.commit()
    assert row is not None and (row.flow, row.number) == ("night_line", 1)
    assert session.scalars(select(AdminAction)).one().detail == "v1 (a new flow): first"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("verify_caller", "There is a flow called verify_caller already."),
        ("status", "'status' is a route of Glue's: choose another name."),
        ("new", "'new' is a route of Glue's: choose another name."),
        ("../x", "A flow's name is 1 to 64 letters, digits, _ or -."),
        ("", "A flow's name is 1 to 64 letters, digits, _ or -."),
        ("x" * 65, "A flow's name is 1 to 64 letters, digits, _ or -."),
    ],
)
def test_a_new_flow_needs_a_free_name(
    session: Session, flows_dir: Path, name: str, why: str
) -> None:
    with pytest.raises(drafts.DraftError) as info:
        drafts.new_flow_name(session, flows_dir, name)
    assert str(info.value) == why


def test_a_new_flow_published_meanwhile_is_a_changed_base(session: Session, ruth: User) -> None:
    versions.publish(session, "night_line", drafts.STARTER, by="cli")
    session.commit()
    with pytest.raises(drafts.BaseChanged) as info:
        drafts.publish_draft(session, ruth, "night_line", drafts.STARTER + "# mine\n", None)
    session.rollback()
    assert info.value.base is None and info.value.current.number == 1
    assert "no version" in str(info.value)


def test_a_text_too_long_is_refused(session: Session, ruth: User) -> None:
    with pytest.raises(drafts.DraftError):
        drafts.save_draft(session, ruth, "verify_caller", "#" * (drafts.MAX_SOURCE + 1), 1)


def test_the_flow_file_is_written_whole(tmp_path: Path) -> None:
    path = drafts.write_flow_file(tmp_path, "night_line", drafts.STARTER)
    assert path == tmp_path / "night_line.yaml"
    assert path.read_text(encoding="utf-8") == drafts.STARTER
    assert sorted(p.name for p in tmp_path.iterdir()) == ["night_line.yaml"]
    with pytest.raises(OSError):
        drafts.write_flow_file(tmp_path / "missing", "night_line", drafts.STARTER)


def test_a_publish_that_loses_the_race_is_undone_not_numbered_after(
    app: Flask, session: Session, ruth: User, database_url: str
) -> None:
    """Another publish inserts v2 and commits while ours waits on the same number:
    ours must not become v3 (PostgreSQL; SQLite's writers take turns, so no race)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite writers take turns: the race cannot happen")
    sessions = app.extensions["glue.sessionmaker"]
    theirs = SOURCE.replace("Sorry, we could not verify you.", "Goodbye.")
    other = sessions()
    assert (
        versions.publish(other, "verify_caller", theirs, by="cli") is not None
    )  # v2, not committed

    outcome: list[object] = []

    def ours() -> None:
        with sessions() as mine:
            admin = mine.get(User, ruth.id)
            assert admin is not None
            try:
                drafts.publish_draft(mine, admin, "verify_caller", EDITED, 1)
                mine.commit()
                outcome.append("published")
            except drafts.BaseChanged as exc:
                outcome.append((exc.current.number, exc.current.source, str(exc)))
                mine.rollback()

    racer = threading.Thread(target=ours)
    racer.start()
    racer.join(1)  # it read v1, and waits on the number 2 the other holds
    assert racer.is_alive() and not outcome
    other.commit()
    other.close()
    racer.join(10)
    assert outcome == [
        (
            2,
            theirs,
            "verify_caller was published as version 2 since you started from version 1: "
            "see what changed, then publish again.",
        )
    ]
    assert published_number(session, "verify_caller") == 2
