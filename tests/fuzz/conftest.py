"""A directory and every kind of credential, made once per test function: the
examples of one test share its app and database (a fresh one per example
would be too slow to try many)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from tests.helpers.flows import shipped_copy
from tests.helpers.fuzz.world import World, make_world
from tests.helpers.metrics import METRICS_TOKEN


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    """A copy of the shipped flows: a publish from the flow editor may write its file."""
    return shipped_copy(tmp_path / "forms")


@pytest.fixture
def app_config(app_config: dict[str, object]) -> dict[str, object]:
    """/metrics has a token to be fuzzed with (and without)."""
    return {**app_config, "METRICS_TOKEN": METRICS_TOKEN}


@pytest.fixture
def world(app: Flask) -> World:
    return make_world(app, sessions=True)


@pytest.fixture
def cli_world(app: Flask) -> World:
    """The same directory, without the web sessions commands do not use (quicker)."""
    return make_world(app, sessions=False)
