"""/metrics: every process's counts on this host, in Prometheus's text format.

Only for a request with the Bearer token or from an allowed address (access.py).
Values that are read rather than counted (how many jobs wait) are read here, at
scrape time, by the readers other packages added (`read_at_scrape`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from flask import Blueprint, Response, current_app, request
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from app.metrics import files
from app.metrics.access import Access

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)


@dataclass(frozen=True)
class Gauge:
    name: str
    documentation: str
    read: Callable[[], float]


@dataclass
class Exporter:
    """An app's /metrics: who may read it, and the gauges read at scrape time."""

    access: Access
    gauges: list[Gauge] = field(default_factory=list)


class ReadGauges(Collector):
    """The gauges read at scrape time; one whose reader fails is left out (and logged)."""

    def __init__(self, gauges: list[Gauge]) -> None:
        self.gauges = gauges

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for gauge in self.gauges:
            try:
                value = float(gauge.read())
            except Exception as exc:
                log.warning("metric %s not read: %s", gauge.name, type(exc).__name__)
                continue
            yield GaugeMetricFamily(gauge.name, gauge.documentation, value=value)


def exporter() -> Exporter:
    found: Exporter = current_app.extensions["glue.metrics"]
    return found


@bp.get("/metrics")
def metrics() -> Response:
    """The host's counts, to a scraper with the token or from an allowed address."""
    if not exporter().access.admits(request.headers.get("Authorization"), request.remote_addr):
        return Response("Forbidden\n", status=403, mimetype="text/plain")
    registry = files.host_registry()
    registry.register(ReadGauges(exporter().gauges))
    # Prometheus asks for OpenMetrics in its Accept header; anything else gets the text format.
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = Response(encode(registry), content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response
