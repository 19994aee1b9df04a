"""Human durations for the CLI: ``90s``, ``15m``, ``12h``, ``7d``, ``2w``."""

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text.lower())
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 12h, 7d, 2w)")
    amount, unit = match.groups()
    duration = timedelta(**{_UNITS[unit]: int(amount)})
    if duration <= timedelta(0):
        raise ValueError("a duration must be positive")
    return duration
