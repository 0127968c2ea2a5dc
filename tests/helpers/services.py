"""Services some tests need (PostgreSQL, Redis, Chromium, Graphviz, Prometheus's
promtool): without one, its tests are skipped, unless GLUE_TEST_REQUIRE_<SERVICE>=1
(as .ci/run sets, which provides them all) makes that a failure."""

from __future__ import annotations

import os

import pytest

SERVICES = ("postgres", "redis", "browser", "graphviz", "promtool")


def required(service: str) -> bool:
    """Whether GLUE_TEST_REQUIRE_<SERVICE>=1 makes `service` mandatory."""
    if service not in SERVICES:
        raise ValueError(f"unknown test service {service!r}: one of {SERVICES}")
    return os.environ.get(f"GLUE_TEST_REQUIRE_{service.upper()}") == "1"


def require(service: str, available: bool, why: str) -> None:
    """Go on when `service` is available; otherwise skip the test saying `why`,
    or fail it when the service is required."""
    if available:
        return
    if required(service):
        pytest.fail(f"{service} is required (GLUE_TEST_REQUIRE_{service.upper()}=1) but {why}")
    pytest.skip(f"{service}: {why}")
