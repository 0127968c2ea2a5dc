"""Configuration: defaults, GLUE_* overrides, secrets generated once."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from app import create_app
from app.config import SECRET_KEYS


def make(tmp_path: Path, **config: object):  # type: ignore[no-untyped-def]
    return create_app(
        {"DATABASE_URL": f"sqlite:///{tmp_path}/t.db", **config},
        instance_path=str(tmp_path / "instance"),
    )


def test_defaults_use_sqlite_in_the_instance_folder(tmp_path: Path) -> None:
    app = create_app(instance_path=str(tmp_path / "instance"))
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'instance' / 'glue.db'}"
    assert app.config["LOCKOUT_THRESHOLD"] == 5
    assert app.config["PIN_MIN_LENGTH"] == 4 and app.config["PIN_MAX_LENGTH"] == 10


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
