"""The inline SVG charts."""

import re
import xml.etree.ElementTree as ET

from lunaris_server.console.charts import Bar, Series, bar_chart, legend, line_chart

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    # The markup has no namespace declaration (inline SVG in HTML); add one to parse it.
    return ET.fromstring(  # noqa: S314 - our own markup
        str(markup).replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
    )


def test_bars_are_proportional_with_the_longest_spanning_the_plot():
    svg = parse(bar_chart([Bar("Git", 10), Bar("7-Zip", 5), Bar("None", 0)], title="Top"))
    widths = [
        float(r.get("width", "0")) for r in svg.iter(f"{SVG}rect") if r.get("class") == "chart-bar"
    ]
    assert widths[0] == 2 * widths[1]
    assert widths[2] == 0
    track = next(r for r in svg.iter(f"{SVG}rect") if r.get("class") == "chart-track")
    assert widths[0] == float(track.get("width", "0"))
    assert svg.get("role") == "img"
    assert svg.get("aria-label") == "Top"


def test_bar_labels_are_escaped_shortened_and_linked():
    markup = bar_chart(
        [Bar("<script>alert(1)</script> and a very long package name", 3, href="/x?a=1&b=2")],
        title="t",
    )
    assert "<script>" not in markup
    assert "&lt;script&gt;" in markup
    assert '<a href="/x?a=1&amp;b=2">' in markup
    shown = re.search(r'<text class="chart-label"[^>]*>([^<]*)</text>', markup)
    assert shown
    assert shown.group(1).endswith("…")
    parse(markup)  # well-formed


def test_empty_bar_chart_is_still_an_svg():
    svg = parse(bar_chart([], title="Nothing"))
    assert svg.tag == f"{SVG}svg"


def test_line_chart_has_one_point_per_label_and_a_rounded_axis():
    labels = [f"Nov {d:02}" for d in range(1, 31)]
    detected = [0] * 29 + [37]
    markup = line_chart(
        labels,
        [Series("Detected", detected, "tone-warn"), Series("Resolved", [1] * 30, "tone-ok")],
        title="Activity",
    )
    svg = parse(markup)
    assert len(list(svg.iter(f"{SVG}circle"))) == 60
    polylines = list(svg.iter(f"{SVG}polyline"))
    assert [len(p.get("points", "").split()) for p in polylines] == [30, 30]
    axis = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "chart-axis"]
    assert "50" in axis  # 37 rounds up to a readable top
    assert {"Nov 01", "Nov 30"} <= set(axis)
    assert "Detected: 37 in total" in markup


def test_line_chart_of_nothing_draws_a_flat_line():
    svg = parse(line_chart(["a", "b"], [Series("Detected", [0, 0], "tone-warn")], title="t"))
    points = next(svg.iter(f"{SVG}polyline")).get("points", "").split()
    assert len({p.split(",")[1] for p in points}) == 1


def test_legend_names_each_series():
    markup = legend([Series("Detected", [], "tone-warn"), Series("<b>", [], "tone-ok")])
    assert "Detected" in markup
    assert "&lt;b&gt;" in markup
