"""The overview's charts, the CSV cells and the admin's time zone: pure functions."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from lxml import etree

from app.admin import charts, time_zones
from app.admin.csv_export import cell, rows

SVG = "{http://www.w3.org/2000/svg}"
HOURS = charts.Chart(
    "calls",
    "Calls per hour",
    ("09:00", "10:00", "11:00"),
    (charts.Series("twiml", (1, 0, 4)), charts.Series("ifbyphone", (2, 0, 1))),
)


def parse(markup: str) -> etree._Element:
    return etree.fromstring(markup.encode())


def test_columns_stack_each_series_and_name_every_value() -> None:
    svg = parse(charts.columns(HOURS, tick_every=2))
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "calls-title"
    assert svg.findtext(f"{SVG}title") == "Calls per hour"
    bars = {rect.findtext(f"{SVG}title"): rect for rect in svg.iter(f"{SVG}rect")}
    # No bar for a zero; the hour with 4 + 1 reaches the axis's top (5).
    assert sorted(bars) == [
        "09:00, ifbyphone: 2", "09:00, twiml: 1", "11:00, ifbyphone: 1", "11:00, twiml: 4"
    ]  # fmt: skip
    assert bars["11:00, twiml: 4"].get("class") == "s0"
    assert bars["11:00, ifbyphone: 1"].get("class") == "s1"
    top = float(bars["11:00, ifbyphone: 1"].get("y"))
    assert top == pytest.approx(8.0)  # the plot's top edge
    ticks = [t.text for t in svg.iter(f"{SVG}text") if t.get("text-anchor") == "middle"]
    assert ticks == ["09:00", "11:00"]
    assert [t.text for t in svg.iter(f"{SVG}text") if t.get("text-anchor") == "end"] == [
        "0", "2.5", "5"
    ]  # fmt: skip


def test_bars_write_each_value_with_its_unit() -> None:
    times = charts.Chart(
        "t",
        "Times",
        ("/twiml/<flow>",),
        (charts.Series("p50", (12,)), charts.Series("p99", (80,))),
        "ms",
    )
    svg = parse(charts.bars(times))
    assert [r.findtext(f"{SVG}title") for r in svg.iter(f"{SVG}rect")] == [
        "/twiml/<flow> p50: 12 ms", "/twiml/<flow> p99: 80 ms"
    ]  # fmt: skip
    values = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "value"]
    assert values == ["12 ms", "80 ms"]
    widths = [float(r.get("width")) for r in svg.iter(f"{SVG}rect")]
    assert widths[1] == pytest.approx(widths[0] * 80 / 12, rel=0.01)


def test_text_in_a_chart_is_escaped() -> None:
    hostile = charts.Chart(
        "x", "<script>", ("</svg><script>alert(1)</script>",), (charts.Series("a&b", (1,)),)
    )
    markup = str(charts.bars(hostile))
    assert "<script>" not in markup
    assert parse(markup).findtext(f"{SVG}title") == "<script>"


def test_an_empty_chart_says_so_and_has_rows_for_a_table() -> None:
    assert not HOURS.empty
    assert HOURS.rows() == [("09:00", [1, 2]), ("10:00", [0, 0]), ("11:00", [4, 1])]
    assert charts.Chart("e", "E", ("a",), (charts.Series("s", (0,)),)).empty


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1), (1, 1), (3, 5), (7, 10), (12, 20), (480, 500), (0.3, 0.5)]
)
def test_axes_end_at_a_round_number(value: float, ceiling: float) -> None:
    assert charts.nice_ceiling(value) == pytest.approx(ceiling)


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+13125550101", "'+13125550101"),
        ("-1", "'-1"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("1001", "1001"),
        ("a=b", "a=b"),
        (None, ""),
        (7, "7"),
    ],
)
def test_csv_cells_that_look_like_formulas_stay_text(value: object, written: str) -> None:
    assert cell(value) == written


def test_csv_rows_are_a_header_then_each_record_quoted() -> None:
    lines = rows(
        [("a,b", 1), ('say "hi"', None)], [("text", lambda r: r[0]), ("n", lambda r: r[1])]
    )
    parsed = list(csv.reader(io.StringIO("".join(lines))))
    assert parsed == [["text", "n"], ["a,b", "1"], ['say "hi"', ""]]


def test_times_are_shown_and_read_in_the_admins_zone() -> None:
    paris = time_zones.zone("Europe/Paris", "UTC")
    assert time_zones.shown(datetime(2026, 7, 1, 12, 0), paris) == "2026-07-01 14:00:00 CEST"
    assert time_zones.shown(datetime(2026, 1, 1, 12, 0), paris) == "2026-01-01 13:00:00 CET"
    # A day in Paris starts the evening before in UTC; a DST day is 23 hours long.
    assert time_zones.utc_start(date(2026, 1, 2), paris) == datetime(2026, 1, 1, 23, 0)
    spring = date(2026, 3, 29)
    assert time_zones.utc_end(spring, paris) - time_zones.utc_start(spring, paris) == timedelta(
        hours=23
    )


def test_an_unknown_zone_falls_back_to_the_deployments_then_utc() -> None:
    assert time_zones.zone(None, "Asia/Kolkata") == ZoneInfo("Asia/Kolkata")
    assert time_zones.zone("Mars/Olympus", "Asia/Kolkata") == ZoneInfo("Asia/Kolkata")
    assert time_zones.zone("", "nowhere") == ZoneInfo("UTC")
    assert "America/Chicago" in time_zones.zone_names()


def test_a_sparse_charts_table_leaves_out_empty_categories_and_a_funnels_keeps_them() -> None:
    hours = charts.Chart("h", "h", ("1:00", "2:00"), (charts.Series("s", (0, 3)),), sparse=True)
    stages = charts.Chart("f", "f", ("failed", "verified"), (charts.Series("s", (0, 3)),))
    assert hours.rows() == [("2:00", [3])]
    assert stages.rows() == [("failed", [0]), ("verified", [3])]
