"""Gauges read at scrape time: a reader that fails leaves its gauge out of that
scrape (and says so in the log); the rest is served."""

from __future__ import annotations

import logging

import pytest
from flask import Flask

from app import metrics
from tests.helpers.metrics import METRICS_TOKEN, scrape


@pytest.fixture
def app_config(app_config: dict[str, object]) -> dict[str, object]:
    return {**app_config, "METRICS_TOKEN": METRICS_TOKEN}


def test_a_gauge_whose_reader_fails_is_left_out(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    readings = iter([7.0])

    def flaky() -> float:
        return next(readings)  # a second reading fails (StopIteration)

    metrics.read_at_scrape(app, "glue_test_flaky", "A reader that works once", flaky)
    client = app.test_client()
    assert scrape(client).get_value("glue_test_flaky") == 7
    with caplog.at_level(logging.WARNING, logger="app.metrics"):
        second = scrape(client)
    assert ("glue_test_flaky", frozenset()) not in second
    assert ("glue_jobs_pending", frozenset()) in second
    assert "metric glue_test_flaky not read: StopIteration" in caplog.text
