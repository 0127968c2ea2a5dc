"""The flow registry: start-up checks, hot reload, and untrusted names."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from app.flows.loader import FlowFileError
from app.flows.registry import EXTENSION, FlowRegistry, get_flow
from tests.helpers.flows import shipped_copy
from tests.helpers.settings import TEST_SECRETS

MakeApp = Callable[..., Flask]


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    """A copy of the shipped flows that tests may edit."""
    return shipped_copy(tmp_path / "flows")


@pytest.fixture
def make_app(tmp_path: Path, flows_dir: Path, sqlite_template: Path) -> Iterator[MakeApp]:
    apps: list[Flask] = []
    shutil.copy(sqlite_template, tmp_path / "t.db")

    def make(strict: bool = True, reload_seconds: float = 0) -> Flask:
        config = {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path}/t.db",
            "FLOWS_DIR": str(flows_dir),
            "FLOWS_RELOAD_SECONDS": reload_seconds,
            "FLOWS_AUTO_PUBLISH": True,
            **TEST_SECRETS,
        }
        app = create_app(config, instance_path=str(tmp_path / "instance"), strict_flows=strict)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["glue.engine"].dispose()


@pytest.fixture
def registry_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    # The "app" logger does not propagate to the root, where caplog listens.
    logger = logging.getLogger("app.flows.registry")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


def edit(path: Path, old: str, new: str) -> None:
    """Change a flow file and move its mtime on, as an editor saving it would
    (to now: the copies start with the repository's times, older than any version)."""
    before = path.stat().st_mtime_ns
    path.write_text(path.read_text().replace(old, new))
    after = max(time.time_ns(), before + 1_000_000_000)
    os.utime(path, ns=(after, after))


def flow_description(app: Flask, name: str) -> str | None:
    with app.app_context():
        flow = get_flow(name)
    return flow.description if flow else None


def test_start_up_loads_every_flow(make_app: MakeApp) -> None:
    app = make_app()

    assert flow_description(app, "verify_caller") == "Verify a caller by account number and PIN."
    assert flow_description(app, "group_line") is not None
    assert flow_description(app, "nothing_here") is None


def test_edit_is_picked_up(make_app: MakeApp, flows_dir: Path) -> None:
    app = make_app()
    assert flow_description(app, "verify_caller") == "Verify a caller by account number and PIN."

    edit(flows_dir / "verify_caller.yaml", "Verify a caller by", "Check a caller by")

    assert flow_description(app, "verify_caller") == "Check a caller by account number and PIN."


def test_files_are_checked_at_most_once_per_interval(flows_dir: Path) -> None:
    registry = FlowRegistry(flows_dir, reload_seconds=3600)
    registry.load_all()

    edit(flows_dir / "verify_caller.yaml", "Verify a caller by", "Check a caller by")
    flow = registry.get("verify_caller")

    assert flow is not None and flow.description.startswith("Verify")


def test_broken_edit_keeps_last_good_version(
    make_app: MakeApp, flows_dir: Path, registry_log: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    assert flow_description(app, "verify_caller") == "Verify a caller by account number and PIN."
    path = flows_dir / "verify_caller.yaml"
    edit(path, "description: Verify a caller", "description: Broken caller")
    edit(path, "- voicemail: 200", "- voicemail: 200\n    - hangup")

    assert flow_description(app, "verify_caller") == "Verify a caller by account number and PIN."
    registry: FlowRegistry = app.extensions[EXTENSION]
    (problem,) = registry.problems["verify_caller"]
    assert (problem.file, problem.field) == (str(path), "on.failed[2]")
    assert "unreachable" in problem.message
    assert [r.levelname for r in registry_log.records if r.levelno > logging.INFO] == ["ERROR"]
    (error,) = [r for r in registry_log.records if r.levelno > logging.INFO]
    assert f"{path}:{problem.line}: on.failed[2]" in error.getMessage()

    edit(path, "- voicemail: 200\n    - hangup", "- voicemail: 200")

    assert flow_description(app, "verify_caller") == "Broken caller by account number and PIN."
    assert "verify_caller" not in registry.problems


def test_deleted_file_leaves_the_published_version(make_app: MakeApp, flows_dir: Path) -> None:
    app = make_app()
    assert flow_description(app, "group_line") is not None

    (flows_dir / "group_line.yaml").unlink()

    # Published versions live in the database: a file gone publishes nothing.
    assert flow_description(app, "group_line") is not None


def test_new_file_is_picked_up_by_name(make_app: MakeApp, flows_dir: Path) -> None:
    app = make_app()
    assert flow_description(app, "night_line") is None

    text = (flows_dir / "group_line.yaml").read_text()
    (flows_dir / "night_line.yaml").write_text(
        text.replace("description: Verify", "description: Night")
    )

    assert flow_description(app, "night_line") == (
        "Night a group by group number and PIN, then ring the group's phones."
    )


def test_strict_start_up_lists_every_problem(make_app: MakeApp, flows_dir: Path) -> None:
    path = flows_dir / "verify_caller.yaml"
    edit(path, "tries: 3", "tries: 30")
    edit(path, "survo: 4101", "survo: none")

    with pytest.raises(FlowFileError) as info:
        make_app(strict=True)

    message = str(info.value)
    assert message.startswith("2 problems in flow files:")
    assert f"{path}:" in message
    assert ": verify.tries: " in message
    assert ": ifbyphone.survo: " in message


def test_non_strict_start_up_keeps_good_flows(
    make_app: MakeApp, flows_dir: Path, registry_log: pytest.LogCaptureFixture
) -> None:
    path = flows_dir / "verify_caller.yaml"
    edit(path, "tries: 3", "tries: 30")

    app = make_app(strict=False)

    assert flow_description(app, "verify_caller") is None
    assert flow_description(app, "group_line") is not None
    registry: FlowRegistry = app.extensions[EXTENSION]
    assert [p.field for p in registry.problems["verify_caller"]] == ["verify.tries"]
    assert [r.levelname for r in registry_log.records if r.levelno > logging.INFO] == ["WARNING"]

    # Once fixed, the flow comes up without a restart.
    edit(path, "tries: 30", "tries: 3")
    assert flow_description(app, "verify_caller") is not None


def test_missing_flows_dir_stops_start_up(make_app: MakeApp, flows_dir: Path) -> None:
    shutil.rmtree(flows_dir)

    with pytest.raises(NotADirectoryError, match="flow directory not found"):
        make_app(strict=False)


@pytest.mark.parametrize(
    "name",
    [
        "../outside",
        "..",
        "flows/verify_caller",
        "verify_caller.yaml",
        "/etc/passwd",
        "verify_caller\x00",
        "",
        "a" * 65,
    ],
)
def test_untrusted_names_never_leave_flows_dir(
    make_app: MakeApp, flows_dir: Path, tmp_path: Path, name: str
) -> None:
    shutil.copy(flows_dir / "verify_caller.yaml", tmp_path / "outside.yaml")
    app = make_app()

    assert flow_description(app, name) is None
