"""Maintenance windows in IANA zones: across midnight, across the clocks changing, and on
the days given only."""

from datetime import UTC, datetime, time

import pytest

from lunaris_server.policies.windows import ALWAYS, Window, check_zone, closes_at, is_open

BERLIN = "Europe/Berlin"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


NIGHTLY = Window(days=(0, 1, 2, 3, 4), start=time(22, 0), minutes=240, zone=BERLIN)


@pytest.mark.parametrize(
    ("now", "open_"),
    [
        ("2026-11-02T20:59:59", False),  # Monday 21:59 in Berlin (UTC+1)
        ("2026-11-02T21:00:00", True),  # Monday 22:00
        ("2026-11-03T00:59:59", True),  # Tuesday 01:59: the Monday night window, past midnight
        ("2026-11-03T01:00:00", False),  # Tuesday 02:00: closed
        ("2026-11-06T22:30:00", True),  # Friday 23:30
        ("2026-11-07T21:30:00", False),  # Saturday: not a window day
        ("2026-11-08T00:30:00", False),  # Sunday 01:30: Saturday had no window
        ("2026-11-10T00:30:00", True),  # Tuesday 01:30: Monday's window goes on
    ],
)
def test_a_window_across_midnight(now, open_):
    assert is_open(NIGHTLY, at(now)) is open_


def test_the_night_the_clocks_go_back_the_window_lasts_its_real_length():
    # 25 October 2026: at 03:00 CEST the clocks go back to 02:00 CET.
    window = Window(days=(6,), start=time(1, 0), minutes=180, zone=BERLIN)
    opened = window.open_at(at("2026-10-24T23:30:00"))  # 01:30 CEST
    assert opened == (at("2026-10-24T23:00:00"), at("2026-10-25T02:00:00"))
    assert is_open(window, at("2026-10-25T01:59:00"))  # 02:59 CET, wall clock
    assert not is_open(window, at("2026-10-25T02:00:00"))  # 03:00 CET: three real hours


def test_the_night_the_clocks_go_forward_the_window_opens_at_its_wall_time():
    # 29 March 2026: at 02:00 CET the clocks go forward to 03:00 CEST.
    window = Window(days=(6,), start=time(1, 30), minutes=120, zone=BERLIN)
    assert window.open_at(at("2026-03-29T00:45:00")) == (
        at("2026-03-29T00:30:00"),  # 01:30 CET
        at("2026-03-29T02:30:00"),  # 04:30 CEST, two real hours later
    )
    # A window starting in the skipped hour (02:30 does not exist that night) still opens.
    skipped = Window(days=(6,), start=time(2, 30), minutes=60, zone=BERLIN)
    assert is_open(skipped, at("2026-03-29T01:45:00"))


def test_a_window_in_another_zone_follows_that_zone():
    tokyo = Window(days=(0,), start=time(9, 0), minutes=60, zone="Asia/Tokyo")
    assert is_open(tokyo, at("2026-11-02T00:30:00"))  # Monday 09:30 in Tokyo
    assert not is_open(tokyo, at("2026-11-02T09:30:00"))  # Monday 18:30 there


def test_always_open_and_when_a_window_closes():
    assert is_open(ALWAYS, at("2026-11-07T12:00:00"))
    from datetime import timedelta

    now = at("2026-11-02T22:00:00")
    assert closes_at(NIGHTLY, now, longest=timedelta(days=1)) == at("2026-11-03T01:00:00")
    assert closes_at(ALWAYS, now, longest=timedelta(hours=6)) == now + timedelta(hours=6)
    assert NIGHTLY.next_opening(at("2026-11-07T12:00:00"))[0] == at("2026-11-09T21:00:00")


@pytest.mark.parametrize("name", ["Europe/Berlin", "UTC", "America/Argentina/Buenos_Aires"])
def test_time_zones_come_from_the_zoneinfo_database(name):
    assert check_zone(name) == name


@pytest.mark.parametrize("name", ["", "Mars/Olympus", "../../etc/passwd", "europe/berlin", "CEST"])
def test_a_name_that_is_no_zone_is_refused(name):
    with pytest.raises(ValueError, match="not a time zone"):
        check_zone(name)
