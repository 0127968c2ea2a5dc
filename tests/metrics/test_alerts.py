"""The alerting rules shipped in docs/prometheus/: valid for Prometheus, firing
when they should and only then (promtool's unit tests in glue-alerts.test.yml),
and reading only metrics and labels Glue exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml
from flask import Flask
from prometheus_client import Counter, Histogram

from app.metrics import instruments
from tests.helpers.services import require
from tests.helpers.settings import PROJECT_ROOT

RULES = PROJECT_ROOT / "docs" / "prometheus" / "glue-alerts.yml"
UNIT_TESTS = Path(__file__).with_name("glue-alerts.test.yml")
METRIC = re.compile(r"\b(glue_[a-z_]+)(\{[^}]*\})?")
MATCHER = re.compile(r"([a-z_]+)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def promtool() -> str:
    path = shutil.which("promtool")
    require("promtool", path is not None, "promtool is missing (apt-get install prometheus)")
    assert path is not None
    return path


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_rules_are_valid_for_prometheus() -> None:
    assert "SUCCESS: 5 rules found" in run(promtool(), "check", "rules", str(RULES))


def test_each_alert_fires_when_it_should_and_not_otherwise() -> None:
    assert "SUCCESS" in run(promtool(), "test", "rules", str(UNIT_TESTS))


def exported(app: Flask) -> dict[str, set[str]]:
    """Every series name /metrics may serve, with its labels."""
    names: dict[str, set[str]] = {}
    for metric in vars(instruments).values():
        labels = set(getattr(metric, "_labelnames", ()))
        if isinstance(metric, Counter):
            names[f"{metric._name}_total"] = labels
        elif isinstance(metric, Histogram):
            for suffix in ("_bucket", "_count", "_sum"):
                names[metric._name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    for gauge in app.extensions["glue.metrics"].gauges:
        names[gauge.name] = set()
    return names


def test_the_alerts_read_only_metrics_and_labels_glue_exports(app: Flask) -> None:
    names = exported(app)
    rules = [r for group in yaml.safe_load(RULES.read_text())["groups"] for r in group["rules"]]
    assert {r["alert"] for r in rules} == {
        "GlueLockoutSpike",
        "GlueFallbacksServed",
        "GlueProviderFailures",
        "GlueDatabaseErrors",
        "GlueJobsWaiting",
    }
    for rule in rules:
        used = METRIC.findall(rule["expr"])
        assert used, rule["alert"]
        for name, selector in used:
            assert name in names, f"{rule['alert']}: {name} is not exported"
            for label in MATCHER.findall(selector):
                assert label in names[name], f"{rule['alert']}: {name} has no label {label}"
        labels = set().union(*(names[name] for name, _ in used))
        for grouping in GROUPING.findall(rule["expr"]):
            for label in (part.strip() for part in grouping.split(",")):
                assert label in labels, f"{rule['alert']}: grouped by {label}, not a label"
        for template in rule.get("annotations", {}).values():
            for label in re.findall(r"\$labels\.([a-z_]+)", template):
                assert label in labels, f"{rule['alert']}: annotation names {label}"
