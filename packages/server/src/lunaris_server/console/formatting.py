"""Template filters: timestamps and numbers as people read them."""

from datetime import datetime

from markupsafe import Markup, escape


def _ago(seconds: float) -> str:
    if seconds < 0:
        return "just now"
    for size, unit in ((86_400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now" if seconds < 10 else f"{int(seconds)} s ago"


def when(value: datetime | None, now: datetime | None = None) -> Markup:
    """A ``<time>`` showing "5 min ago" (when ``now`` is given) with the exact UTC time."""
    if value is None:
        return Markup('<span class="muted">never</span>')
    exact = value.strftime("%Y-%m-%d %H:%M UTC")
    shown = _ago((now - value).total_seconds()) if now is not None else exact
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        escape(value.isoformat()), exact, shown
    )


def count(value: int | None) -> str:
    return f"{value or 0:,}"
