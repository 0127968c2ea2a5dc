"""`flask forms check` and `flask forms list`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from app import create_app
from tests.conftest import PROJECT_ROOT, TEST_SECRETS


@pytest.fixture
def forms(tmp_path: Path) -> Path:
    directory = tmp_path / "forms"
    shutil.copytree(PROJECT_ROOT / "survo_forms", directory)
    return directory


@pytest.fixture
def cli_app(tmp_path: Path, forms: Path) -> Iterator[Flask]:
    config = {
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{tmp_path}/t.db",
        "FORMS_DIR": str(forms),
        "FORMS_RELOAD_SECONDS": 0,
        **TEST_SECRETS,
    }
    app = create_app(config, instance_path=str(tmp_path / "instance"))
    yield app
    app.extensions["glue.engine"].dispose()


@pytest.fixture
def cli(cli_app: Flask) -> FlaskCliRunner:
    return cli_app.test_cli_runner()


def break_flow(path: Path) -> None:
    """Line 8 of the copy: `tries: 0` is out of range."""
    path.write_text(
        "description: Broken.\n"
        "questions:\n"
        "  - {name: account, type: digits}\n"
        "  - {name: pin, type: digits}\n"
        "verify:\n"
        "  by: account\n"
        "  claim: account\n"
        "  tries: 0\n"
        "  pin: pin\n"
        "on:\n"
        "  verified: [{transfer: verified}]\n"
        "  failed: [hangup]\n"
    )


def test_check_good_flows(cli: FlaskCliRunner) -> None:
    result = cli.invoke(args=["forms", "check"])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "2 flows OK"


def test_check_reports_file_line_field(cli: FlaskCliRunner, forms: Path) -> None:
    broken = forms / "broken.yaml"
    break_flow(broken)

    result = cli.invoke(args=["forms", "check"])

    assert result.exit_code == 1
    assert f"{broken}:8: verify.tries: Must be greater than or equal to 1" in result.output
    assert "1 problem(s) in 1 file(s); 2 flow(s) OK" in result.output


def test_check_named_files_only(cli: FlaskCliRunner, forms: Path, tmp_path: Path) -> None:
    break_flow(forms / "broken.yaml")
    elsewhere = tmp_path / "draft.yaml"
    shutil.copy(forms / "group_line.yaml", elsewhere)

    result = cli.invoke(args=["forms", "check", str(elsewhere)])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "1 flows OK"


def test_check_missing_file_is_a_usage_error(cli: FlaskCliRunner, tmp_path: Path) -> None:
    result = cli.invoke(args=["forms", "check", str(tmp_path / "nope.yaml")])

    assert result.exit_code == 2


def test_list_shows_names_descriptions_questions(cli: FlaskCliRunner) -> None:
    result = cli.invoke(args=["forms", "list"])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "group_line: Verify a group by group number and PIN, then ring the group's phones.",
        "  questions: group, pin",
        "verify_caller: Verify a caller by account number and PIN.",
        "  questions: account, pin",
    ]
