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


def plural(value: int | None, noun: str, nouns: str | None = None) -> str:
    """A count with its noun, as people read it: "1 device", "1,204 devices". The plural is
    the noun with an s unless given (``n|plural("policy", "policies")``)."""
    number = value or 0
    return f"{number:,} {noun if number == 1 else (nouns or noun + 's')}"


def interval(seconds: int) -> str:
    """A setting's interval in its largest whole unit: "30 s", "1 min", "90 s", "2 h"."""
    for size, unit in ((3600, "h"), (60, "min")):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def run_confirmation(what: str, devices: int, offline: int) -> str:
    """What a run will do, as its confirmation says it: "Install 7-Zip 24.08 on 9 devices;
    1 is offline and will install when it is back." """
    text = f"Install {what} on {plural(devices, 'device')}"
    if offline:
        one = offline == 1
        text += (
            f"; {offline:,} {'is' if one else 'are'} offline and will install"
            f" when {'it is' if one else 'they are'} back"
        )
    return text + "."
