"""Charts as inline SVG, drawn on the server: no chart library, no script, no CDN.

The SVG scales to its container (``viewBox``); colours come from CSS classes, so the
stylesheet keeps one palette. Labels are escaped like any other text.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

LABEL_CHARS = 30


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: int
    href: str | None = None
    css_class: str = ""


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[int]
    css_class: str


def _nice_max(value: int) -> int:
    """The axis top: 1, 2 or 5 times a power of ten, at least ``value``."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def bar_chart(
    bars: Sequence[Bar], *, title: str, label_width: int = 190, width: int = 640
) -> Markup:
    """Horizontal bars, one row each: label, bar, value. A bar with ``href`` is a link."""
    row_height, value_width = 28, 56
    height = max(1, len(bars)) * row_height
    # No axis is drawn, so the longest bar spans the plot and each bar shows its value.
    top = max((bar.value for bar in bars), default=0) or 1
    plot_width = width - label_width - value_width
    parts = [
        Markup(
            '<svg class="chart chart-bars" viewBox="0 0 {w} {h}" role="img" aria-label="{t}" '
            'hx-disable="" preserveAspectRatio="xMinYMin meet"><title>{t}</title>'
        ).format(w=width, h=height, t=title)
    ]
    for index, bar in enumerate(bars):
        y = index * row_height
        length = round(plot_width * bar.value / top, 1) if bar.value else 0
        row = Markup(
            '<g class="bar {cls}"><title>{label}: {value}</title>'
            '<text class="chart-label" x="{lx}" y="{ty}" text-anchor="end">{short}</text>'
            '<rect class="chart-track" x="{x}" y="{by}" width="{pw}" height="16" rx="3"/>'
            '<rect class="chart-bar" x="{x}" y="{by}" width="{len}" height="16" rx="3"/>'
            '<text class="chart-value" x="{vx}" y="{ty}">{value}</text></g>'
        ).format(
            cls=bar.css_class,
            label=bar.label,
            short=_short(bar.label),
            value=bar.value,
            lx=label_width - 10,
            ty=y + 18,
            x=label_width,
            by=y + 5,
            pw=plot_width,
            len=length,
            vx=label_width + plot_width + 8,
        )
        if bar.href:
            row = Markup('<a href="{}">{}</a>').format(bar.href, row)
        parts.append(row)
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def line_chart(labels: Sequence[str], series: Sequence[Series], *, title: str) -> Markup:
    """Lines over evenly spaced x labels (e.g. days), with a y axis from 0 and a legend."""
    width, height = 640, 220
    left, right, top_pad, bottom = 40, 12, 14, 28
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    top = _nice_max(max((max(s.values, default=0) for s in series), default=0))
    steps = max(1, len(labels) - 1)

    def x(i: int) -> float:
        return round(left + plot_w * i / steps, 1)

    def y(v: int) -> float:
        return round(top_pad + plot_h * (1 - v / top), 1)

    parts = [
        Markup(
            '<svg class="chart chart-lines" viewBox="0 0 {w} {h}" role="img" aria-label="{t}" '
            'hx-disable="">'
            "<title>{t}</title>"
        ).format(w=width, h=height, t=title)
    ]
    for tick in (0, top // 2, top) if top > 1 else (0, top):
        parts.append(
            Markup(
                '<line class="chart-grid" x1="{l}" x2="{r}" y1="{y}" y2="{y}"/>'
                '<text class="chart-axis" x="{tx}" y="{ty}" text-anchor="end">{v}</text>'
            ).format(l=left, r=width - right, y=y(tick), tx=left - 6, ty=y(tick) + 4, v=tick)
        )
    # A label under the first, the middle and the last point keeps the axis readable.
    for i in sorted({0, len(labels) // 2, len(labels) - 1}) if labels else ():
        anchor = "start" if i == 0 else "end" if i == len(labels) - 1 else "middle"
        parts.append(
            Markup('<text class="chart-axis" x="{x}" y="{y}" text-anchor="{a}">{t}</text>').format(
                x=x(i), y=height - 8, a=anchor, t=labels[i]
            )
        )
    for s in series:
        points = " ".join(f"{x(i)},{y(v)}" for i, v in enumerate(s.values))
        parts.append(
            Markup(
                '<g class="series {cls}"><title>{name}: {total} in total</title>'
                '<polyline class="chart-line" points="{points}"/></g>'
            ).format(cls=s.css_class, name=s.name, total=sum(s.values), points=points)
        )
        for i, v in enumerate(s.values):
            label = labels[i] if i < len(labels) else ""
            parts.append(
                Markup(
                    '<circle class="chart-point {cls}" cx="{x}" cy="{y}" r="2.5">'
                    "<title>{label}: {v} {name}</title></circle>"
                ).format(cls=s.css_class, x=x(i), y=y(v), label=label, v=v, name=s.name)
            )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def legend(series: Sequence[Series]) -> Markup:
    return Markup("").join(
        Markup('<span class="legend-item {}"><span class="swatch"></span>{}</span>').format(
            s.css_class, s.name
        )
        for s in series
    )
