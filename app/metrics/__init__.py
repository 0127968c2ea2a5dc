"""Metrics for Prometheus: what Glue counts (instruments.py), where each process
keeps its counts (files.py), and /metrics, which adds them up (endpoint.py).

Low in the layers, like logs: any package may count. Each request costs one
counter increment and one histogram observation (`init_app`'s hooks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from time import perf_counter

from flask import Flask, Response, g, request

from app.metrics import instruments
from app.metrics.access import Access
from app.metrics.endpoint import Exporter, Gauge, bp


def init_app(app: Flask, platforms: Iterable[str]) -> None:
    """Count every request by URL rule, platform (the first segment of its path,
    when it is one of `platforms`) and status; serve /metrics.

    Call it before any other package adds request hooks: its clock starts first
    and stops last (Flask runs after-request hooks last added first), so their
    time is measured too."""
    access = Access.from_settings(app.config["METRICS_TOKEN"], app.config["METRICS_ALLOW"])
    app.extensions["glue.metrics"] = Exporter(access)
    known = frozenset(platforms)

    @app.before_request
    def start_clock() -> None:
        g.metrics_started = perf_counter()

    @app.after_request
    def count_request(response: Response) -> Response:
        started = g.get("metrics_started")
        seconds = perf_counter() - started if started is not None else 0.0
        rule = request.url_rule
        first = request.path.split("/", 2)[1]
        instruments.request_answered(
            rule.rule if rule is not None else "none",
            first if first in known else "none",
            response.status_code,
            seconds,
        )
        return response

    app.register_blueprint(bp)


def read_at_scrape(app: Flask, name: str, documentation: str, read: Callable[[], float]) -> None:
    """Serve gauge `name` on /metrics with the value `read` returns at each scrape."""
    exporter: Exporter = app.extensions["glue.metrics"]
    exporter.gauges.append(Gauge(name, documentation, read))
