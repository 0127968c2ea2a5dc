"""The admin overview, read from calls played through the platforms' own routes
(SQLite and PostgreSQL): calls per hour, each flow's funnel, request times; and
the providers' outcomes from the calls Glue placed."""

from __future__ import annotations

import math
from datetime import timedelta

import lxml.html
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.admin import overview
from app.models import Call, CallAction, CallEvent, User, utcnow
from tests.helpers.admin_pages import page, text
from tests.helpers.journeys import Driver
from tests.helpers.voice_xml_caller import BASE, VoiceXmlCall

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def played(client: FlaskClient, session: Session, people: dict[str, User]) -> dict[str, Call]:
    """Six calls of verify_caller on every platform, one per way a call goes:
    Ada (1001) verified, then four wrong PINs, then a fifth that locks her."""
    Driver(client, "twiml", "verify_caller", "CA-verified").attempt("1001", "2468")
    Driver(client, "didml", "verify_caller", "D-silent").silence()
    Driver(client, "ifbyphone", "verify_caller", "I-retry").attempt("1001", "0000")
    failing = Driver(client, "voipnow", "verify_caller", "V-failed")
    for _ in range(3):
        failing.attempt("1001", "0000")
    # A caller who keys their account, then hangs up: Twilio says so.
    hung_up = VoiceXmlCall(client, "twiml", "verify_caller", "CA-hung-up")
    hung_up.start()
    hung_up.press("1001")
    reported = hung_up.raw(f"{BASE}/twiml/status", CallStatus="completed")
    assert reported.status_code == 204
    Driver(client, "ifbyphone", "verify_caller", "I-locked").attempt("1001", "0000")
    session.commit()
    calls = session.scalars(select(Call)).all()
    return {call.platform_call_id: call for call in calls}


def test_each_call_keeps_how_far_its_caller_got(played: dict[str, Call]) -> None:
    assert {call_id: (call.reached, call.outcome) for call_id, call in played.items()} == {
        "CA-verified": ("pin", "verified"),
        "D-silent": (None, "no_input"),
        "I-retry": ("pin", "retry"),
        "V-failed": ("pin", "failed"),
        "CA-hung-up": ("claim", None),
        "I-locked": ("pin", "locked"),
    }


def test_the_funnel_counts_each_stage_from_the_stored_calls(
    played: dict[str, Call], session: Session
) -> None:
    now = utcnow()
    [funnel] = overview.funnels(session, now - timedelta(days=1), now)
    assert funnel.flow == "verify_caller"
    assert dict(funnel.stages) == {
        "called": 6,
        "claim entered": 5,  # all but the silent one
        "PIN entered": 4,
        "verified": 1,
        "failed": 1,
        "locked": 1,
        "gave up": 2,  # the silent one (no input) and the one who hung up
    }
    # The retrying caller is still on the line: only 30 silent minutes make it give up.
    session.execute(
        Call.__table__.update()
        .where(Call.platform_call_id == "I-retry")
        .values(updated_at=now - overview.SILENT - timedelta(seconds=1))
    )
    session.commit()
    [funnel] = overview.funnels(session, now - timedelta(days=1), now)
    assert funnel.stages["gave up"] == 3


def test_calls_are_counted_per_hour_by_platform_and_outcome(
    played: dict[str, Call], session: Session
) -> None:
    now = utcnow()
    since = now - timedelta(days=1)
    slots = overview.hours(since, now)
    counts = overview.calls_per_hour(session, since)
    by_platform = overview.hourly_series(counts, slots, "platform")
    assert {name: sum(values) for name, values in by_platform.items()} == {
        "didml": 1,
        "ifbyphone": 2,
        "twiml": 2,
        "voipnow": 1,
    }
    assert by_platform["twiml"][-1] == 2  # in the hour holding now
    by_outcome = overview.hourly_series(counts, slots, "outcome")
    assert {name: sum(values) for name, values in by_outcome.items()} == {
        "failed": 1,
        "locked": 1,
        "no_input": 1,
        "none": 1,
        "retry": 1,
        "verified": 1,
    }


def test_request_times_are_per_route_from_the_timed_events(
    played: dict[str, Call], session: Session
) -> None:
    timings = {t.route: t for t in overview.route_timings(session, utcnow() - timedelta(days=1))}
    stored = session.scalars(select(CallEvent).where(CallEvent.kind == "turn")).all()
    assert all(event.duration_ms is not None and event.duration_ms >= 0 for event in stored)
    for platform in ("ifbyphone", "voipnow", "didml", "twiml"):
        times = sorted(e.duration_ms or 0 for e in stored if e.platform == platform)
        timing = timings[f"/{platform}/<flow>"]
        assert timing.requests == len(times)
        assert timing.p50 == nearest_rank(times, 0.5)
        assert timing.p99 == times[-1]  # fewer than 100: the slowest
    [status] = session.scalars(select(CallEvent).where(CallEvent.kind == "status")).all()
    assert status.duration_ms is not None
    assert timings["/twiml/status"].requests == 1
    assert timings["/twiml/status"].p99 == status.duration_ms


def nearest_rank(ordered: list[int], fraction: float) -> int:
    """The percentile as the overview means it: a time some request took."""
    return ordered[max(1, math.ceil(len(ordered) * fraction)) - 1]


def test_percentiles_are_nearest_rank_on_both_databases(session: Session) -> None:
    """200 timed requests on one route, 7 on another, 1 on a third."""
    now = utcnow()
    routes = {("twiml", "turn"): range(1, 201), ("didml", "turn"): [9, 3, 5, 1, 7, 2, 8]}
    routes[("didml", "status")] = [42]
    n = 0
    for (platform, kind), times in routes.items():
        for duration in times:
            n += 1
            session.add(
                CallEvent(platform=platform, kind=kind, dedupe_key=f"k{n}", payload={},
                          received_at=now, duration_ms=duration)
            )  # fmt: skip
    session.add(  # too old to count
        CallEvent(platform="twiml", kind="turn", dedupe_key="old", payload={},
                  received_at=now - timedelta(days=2), duration_ms=10_000)
    )  # fmt: skip
    session.commit()
    timings = overview.route_timings(session, now - timedelta(days=1))
    assert timings == [
        overview.RouteTiming("/didml/<flow>", 7, 5, 9),
        overview.RouteTiming("/didml/status", 1, 42, 42),
        overview.RouteTiming("/twiml/<flow>", 200, 100, 198),
    ]


def test_provider_outcomes_count_the_calls_placed(
    session: Session, people: dict[str, User]
) -> None:
    ada = people["ada"]
    for provider, status in [("twilio", "completed")] * 3 + [
        ("twilio", "busy"),
        ("sandbox", "failed"),
    ]:
        session.add(
            CallAction(
                user_id=ada.id, via="web", purpose="connect", target_kind="originator",
                from_number="+13125550101", provider=provider, status=status,
            )
        )  # fmt: skip
    session.add(
        CallAction(
            user_id=ada.id, via="web", purpose="connect", target_kind="originator",
            from_number="+13125550101", provider="twilio", status="completed",
            created_at=utcnow() - timedelta(days=2),
        )
    )  # fmt: skip
    session.commit()
    assert overview.provider_outcomes(session, utcnow() - timedelta(days=1)) == {
        "sandbox": {"failed": 1},
        "twilio": {"busy": 1, "completed": 3},
    }


def test_the_overview_page_draws_and_tabulates_them(
    played: dict[str, Call], admin_client: FlaskClient
) -> None:
    response = admin_client.get("/admin/")
    html = page(response)
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert text(html.xpath("//h1")[0]) == "Overview"

    chart = html.xpath("//figure[@id='calls-by-platform']")[0]
    svg = lxml.etree.fromstring(lxml.html.tostring(chart.xpath(".//svg")[0]))
    assert svg.get("role") == "img"
    assert svg.findtext(f"{SVG}title") == "Calls per hour, by platform"
    bars = [t.text for t in svg.iter(f"{SVG}title")][1:]
    assert any(bar.endswith(", twiml: 2") for bar in bars), bars
    table = {text(row.xpath("th")[0]): [text(td) for td in row.xpath("td")]
             for row in chart.xpath(".//table/tbody/tr")}  # fmt: skip
    [(hour, values)] = table.items()
    assert hour == f"{utcnow():%a %H}:00"  # the hour holding now, in UTC (GLUE_TIME_ZONE)
    assert values == ["1", "2", "2", "1"]  # didml, ifbyphone, twiml, voipnow

    funnel = html.xpath("//figure[@id='funnel-verify_caller']")[0]
    rows = {text(row.xpath("th")[0]): text(row.xpath("td")[0])
            for row in funnel.xpath(".//table/tbody/tr")}  # fmt: skip
    assert rows == {
        "called": "6", "claim entered": "5", "PIN entered": "4", "verified": "1",
        "failed": "1", "locked": "1", "gave up": "2",
    }  # fmt: skip
    svg_titles = [t.text_content() for t in funnel.xpath(".//*[local-name()='rect']/*")]
    assert "gave up: 2" in svg_titles

    routes = [text(row.xpath("td")[0]) for row in html.xpath("//table[@id='timings']/tbody/tr")]
    assert routes == [
        "/didml/<flow>", "/ifbyphone/<flow>", "/twiml/<flow>", "/twiml/status", "/voipnow/<flow>"
    ]  # fmt: skip
    assert "Glue placed no calls in this period." in text(
        html.xpath("//figure[@id='providers']")[0]
    )


def test_the_overview_takes_a_week_and_ignores_other_periods(
    played: dict[str, Call], admin_client: FlaskClient
) -> None:
    week = page(admin_client.get("/admin/?days=7"))
    assert week.xpath("//select[@name='days']/option[@selected]/@value") == ["7"]
    odd = page(admin_client.get("/admin/?days=99999"))
    assert odd.xpath("//select[@name='days']/option[@selected]/@value") == ["1"]
