"""Maintenance windows: days of the week, a start time and a length, in an IANA time zone
(the zoneinfo database), or always open.

A window opens on each listed day at its start time as the clock on the wall of that zone
shows it, and lasts its length in real time: a window of 22:00 for 4 hours closes at 02:00
the next morning, and on the night the clocks go back it closes at 01:00 wall time (four
real hours later). A start time that does not exist that day (the hour skipped when the
clocks go forward) opens at the same offset from midnight that the zone's rules give it
(``fold=0``: the wall time read with the offset before the change).
"""

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_MINUTES = 7 * 24 * 60


@dataclass(frozen=True, slots=True)
class Window:
    days: tuple[int, ...] | None
    """0 Monday .. 6 Sunday; None: always open."""
    start: time = time(0, 0)
    minutes: int = 0
    zone: str = "UTC"

    def open_at(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The (start, end) in UTC of the opening that ``now`` is in, or None when it is shut
        (or always open: ask :func:`is_open`)."""
        if self.days is None:
            return None
        for start in self._starts_around(now):
            end = start + timedelta(minutes=self.minutes)
            if start <= now < end:
                return start, end
        return None

    def next_opening(self, now: datetime) -> tuple[datetime, datetime]:
        """The opening ``now`` is in, or else the next one (for a preview)."""
        current = self.open_at(now)
        if current is not None:
            return current
        starts = sorted(s for s in self._starts(now.date(), 0, 8) if s > now)
        start = starts[0]
        return start, start + timedelta(minutes=self.minutes)

    def _starts_around(self, now: datetime) -> list[datetime]:
        # An opening that began up to the window's length ago may still be open.
        back = self.minutes // (24 * 60) + 2
        return self._starts(now.astimezone(ZoneInfo(self.zone)).date(), back, 1)

    def _starts(self, around: date, back: int, ahead: int) -> list[datetime]:
        assert self.days is not None
        zone = ZoneInfo(self.zone)
        found = []
        for offset in range(-back, ahead + 1):
            day = around + timedelta(days=offset)
            if day.weekday() in self.days:
                local = datetime.combine(day, self.start, tzinfo=zone)
                found.append(local.astimezone(UTC))
        return found


ALWAYS = Window(days=None)


def is_open(window: Window, now: datetime) -> bool:
    return window.days is None or window.open_at(now) is not None


def closes_at(window: Window, now: datetime, *, longest: timedelta) -> datetime:
    """When the opening ``now`` is in ends (an always-open window: ``longest`` from now)."""
    if window.days is None:
        return now + longest
    opening = window.open_at(now)
    assert opening is not None, "the window is shut"
    return opening[1]


def in_zone(window: Window, zone: str) -> Window:
    """The same window on another zone's clock (a device's own, for a local-time policy)."""
    return replace(window, zone=zone)


def is_zone(name: str | None) -> bool:
    """Whether ``name`` is an IANA zone of the zoneinfo database."""
    return name is not None and name in _zones()


def check_zone(name: str) -> str:
    """``name`` if it is an IANA zone of the zoneinfo database, else ValueError."""
    if name not in _zones():
        raise ValueError(
            f"{name[:64]!r} is not a time zone: use an IANA name such as Europe/Berlin or UTC"
        )
    return name


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones() | {"UTC"})
    return _ZONES
