"""Apps installed per user, scanned: the machine's winget, then winget in each logged-on user's
session (stand-in sessions: real processes with each profile's environment, run as the test's
own OS user), merged into one report and one inventory with each row's scope and user."""

import json
import logging

import pytest

from lunaris_agent.per_user import UserScans
from lunaris_agent.runtime import winget_inventory, winget_scanner
from lunaris_agent.winget.upgrade import LIST_INSTALLED_ARGS, UPGRADE_SCAN_ARGS, USER_SCOPE_ARGS
from lunaris_protocol import InventoryReport, UpdateReport, list_digest
from tests.agent.per_user_support import PerUserWinget, gone, installed, upgrades

pytestmark = pytest.mark.e2e

ADA = "PC-01\\ada"
BOB = "AzureAD\\bob"
MACHINE_IDS = [
    "OpenWhisperSystems.Signal",
    "Microsoft.Edge",
    "Microsoft.EdgeWebView2Runtime",
    "Microsoft.Office",
    "Microsoft.Office",
    "Postman.Postman",
]


@pytest.fixture
def winget(tmp_path) -> PerUserWinget:
    return PerUserWinget(tmp_path / "winget")


def users(winget: PerUserWinget, *, timeout_s: float = 60.0) -> UserScans:
    return UserScans(
        winget.sessions, winget.path, scan_timeout_s=timeout_s, install_timeout_s=timeout_s
    )


async def scan(winget: PerUserWinget, *, timeout_s: float = 60.0) -> UpdateReport:
    return await users(winget, timeout_s=timeout_s).scanner(winget_scanner(winget.path))()


def rows(report: UpdateReport) -> list[tuple[str, str, str | None]]:
    return [(item.package_identifier, item.scope, item.user) for item in report.updates]


async def test_the_report_holds_the_machine_rows_then_each_users_rows(winget):
    ada = winget.log_on(ADA, 2, upgrade=upgrades("OpenWhisperSystems.Signal", "Spotify.Spotify"))
    bob = winget.log_on(BOB, 3, upgrade=upgrades("Discord.Discord"))

    report = await scan(winget)

    assert report.scan_error is None
    assert rows(report) == [
        *((identifier, "machine", None) for identifier in MACHINE_IDS),
        # Signal is in the machine's list and in ada's: two rows, two scopes.
        ("OpenWhisperSystems.Signal", "user", ADA),
        ("Spotify.Spotify", "user", ADA),
        ("Discord.Discord", "user", BOB),
    ]
    # The wire takes it as it is.
    assert UpdateReport.model_validate_json(report.model_dump_json()) == report
    # Each ran where it should: the machine's as it always did, each user's in their session
    # with their profile's environment, asking winget for their packages only.
    assert [call["argv"] for call in winget.calls(winget.machine)] == [list(UPGRADE_SCAN_ARGS)]
    for box, name in ((ada, "ada"), (bob, "bob")):
        (call,) = winget.calls(box)
        assert call["argv"] == [*UPGRADE_SCAN_ARGS, *USER_SCOPE_ARGS]
        assert call["username"] == name
        assert str(call["localappdata"]).endswith(f"profiles/{name}/AppData/Local")


async def test_with_nobody_logged_on_the_report_is_the_machines_as_before(winget):
    report = await scan(winget)
    alone = await winget_scanner(winget.path)()

    assert report == alone
    assert rows(report) == [(identifier, "machine", None) for identifier in MACHINE_IDS]
    # Rows at their defaults: the JSON an older server reads has no scope nor user in it.
    assert "scope" not in report.model_dump_json(exclude_defaults=True)


async def test_a_user_logged_on_twice_is_scanned_once(winget):
    console = winget.log_on(ADA, 2, upgrade=upgrades("Spotify.Spotify"))
    remote = winget.log_on("pc-01\\ADA", 5)  # the same account, from a remote desktop

    report = await scan(winget)

    assert rows(report)[len(MACHINE_IDS) :] == [("Spotify.Spotify", "user", ADA)]
    assert (len(winget.calls(console)), len(winget.calls(remote))) == (1, 0)


@pytest.mark.parametrize(
    "behaviour",
    [
        {"exit": 1},  # winget failed, printing nothing
        {"exit": 0x8A15000F & 0xFF},  # winget failed (POSIX keeps an exit code's low byte)
        {"hang": True},  # winget never finishes: killed at the timeout
    ],
    ids=["failed", "failed-hresult", "timeout"],
)
async def test_a_user_whose_run_fails_is_left_out_and_the_rest_is_sent(winget, behaviour, caplog):
    winget.log_on(ADA, 2, upgrade=upgrades("Spotify.Spotify"))
    bob = winget.log_on(BOB, 3, upgrade="", behaviour=json.dumps(behaviour))

    with caplog.at_level(logging.WARNING, logger="lunaris_agent.per_user"):
        report = await scan(winget, timeout_s=2.0)

    assert report.scan_error is None
    assert rows(report) == [
        *((identifier, "machine", None) for identifier in MACHINE_IDS),
        ("Spotify.Spotify", "user", ADA),
    ]
    assert any(BOB in record.getMessage() for record in caplog.records)
    if behaviour.get("hang"):
        assert gone(int((bob / "pid").read_text()))  # killed, not left behind


async def test_a_machine_scan_that_fails_is_the_report_alone(winget):
    winget.answer(winget.machine, behaviour=json.dumps({"exit": 1}), upgrade="")
    ada = winget.log_on(ADA, 2, upgrade=upgrades("Spotify.Spotify"))

    report = await scan(winget)

    assert report.updates == []
    assert report.scan_error is not None  # the server keeps its last list, users' rows too
    assert winget.calls(ada) == []


async def test_sessions_that_cannot_be_listed_leave_the_machine_scan(winget, caplog):
    winget.log_on(ADA, 2, upgrade=upgrades("Spotify.Spotify"))
    winget.sessions_file.write_text("not json", encoding="utf-8")

    with caplog.at_level(logging.WARNING, logger="lunaris_agent.per_user"):
        report = await scan(winget)

    assert rows(report) == [(identifier, "machine", None) for identifier in MACHINE_IDS]
    assert "cannot list the users' sessions" in caplog.text


async def test_the_inventory_holds_the_machine_apps_then_each_users(winget):
    winget.answer(winget.machine, list=installed("Git.Git", "Microsoft.Edge"))
    ada = winget.log_on(ADA, 2, list=installed("Spotify.Spotify", "Git.Git"))
    winget.log_on(BOB, 3, list="", behaviour=json.dumps({"exit": 1}))
    inventory = users(winget).inventory(winget_inventory(winget.path))

    report = await inventory()

    assert report.software is not None
    listed = [(item.package_identifier, item.scope, item.user) for item in report.software]
    assert listed == [
        ("Git.Git", "machine", None),
        ("Microsoft.Edge", "machine", None),
        ("Spotify.Spotify", "user", ADA),
        ("Git.Git", "user", ADA),  # in both: two rows
    ]
    assert report.digest == list_digest(report.software)
    assert InventoryReport.model_validate_json(report.model_dump_json()) == report
    (call,) = winget.calls(ada)
    assert call["argv"] == [*LIST_INSTALLED_ARGS, *USER_SCOPE_ARGS]


async def test_an_inventory_without_users_keeps_the_machines_digest(winget):
    winget.answer(winget.machine, list=installed("Git.Git"))
    alone = await winget_inventory(winget.path)()

    report = await users(winget).inventory(winget_inventory(winget.path))()

    assert report == alone  # a PC nobody is logged on to changes nothing on the server
