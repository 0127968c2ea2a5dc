"""Charts as inline SVG, drawn on the server from plain series: no script, so
they show under the admin pages' policy and in any browser.

Each chart is an image with a title, each bar names its value in a `<title>`
(a tooltip, and what a screen reader reads), and the page puts the same
numbers in a table beside it. Colours are CSS custom properties (`--chart-0`,
...), so the page's light and dark styles both apply. Pure: lxml only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lxml import etree
from markupsafe import Markup

SVG = "http://www.w3.org/2000/svg"
# Drawn in these units, scaled to the page's width: at 390 px a 15-unit
# label is still about 11 px high.
WIDTH = 480
FONT = 15
COLOURS = 8  # --chart-0 .. --chart-7; more series reuse them


@dataclass(frozen=True)
class Series:
    name: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class Chart:
    """Categories (`labels`), and one value per category in each series."""

    key: str  # unique on the page: the SVG's ids derive from it
    title: str
    labels: tuple[str, ...]
    series: tuple[Series, ...]
    unit: str = ""
    # Its table leaves out the categories with nothing in any series (the hours
    # without a call); a funnel's stage at 0 is news and stays.
    sparse: bool = False

    @property
    def empty(self) -> bool:
        return not any(value for series in self.series for value in series.values)

    def rows(self) -> list[tuple[str, list[float]]]:
        """The chart as table rows: each label with its value in each series."""
        rows = [(label, [s.values[i] for s in self.series]) for i, label in enumerate(self.labels)]
        return [row for row in rows if any(row[1])] if self.sparse else rows


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at least `value` (axes end there)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover - the loop ends at 10


def number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def columns(chart: Chart, tick_every: int = 1) -> Markup:
    """Stacked columns, one per label (an hour), the series stacked in each;
    the axis names every `tick_every`th label."""
    height, left, bottom, top = 220, 44, 26, 8
    plot_w, plot_h = WIDTH - left - 4, height - bottom - top
    totals = [sum(s.values[i] for s in chart.series) for i in range(len(chart.labels))]
    ceiling = nice_ceiling(max(totals, default=0))
    svg = _svg(chart, height)
    _grid(svg, ceiling, left, top, plot_w, plot_h, chart.unit)
    slot = plot_w / max(1, len(chart.labels))
    for i, label in enumerate(chart.labels):
        base = 0.0
        x = left + i * slot + slot * 0.12
        for n, series in enumerate(chart.series):
            value = series.values[i]
            if value:
                y0 = top + plot_h - (base + value) / ceiling * plot_h
                bar = _rect(svg, x, y0, slot * 0.76, value / ceiling * plot_h, n)
                _title(bar, f"{label}, {series.name}: {number(value)}{_unit(chart.unit)}")
            base += value
        centre = left + i * slot + slot / 2
        half = len(label) * FONT * 0.3  # about half a label's width
        if i % tick_every == 0 and half <= centre <= WIDTH - half:  # never cut at an edge
            _text(svg, centre, height - 8, label, "middle")
    return _markup(svg)


def bars(chart: Chart) -> Markup:
    """Horizontal bars, one group per label, a bar per series in each; the
    value written at each bar's end."""
    label_w, bar_h, gap, top = 150, 18, 10, 4
    count = max(1, len(chart.series))
    group_h = count * bar_h + gap
    height = top + len(chart.labels) * group_h + 22
    plot_w = WIDTH - label_w - 60
    ceiling = nice_ceiling(max((v for s in chart.series for v in s.values), default=0))
    svg = _svg(chart, height)
    for i, label in enumerate(chart.labels):
        y = top + i * group_h
        _text(svg, label_w - 8, y + count * bar_h / 2 + FONT / 3, label, "end")
        for n, series in enumerate(chart.series):
            value = series.values[i]
            width = value / ceiling * plot_w
            bar = _rect(svg, label_w, y + n * bar_h, max(width, 1 if value else 0), bar_h - 3, n)
            name = f" {series.name}" if len(chart.series) > 1 else ""
            _title(bar, f"{label}{name}: {number(value)}{_unit(chart.unit)}")
            shown = f"{number(value)}{_unit(chart.unit)}"
            _text(svg, label_w + width + 4, y + n * bar_h + bar_h - 6, shown, "start", "value")
    axis = top + len(chart.labels) * group_h
    line = etree.SubElement(svg, f"{{{SVG}}}line", _xy(label_w, axis, WIDTH - 60, axis))
    line.set("class", "axis")
    return _markup(svg)


def _svg(chart: Chart, height: int) -> etree._Element:
    svg = etree.Element(f"{{{SVG}}}svg", nsmap={None: SVG})  # type: ignore[dict-item]
    svg.set("viewBox", f"0 0 {WIDTH} {height}")
    svg.set("class", "chart")
    svg.set("role", "img")
    svg.set("aria-labelledby", f"{chart.key}-title")
    svg.set("font-size", str(FONT))
    title = etree.SubElement(svg, f"{{{SVG}}}title", id=f"{chart.key}-title")
    title.text = chart.title
    return svg


def _grid(
    svg: etree._Element, ceiling: float, left: int, top: int, width: float, height: float, unit: str
) -> None:
    for fraction in (0, 0.5, 1):
        y = top + height - fraction * height
        line = etree.SubElement(svg, f"{{{SVG}}}line", _xy(left, y, left + width, y))
        line.set("class", "axis" if fraction == 0 else "grid")
        _text(svg, left - 6, y + FONT / 3, number(ceiling * fraction), "end")


def _rect(svg: etree._Element, x: float, y: float, w: float, h: float, n: int) -> etree._Element:
    rect = etree.SubElement(svg, f"{{{SVG}}}rect")
    for name, value in (("x", x), ("y", y), ("width", w), ("height", h)):
        rect.set(name, f"{value:.1f}")
    rect.set("class", f"s{n % COLOURS}")
    return rect


def _title(element: etree._Element, text: str) -> None:
    etree.SubElement(element, f"{{{SVG}}}title").text = text


def _text(
    svg: etree._Element, x: float, y: float, text: str, anchor: str, kind: str = "label"
) -> None:
    element = etree.SubElement(svg, f"{{{SVG}}}text", x=f"{x:.1f}", y=f"{y:.1f}")
    element.set("text-anchor", anchor)
    element.set("class", kind)
    element.text = text


def _xy(x1: float, y1: float, x2: float, y2: float) -> dict[str, str]:
    return {"x1": f"{x1:.1f}", "y1": f"{y1:.1f}", "x2": f"{x2:.1f}", "y2": f"{y2:.1f}"}


def _unit(unit: str) -> str:
    return f" {unit}" if unit else ""


def _markup(svg: etree._Element) -> Markup:
    # lxml escapes every text and attribute: safe to put in the page as is.
    return Markup(etree.tostring(svg, encoding="unicode"))
