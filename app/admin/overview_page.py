"""The overview's charts: what overview.py counts, as charts.py draws them,
with the hours named in the admin's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from markupsafe import Markup
from sqlalchemy.orm import Session

from app.admin import charts, overview, time_zones

Drawn = tuple[charts.Chart, Markup]  # a chart and its SVG


@dataclass(frozen=True)
class OverviewPage:
    hourly: list[Drawn]  # by platform, by outcome
    funnels: list[Drawn]  # one per flow
    providers: Drawn
    times: Drawn
    timings: list[overview.RouteTiming]


def build(session: Session, days: int, zone: ZoneInfo, now: datetime) -> OverviewPage:
    """The charts of the last `days` days (request times: of the last day)."""
    since = now - timedelta(days=days)
    slots = overview.hours(since, now)
    counts = overview.calls_per_hour(session, since)
    labels = tuple(time_zones.local(hour, zone).strftime("%a %H:%M") for hour in slots)
    tick = 6 if days == 1 else 48

    def per_hour(by: str, title: str) -> Drawn:
        series = overview.hourly_series(counts, slots, by)
        chart = charts.Chart(
            f"calls-by-{by}",
            title,
            labels,
            tuple(charts.Series(name, tuple(values)) for name, values in series.items()),
            sparse=True,
        )
        return chart, charts.columns(chart, tick)

    funnels = [
        charts.Chart(
            f"funnel-{funnel.flow}",
            f"Verification funnel of {funnel.flow}",
            overview.STAGES,
            (charts.Series("calls", tuple(funnel.stages.values())),),
        )
        for funnel in overview.funnels(session, since, now)
    ]
    providers = overview.provider_outcomes(session, since)
    statuses = tuple(sorted({status for counts in providers.values() for status in counts}))
    by_provider = charts.Chart(
        "providers",
        "Calls placed, by provider and status",
        statuses,
        tuple(
            charts.Series(name, tuple(counts.get(status, 0) for status in statuses))
            for name, counts in providers.items()
        ),
    )
    timings = overview.route_timings(session, now - timedelta(days=1))
    times = charts.Chart(
        "request-times",
        "Platform request times over the last day, p50 and p99",
        tuple(timing.route for timing in timings),
        (
            charts.Series("p50", tuple(timing.p50 for timing in timings)),
            charts.Series("p99", tuple(timing.p99 for timing in timings)),
        ),
        unit="ms",
    )
    return OverviewPage(
        hourly=[
            per_hour("platform", "Calls per hour, by platform"),
            per_hour("outcome", "Calls per hour, by outcome"),
        ],
        funnels=[(chart, charts.bars(chart)) for chart in funnels],
        providers=(by_provider, charts.bars(by_provider)),
        times=(times, charts.bars(times)),
        timings=timings,
    )
