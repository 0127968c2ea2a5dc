"""Configuration: defaults, GLUE_* overrides, secrets generated once."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest

from app import create_app
from app.config import PROJECT_ROOT, SECRET_KEYS
from tests.helpers.flows import shipped_copy


def make(tmp_path: Path, **config: object):  # type: ignore[no-untyped-def]
    return create_app(
        {"DATABASE_URL": f"sqlite:///{tmp_path}/t.db", **config},
        instance_path=str(tmp_path / "instance"),
    )


def test_defaults_use_sqlite_in_the_instance_folder(tmp_path: Path) -> None:
    app = create_app(instance_path=str(tmp_path / "instance"))
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'instance' / 'glue.db'}"
    assert app.config["LOCKOUT_THRESHOLD"] == 5
    assert app.config["PIN_MIN_LENGTH"] == 4 and app.config["PIN_MAX_LENGTH"] == 8


def test_glue_variables_override_defaults_with_the_right_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLUE_LOCKOUT_THRESHOLD", "3")
    monkeypatch.setenv("GLUE_DB_POOL_TIMEOUT", "1")
    monkeypatch.setenv("GLUE_PIN_SECRET", "12345")  # JSON-looking, still a string
    monkeypatch.setenv("GLUE_DEFAULT_REGION", "GB")
    app = make(tmp_path)
    assert app.config["LOCKOUT_THRESHOLD"] == 3
    assert app.config["DB_POOL_TIMEOUT"] == 1.0 and isinstance(app.config["DB_POOL_TIMEOUT"], float)
    assert app.config["PIN_SECRET"] == "12345"
    assert app.config["DEFAULT_REGION"] == "GB"


def test_missing_secrets_are_generated_once_private_and_reused(tmp_path: Path) -> None:
    first = make(tmp_path)
    path = tmp_path / "instance" / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert set(stored) == set(SECRET_KEYS)
    assert len(set(stored.values())) == len(SECRET_KEYS)  # each its own
    second = make(tmp_path)
    for key in SECRET_KEYS:
        assert first.config[key] == second.config[key] == stored[key]
        assert len(stored[key]) >= 32


def test_environment_secrets_win_over_generated_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(tmp_path)
    monkeypatch.setenv("GLUE_IFBYPHONE_SECRET", "from-the-environment")
    assert make(tmp_path).config["IFBYPHONE_SECRET"] == "from-the-environment"


def test_a_newer_version_adds_missing_secrets_and_keeps_the_old(tmp_path: Path) -> None:
    path = tmp_path / "instance" / "secrets.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"PIN_SECRET": "kept"}))
    app = make(tmp_path)
    assert app.config["PIN_SECRET"] == "kept"
    assert set(json.loads(path.read_text())) == set(SECRET_KEYS)


@pytest.fixture
def no_env_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in SECRET_KEYS:
        monkeypatch.delenv(f"GLUE_{key}", raising=False)


@pytest.mark.parametrize("raw", ["1e3", "1.50", "null", "true", '"quoted"', "[1,2]", " 7 "])
def test_secrets_are_read_verbatim_never_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("GLUE_IFBYPHONE_SECRET", raw)
    monkeypatch.setenv("GLUE_PIN_SECRET", raw)
    app = make(tmp_path)
    assert app.config["IFBYPHONE_SECRET"] == raw
    assert app.config["PIN_SECRET"] == raw


def test_null_secret_is_not_replaced_by_a_generated_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(tmp_path)  # secrets.json exists, with a generated PIN_SECRET
    monkeypatch.setenv("GLUE_PIN_SECRET", "null")
    stored = json.loads((tmp_path / "instance" / "secrets.json").read_text())
    app = make(tmp_path)
    assert app.config["PIN_SECRET"] == "null" != stored["PIN_SECRET"]


def test_an_empty_secret_counts_as_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLUE_PIN_SECRET", "")
    app = make(tmp_path)
    stored = json.loads((tmp_path / "instance" / "secrets.json").read_text())
    assert app.config["PIN_SECRET"] == stored["PIN_SECRET"] and len(stored["PIN_SECRET"]) >= 32


def _secret_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "app.config" and r.levelno == logging.WARNING]


@pytest.fixture
def propagating(monkeypatch: pytest.MonkeyPatch) -> None:
    # logs.init_app stops "app" loggers propagating (it has its own handler), so
    # an app built by an earlier test would hide the record from caplog.
    monkeypatch.setattr(logging.getLogger("app"), "propagate", True)


@pytest.mark.usefixtures("no_env_secrets", "propagating")
def test_generating_secrets_warns_with_their_names_not_their_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GLUE_IFBYPHONE_SECRET", "given-by-the-environment")
    with caplog.at_level(logging.WARNING, logger="app.config"):
        make(tmp_path)
    [record] = _secret_warnings(caplog)
    message = record.getMessage()
    stored = json.loads((tmp_path / "instance" / "secrets.json").read_text())
    for key in SECRET_KEYS:
        assert stored[key] not in message
        assert (key in message) == (key != "IFBYPHONE_SECRET")
    assert "instance folder" in message and "environment" in message
    assert "several hosts" in message

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="app.config"):
        make(tmp_path)  # read back, not generated: nothing to say
    assert _secret_warnings(caplog) == []


@pytest.mark.usefixtures("no_env_secrets", "propagating")
def test_no_secret_warning_when_testing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="app.config"):
        make(tmp_path, TESTING=True)
    assert (tmp_path / "instance" / "secrets.json").exists()
    assert _secret_warnings(caplog) == []


def _renamed_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]


@pytest.mark.usefixtures("propagating")
def test_old_flow_variables_are_still_read_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    flows = shipped_copy(tmp_path / "flows")
    monkeypatch.setenv("GLUE_FORMS_DIR", str(flows))
    monkeypatch.setenv("GLUE_FORMS_RELOAD_SECONDS", "5")
    with caplog.at_level(logging.WARNING, logger="app.config"):
        app = make(tmp_path, TESTING=True)
    assert app.config["FLOWS_DIR"] == str(flows)
    assert app.config["FLOWS_RELOAD_SECONDS"] == 5.0
    assert "FORMS_DIR" not in app.config and "FORMS_RELOAD_SECONDS" not in app.config
    assert _renamed_warnings(caplog) == [
        "GLUE_FORMS_DIR is deprecated: set GLUE_FLOWS_DIR instead",
        "GLUE_FORMS_RELOAD_SECONDS is deprecated: set GLUE_FLOWS_RELOAD_SECONDS instead",
    ]


@pytest.mark.usefixtures("propagating")
def test_new_flow_variables_win_over_the_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GLUE_FORMS_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("GLUE_FLOWS_DIR", str(PROJECT_ROOT / "survo_forms"))
    with caplog.at_level(logging.WARNING, logger="app.config"):
        app = make(tmp_path, TESTING=True)
    assert app.config["FLOWS_DIR"] == str(PROJECT_ROOT / "survo_forms")
    assert _renamed_warnings(caplog) == ["GLUE_FORMS_DIR is deprecated: set GLUE_FLOWS_DIR instead"]


@pytest.mark.usefixtures("propagating")
def test_no_deprecation_warning_without_old_variables(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="app.config"):
        make(tmp_path, TESTING=True)
    assert _renamed_warnings(caplog) == []
