"""docs/configuration.md and the settings in app/config.py name the same variables."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from app import config

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
# Read straight from the environment by the job worker (config.queue_settings)
# and by every process that counts (config.use_metrics_dir).
ENVIRONMENT_ONLY = {"REDIS_URL", "QUEUE_PATH", "METRICS_DIR"}


def documented() -> set[str]:
    """Every GLUE_ name in the first column of the page's tables."""
    names: set[str] = set()
    for line in DOC.read_text().splitlines():
        if line.startswith("| `GLUE_"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`GLUE_([A-Z0-9_]+)`", first_cell))
    return names


def in_code() -> set[str]:
    return (
        set(config.DEFAULTS)
        | set(config.SECRET_KEYS)
        | set(config.CREDENTIAL_KEYS)
        | ENVIRONMENT_ONLY
    )


def test_every_setting_is_documented() -> None:
    assert sorted(in_code() - documented()) == []


def test_every_documented_variable_is_a_setting() -> None:
    assert sorted(documented() - in_code()) == []


def test_each_old_name_still_read_is_on_its_new_names_row() -> None:
    rows = {
        line.split("|")[1].strip(): line
        for line in DOC.read_text().splitlines()
        if line.startswith("| `GLUE_")
    }
    for new, old in config.RENAMED.items():
        assert f"`GLUE_{old}`" in rows[f"`GLUE_{new}`"]


def test_environment_only_settings_are_read_by_the_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLUE_REDIS_URL", "redis://example:6379/2")
    monkeypatch.setenv("GLUE_QUEUE_PATH", "/tmp/q.db")
    assert config.queue_settings() == config.QueueSettings("redis://example:6379/2", "/tmp/q.db")


def test_the_metrics_folder_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "counts"
    monkeypatch.setenv("GLUE_METRICS_DIR", str(folder))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/elsewhere")
    assert config.use_metrics_dir() == folder
    assert folder.is_dir()
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(folder)
