"""The console's wording helpers: counts with their nouns, intervals, run confirmations."""

from lunaris_server.console.formatting import interval, plural, run_confirmation


def test_a_count_meets_its_noun():
    assert plural(1, "device") == "1 device"
    assert plural(0, "device") == "0 devices"
    assert plural(None, "device") == "0 devices"
    assert plural(2, "device") == "2 devices"
    assert plural(1204, "device") == "1,204 devices"
    assert plural(1, "policy", "policies") == "1 policy"
    assert plural(3, "policy", "policies") == "3 policies"


def test_an_interval_reads_in_its_largest_whole_unit():
    assert [interval(s) for s in (30, 60, 90, 120, 3600, 5400)] == [
        "30 s",
        "1 min",
        "90 s",
        "2 min",
        "1 h",
        "90 min",
    ]


def test_a_run_confirmation_says_what_installs_where_and_what_waits():
    assert run_confirmation("7-Zip 24.08", 9, 1) == (
        "Install 7-Zip 24.08 on 9 devices; 1 is offline and will install when it is back."
    )
    assert run_confirmation("Git 2.44", 1, 0) == "Install Git 2.44 on 1 device."
    assert run_confirmation("Zoom", 2_500, 1_200) == (
        "Install Zoom on 2,500 devices; 1,200 are offline and will install when they are back."
    )
