"""/metrics read back as numbers: every sample of the exposition, parsed by
prometheus_client's own parser, keyed by name and labels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

METRICS_TOKEN = "metrics-token-Hq4v"  # distinctive: found nowhere else
BEARER = {"Authorization": f"Bearer {METRICS_TOKEN}"}

Key = tuple[str, frozenset[tuple[str, str]]]


class Samples(dict[Key, float]):
    """Samples by (name, labels); absent ones read 0."""

    def get_value(self, name: str, **labels: str) -> float:
        return self.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """The sum over every sample of `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.items() if n == name and wanted <= ls)

    def labelled(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        return {ls: v for (n, ls), v in self.items() if n == name}


def parse(text: str) -> Samples:
    samples = Samples()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def scrape(client: Any, headers: Mapping[str, str] = BEARER) -> Samples:
    """GET /metrics (a Flask test client or a Balancer) and parse it."""
    response = client.get("/metrics", headers=dict(headers))
    assert response.status_code == 200, response.data[:200]
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(response.data.decode())


def changes(before: Samples, after: Samples) -> dict[Key, float]:
    """What grew between two scrapes (counters, histograms), and by how much."""
    return {
        key: value - before.get(key, 0.0)
        for key, value in after.items()
        if value != before.get(key, 0.0)
    }
