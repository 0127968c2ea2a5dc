"""Flow versions: publishing, rollback, diff, the migration, pinned calls, the
CLI, and how a process learns of a publish made elsewhere."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import alembic_config, make_engine
from app.flows import versions
from app.flows.registry import current_registry, get_flow
from app.models import FlowVersion
from tests.helpers.database import POSTGRES_URL
from tests.helpers.directory import add_group, add_user
from tests.helpers.flows import shipped_copy
from tests.helpers.ifbyphone import answers, follow, message, send, the_call
from tests.helpers.services import require
from tests.helpers.settings import PROJECT_ROOT

THANKS = 'say: "Thank you, {name}."'
WELCOME = 'say: "Welcome, {name}."'


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    """A copy of the shipped flows the test may edit."""
    return shipped_copy(tmp_path / "forms")


def source(name: str = "verify_caller") -> str:
    return (PROJECT_ROOT / "survo_forms" / f"{name}.yaml").read_text()


def rows(session: Session, flow: str = "verify_caller") -> list[tuple[Any, ...]]:
    session.commit()
    return [
        (r.number, r.created_by, r.origin, r.note, r.checksum)
        for r in session.scalars(
            select(FlowVersion).where(FlowVersion.flow == flow).order_by(FlowVersion.number)
        )
    ]


# The service


def test_publish_unchanged_broken_and_rollback(app: Flask, session: Session) -> None:
    v1 = source()
    # The test's app published the files when it started (auto-publish).
    assert [r[:3] for r in rows(session)] == [(1, "file", "file")]

    with app.app_context():
        assert versions.publish(session, "verify_caller", v1, by="cli") is None
        v2 = v1.replace(THANKS, WELCOME)
        row = versions.publish(session, "verify_caller", v2, by="cli", note="warmer")
        assert row is not None and row.number == 2
        broken = v2.replace("tries: 3", "tries: 30")
        with pytest.raises(versions.PublishError) as info:
            versions.publish(session, "verify_caller", broken, by="cli")
        assert [p.field for p in info.value.problems] == ["verify.tries"]
        session.commit()
        back = versions.rollback(session, "verify_caller", 1, by="cli")
        session.commit()
        with pytest.raises(LookupError):
            versions.rollback(session, "verify_caller", 9, by="cli")

    assert back.number == 3
    assert rows(session) == [
        (1, "file", "file", "", versions.checksum(v1)),
        (2, "cli", "file", "warmer", versions.checksum(v2)),
        (3, "cli", "rollback", "rollback to 1", versions.checksum(v1)),
    ]
    published = versions.published(session, "verify_caller")
    assert published is not None and published.source == v1
    assert [r.number for r in versions.history(session, "verify_caller")] == [3, 2, 1]
    assert versions.flow_names(session) == ["group_line", "verify_caller"]
    one, two = (
        versions.version(session, "verify_caller", 1),
        versions.version(session, "verify_caller", 2),
    )
    assert one is not None and two is not None
    lines = versions.diff(one, two).splitlines()
    assert lines[:2] == ["--- verify_caller v1", "+++ verify_caller v2"]
    assert f"-    - {THANKS}" in lines and f"+    - {WELCOME}" in lines
    assert versions.diff(one, one) == ""


def test_a_pin_question_the_policy_rejects_is_not_published(app: Flask, session: Session) -> None:
    short = source().replace("max_digits: 8", "max_digits: 6")
    with app.app_context(), pytest.raises(versions.PublishError) as info:
        versions.publish(session, "verify_caller", short, by="cli")
    assert "GLUE_PIN_MAX_LENGTH" in info.value.problems[0].message
    assert len(rows(session)) == 1


def test_concurrent_publishes_of_one_flow_get_distinct_numbers(
    app: Flask, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's concurrency")
    engine = make_engine(database_url)
    texts = [source().replace(THANKS, f'say: "Hello {n}, {{name}}."') for n in range(8)]
    made: list[int | None] = []
    barrier = threading.Barrier(len(texts))

    def publish(text_: str) -> None:
        with Session(engine) as own, app.app_context():
            barrier.wait()
            try:
                row = versions.publish(own, "verify_caller", text_, by="cli")
                own.commit()
            except IntegrityError:  # lost the race twice: the caller says so
                made.append(None)
                return
            made.append(row.number if row else None)

    threads = [threading.Thread(target=publish, args=(t,)) for t in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with Session(engine) as own:
        numbers = own.scalars(
            select(FlowVersion.number).where(FlowVersion.flow == "verify_caller")
        ).all()
    engine.dispose()
    # Each publish either made its own number or lost its retry too (raised).
    assert sorted(numbers) == list(range(1, len(numbers) + 1))
    assert sorted(n for n in made if n is not None) == sorted(numbers)[1:]
    assert len(made) == len(texts) and len(numbers) >= 3


# The migration


def upgrade_with_flows(url: str, flows: Path) -> list[tuple[Any, ...]]:
    from alembic import command

    engine = make_engine(url)
    config = alembic_config(engine)
    config.attributes["flows_dir"] = str(flows)
    command.upgrade(config, "head")
    with engine.connect() as connection:
        found = connection.execute(
            text(
                "SELECT flow, number, created_by, origin, checksum FROM flow_versions ORDER BY flow"
            )
        ).all()
    engine.dispose()
    return [tuple(row) for row in found]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_makes_the_valid_files_version_1(tmp_path: Path, backend: str) -> None:
    flows = shipped_copy(tmp_path / "flows")
    (flows / "broken.yaml").write_text(source().replace("tries: 3", "tries: 30"))
    if backend == "sqlite":
        found = upgrade_with_flows(f"sqlite:///{tmp_path}/fresh.db", flows)
    else:
        schema = f"glue_mig_{int(time.time() * 1000) % 10**9}"
        admin = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        try:
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        except Exception as exc:
            require("postgres", False, f"unreachable: {exc}")
            raise
        try:
            found = upgrade_with_flows(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", flows)
        finally:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    assert found == [
        ("group_line", 1, "migration", "migration", versions.checksum(source("group_line"))),
        ("verify_caller", 1, "migration", "migration", versions.checksum(source())),
    ]


# Pinning


def wrong_then_right(client: FlaskClient, call: str) -> str | None:
    """A caller who keys a wrong PIN, is asked again, then keys the right one:
    what they hear at the end."""
    retry = send(client, answers(call, "1001", "1111"))
    assert message(retry) == "That did not match. Please try again."
    follow(client, call, retry)
    return message(send(client, answers(call, "1001", "2468")))


def publish_welcome(app: Flask, session: Session) -> None:
    with app.app_context():
        versions.publish(session, "verify_caller", source().replace(THANKS, WELCOME), by="cli")
        session.commit()
        current_registry().poll(force=True)


def test_a_call_keeps_its_version_after_a_publish(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    first = send(client, answers("s-pin1", "1001", "1111"))
    assert message(first) == "That did not match. Please try again."
    assert the_call(session, "s-pin1").flow_version == 1

    publish_welcome(app, session)

    follow(client, "s-pin1", first)
    assert message(send(client, answers("s-pin1", "1001", "2468"))) == "Thank you, Ada Lovelace."
    assert the_call(session, "s-pin1").flow_version == 1
    assert message(send(client, answers("s-pin2", "1001", "2468"))) == "Welcome, Ada Lovelace."
    assert the_call(session, "s-pin2").flow_version == 2


def test_a_worker_that_never_read_the_calls_version_reads_it_within_the_turn(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    """The version is read while the turn holds SQLite's write lock: a read
    that waited for that lock would time out and serve the newer version."""
    add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    first = send(client, answers("s-cold", "1001", "1111"))
    publish_welcome(app, session)
    with app.app_context():
        current_registry()._versions.clear()  # another worker's: it has read none
    follow(client, "s-cold", first)
    assert message(send(client, answers("s-cold", "1001", "2468"))) == "Thank you, Ada Lovelace."
    assert the_call(session, "s-cold").flow_version == 1


def test_a_call_keeps_its_version_after_a_rollback(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    publish_welcome(app, session)
    first = send(client, answers("s-rb1", "1001", "1111"))
    assert the_call(session, "s-rb1").flow_version == 2

    with app.app_context():
        versions.rollback(session, "verify_caller", 1, by="cli")
        session.commit()
        current_registry().poll(force=True)

    follow(client, "s-rb1", first)
    assert message(send(client, answers("s-rb1", "1001", "2468"))) == "Welcome, Ada Lovelace."
    assert message(send(client, answers("s-rb2", "1001", "2468"))) == "Thank you, Ada Lovelace."
    assert the_call(session, "s-rb2").flow_version == 3


# The CLI


def test_cli_publish_history_diff_rollback_export(
    app: Flask, runner: FlaskCliRunner, flows_dir: Path, session: Session, tmp_path: Path
) -> None:
    result = runner.invoke(args=["forms", "publish"])
    assert (result.exit_code, result.output) == (
        0,
        "group_line: unchanged (v1)\nverify_caller: unchanged (v1)\n",
    )
    path = flows_dir / "verify_caller.yaml"
    path.write_text(source().replace(THANKS, WELCOME))
    result = runner.invoke(args=["forms", "publish", "--note", "warmer", str(path)])
    assert (result.exit_code, result.output) == (0, "verify_caller: published v2\n")
    with app.app_context():
        assert get_flow("verify_caller").version == 2  # type: ignore[union-attr]

    (flows_dir / "group_line.yaml").write_text("bad: [\n")
    result = runner.invoke(args=["forms", "publish"])
    assert result.exit_code == 1
    assert "group_line.yaml:2: YAML syntax" in result.output
    assert "group_line: not published (1 problem(s))\n" in result.output
    assert result.output.endswith("verify_caller: unchanged (v2)\n")
    assert [r[0] for r in rows(session, "group_line")] == [1]

    result = runner.invoke(args=["forms", "diff", "verify_caller"])
    assert result.exit_code == 0
    assert result.output.startswith("--- verify_caller v1\n+++ verify_caller v2\n")
    assert f"+    - {WELCOME}\n" in result.output

    result = runner.invoke(args=["forms", "rollback", "verify_caller", "1"])
    assert (result.exit_code, result.output) == (
        0,
        "verify_caller: published v3 (the source of v1)\n",
    )
    result = runner.invoke(args=["forms", "rollback", "verify_caller", "7"])
    assert result.exit_code == 1
    assert "verify_caller has no version 7 (versions: v1, v2, v3)" in result.output

    result = runner.invoke(args=["forms", "history", "verify_caller"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == ["v3", "v2", "v1"]
    assert lines[0].endswith("cli  rollback  rollback to 1  (published)")
    assert lines[1].endswith("cli  file  warmer")
    assert runner.invoke(args=["forms", "history", "nope"]).exit_code == 1

    result = runner.invoke(args=["forms", "diff", "verify_caller", "3", str(path)])
    assert f"+    - {WELCOME}\n" in result.output
    assert runner.invoke(args=["forms", "diff", "verify_caller", "1", "3"]).output == (
        "no differences\n"
    )

    out = tmp_path / "exported"
    result = runner.invoke(args=["forms", "export", str(out)])
    assert result.exit_code == 0
    assert (out / "verify_caller.yaml").read_text() == source()
    assert (out / "group_line.yaml").read_text() == source("group_line")
    with app.app_context():
        assert get_flow("verify_caller").version == 3  # type: ignore[union-attr]


# How a process learns of a publish


def test_registry_polls_for_publishes_and_costs_no_query_per_request(
    app_config: dict[str, object], database_url: str, tmp_path: Path
) -> None:
    from app import create_app

    app = create_app({**app_config, "FLOWS_POLL_SECONDS": 0.5}, instance_path=str(tmp_path / "i"))
    engine = app.extensions["glue.engine"]
    with app.app_context():
        assert get_flow("verify_caller").version == 1  # type: ignore[union-attr]
        time.sleep(0.6)
        get_flow("verify_caller")  # the poll that was due

        sent: list[str] = []

        def note(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
            sent.append(statement)

        event.listen(engine, "before_cursor_execute", note)
        try:
            for _ in range(100):
                get_flow("verify_caller")
        finally:
            event.remove(engine, "before_cursor_execute", note)
        assert sent == []

        # Another process publishes (its own engine, not this registry).
        other = make_engine(database_url)
        with Session(other) as own:
            versions.publish(own, "verify_caller", source().replace(THANKS, WELCOME), by="cli")
            own.commit()
        other.dispose()
        started = time.monotonic()
        while get_flow("verify_caller").version != 2:  # type: ignore[union-attr]
            assert time.monotonic() - started < 0.5 + 0.3
            time.sleep(0.02)
    engine.dispose()


def test_a_broken_edit_is_never_published(
    app: Flask, client: FlaskClient, flows_dir: Path, session: Session
) -> None:
    add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    path = flows_dir / "verify_caller.yaml"
    path.write_text(
        source().replace(THANKS, 'say: "Broken {name}."').replace("tries: 3", "tries: 0")
    )

    assert message(send(client, answers("s-br", "1001", "2468"))) == "Thank you, Ada Lovelace."
    assert [r[0] for r in rows(session)] == [1]
    with app.app_context():
        assert [p.field for p in current_registry().problems["verify_caller"]] == ["verify.tries"]
    session.commit()
    assert session.scalar(select(func.count()).select_from(FlowVersion)) == 2


def test_the_release_step_publishes_on_a_fresh_database(tmp_path: Path) -> None:
    """The Procfile's release step, as a deploy runs it, on a fresh database."""
    import os
    import subprocess
    import sys

    release = next(
        line.split(":", 1)[1].strip()
        for line in (PROJECT_ROOT / "Procfile").read_text().splitlines()
        if line.startswith("release:")
    )
    assert release == "flask db upgrade && flask forms publish"
    flows = shipped_copy(tmp_path / "flows")
    (flows / "verify_caller.yaml").write_text(source().replace(THANKS, WELCOME))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "GLUE_DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db",
        "GLUE_FLOWS_DIR": str(flows),
        "GLUE_FLOWS_AUTO_PUBLISH": "false",
    }
    done = subprocess.run(
        release, shell=True, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2:] == [
        "group_line: unchanged (v1)",
        "verify_caller: unchanged (v1)",
    ]
    engine = make_engine(f"sqlite:///{tmp_path}/fresh.db")
    with Session(engine) as own:
        published = versions.published(own, "verify_caller")
        assert published is not None and WELCOME in published.source
        assert (published.number, published.created_by) == (1, "migration")

    # The next release, after an edit, publishes it.
    (flows / "verify_caller.yaml").write_text(source())
    done = subprocess.run(
        release, shell=True, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "verify_caller: published v2"
    with Session(engine) as own:
        published = versions.published(own, "verify_caller")
        assert published is not None and published.source == source()
        assert (published.number, published.created_by) == (2, "cli")
    engine.dispose()


def test_a_file_edited_mid_call_is_published_by_the_next_request_not_within_a_turn(
    app: Flask,
    client: FlaskClient,
    session: Session,
    flows_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A turn posted to another flow's URL reads its call's own flow while it
    holds SQLite's write lock: publishing that flow's edited file then, on
    another connection, would wait for the lock and fail."""
    add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    first = send(client, answers("s-edit", "1001", "1111"))
    retry = follow(client, "s-edit", first)
    (flows_dir / "verify_caller.yaml").write_text(source().replace(THANKS, WELCOME))

    # A SurVo shared by both flows posts the retry to group_line's URL.
    fields = answers("s-edit", "1001", "2468", p_t=retry.findtext(".//p_t") or "")
    assert message(send(client, fields, flow="group_line")) == "Thank you, Ada Lovelace."
    assert "not published" not in caplog.text
    assert [r[0] for r in rows(session)] == [1]

    assert message(send(client, answers("s-next", "1001", "2468"))) == "Welcome, Ada Lovelace."
    assert [r[0] for r in rows(session)] == [1, 2]


def test_a_worker_that_never_learned_a_flows_version_learns_it_within_a_turn(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    """A shared SurVo posts a group_line call to verify_caller's URL, on a
    worker that polled before group_line was published (another host published
    it at start-up): the turn reads group_line, and must find its version."""
    ada = add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    add_group(session, "500", "Night shift", "5050", "+13125550500", members=(ada,))
    welcome = send(client, {"session_id": "s-learn", "group": "500", "pin": "5050"}, "group_line")
    with app.app_context():
        registry = current_registry()
        for known in (registry._published, registry._entries):
            known.pop("group_line")
        registry._versions.clear()
        registry._generation = -1  # as polled before that publish
    ring = follow(client, "s-learn", welcome)
    assert ring.findtext("app") == "findme"
    assert ring.findtext("parameters/phone_list") == "3125550500"
