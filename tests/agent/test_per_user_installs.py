"""Apps installed per user, updated: RUN_UPDATES installs a package where the last scan found
it (the machine as SYSTEM, a user's profile in that user's session), says
``user_not_logged_on`` for a user who is not logged on now; and only an agent with user
sessions says ``per_user``."""

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from lunaris_agent import config as config_file
from lunaris_agent.commands import CommandLedger, CommandRunner, UserInstalls, progress_from_payload
from lunaris_agent.per_user import UserScans, locations_from_bytes, locations_to_bytes
from lunaris_agent.runtime import user_sessions, winget_installer, winget_scanner
from lunaris_agent.sessions import ProfileSessions
from lunaris_agent.spool import Spool
from lunaris_agent.winget.upgrade import UPGRADE_PACKAGE_ARGS, USER_SCOPE_ARGS
from lunaris_protocol import Capability, PackageResult, RunUpdatesCommand
from lunaris_server.devices.models import Device
from tests.agent.per_user_support import PerUserWinget, upgrades
from tests.agent.test_runtime import new_config
from tests.agent.test_simulate import options, run
from tests.support import app_state, create_secret

pytestmark = pytest.mark.e2e

ADA = "PC-01\\ada"
BOB = "AzureAD\\bob"
SIGNAL = "OpenWhisperSystems.Signal"  # for the machine (the recorded scan) and for ada


def runner(tmp_path, installs: UserInstalls | None, winget: PerUserWinget) -> CommandRunner:
    async def nothing() -> None:
        return None

    async def not_asked():  # every command here names its packages
        raise AssertionError("no listing expected")

    return CommandRunner(
        ledger=CommandLedger(tmp_path / "commands.json"),
        spool=Spool(tmp_path / "spool"),
        install=winget_installer(winget.path, timeout_s=60),
        list_updates=not_asked,
        send=nothing,
        after_command=nothing,
        user_installs=installs,
    )


def results(tmp_path) -> list[PackageResult]:
    steps = [
        progress_from_payload(s.payload)[1] for s in Spool(tmp_path / "spool").pending_results()
    ]
    return [step.result for step in steps if step.result is not None]


def run_updates(packages: list[str], versions: dict[str, str] | None = None) -> RunUpdatesCommand:
    return RunUpdatesCommand(
        command_id=uuid.uuid4(),
        packages=packages,
        versions=versions,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )


async def test_each_package_installs_where_the_last_scan_found_it(tmp_path):
    winget = PerUserWinget(tmp_path / "winget")
    ada = winget.log_on(ADA, 2, upgrade=upgrades(SIGNAL, "Spotify.Spotify"))
    bob = winget.log_on(BOB, 3, upgrade=upgrades("Discord.Discord"))
    users = UserScans(winget.sessions, winget.path, scan_timeout_s=60, install_timeout_s=60)
    await users.scanner(winget_scanner(winget.path))()
    winget.log_off(BOB)  # after the scan, before the command
    commands = runner(tmp_path, UserInstalls(users.locate, users.install), winget)

    asked = [SIGNAL, "Spotify.Spotify", "Discord.Discord", "Postman.Postman", "Not.Listed"]
    commands.offer(run_updates(asked, versions={SIGNAL: "5.29.0"}))
    await commands.run_queued()

    got = [(r.package_identifier, r.outcome, r.succeeded) for r in results(tmp_path)]
    assert got == [
        (SIGNAL, "success", True),  # the machine's first
        (SIGNAL, "success", True),  # then ada's
        ("Spotify.Spotify", "success", True),
        ("Discord.Discord", "user_not_logged_on", False),
        ("Postman.Postman", "success", True),
        ("Not.Listed", "success", True),  # not in the last scan: the machine, as before
    ]
    installed_for_ada = results(tmp_path)[1]
    assert installed_for_ada.message.startswith(f"for {ADA} (user scope): ")
    not_logged_on = results(tmp_path)[3].message
    assert BOB in not_logged_on
    assert "logged on and the update is run again" in not_logged_on

    # SYSTEM's installs ran for the machine with the machine's command line; ada's in her
    # session, with the same command line and --scope user; none ran in bob's profile.
    machine_installs = [c["argv"] for c in winget.calls(winget.machine) if "--id" in c["argv"]]
    assert machine_installs == [
        list(UPGRADE_PACKAGE_ARGS(SIGNAL, "5.29.0")),
        list(UPGRADE_PACKAGE_ARGS("Postman.Postman")),
        list(UPGRADE_PACKAGE_ARGS("Not.Listed")),
    ]
    ada_installs = [c for c in winget.calls(ada) if "--id" in c["argv"]]
    assert [c["argv"] for c in ada_installs] == [
        [*UPGRADE_PACKAGE_ARGS(SIGNAL, "5.29.0"), *USER_SCOPE_ARGS],
        [*UPGRADE_PACKAGE_ARGS("Spotify.Spotify"), *USER_SCOPE_ARGS],
    ]
    assert {c["username"] for c in ada_installs} == {"ada"}
    assert [c for c in winget.calls(bob) if "--id" in c["argv"]] == []


async def test_a_user_install_that_fails_says_so_for_that_user(tmp_path):
    winget = PerUserWinget(tmp_path / "winget")
    winget.log_on(ADA, 2, upgrade=upgrades("Spotify.Spotify"))
    users = UserScans(winget.sessions, winget.path, scan_timeout_s=60, install_timeout_s=60)
    await users.scanner(winget_scanner(winget.path))()
    failing = "Found Spotify [Spotify.Spotify] Version 2.0\nInstaller failed with exit code: 1603\n"
    winget.answer(winget.root / "profiles" / "ada" / "winget", install=failing)
    commands = runner(tmp_path, UserInstalls(users.locate, users.install), winget)

    commands.offer(run_updates(["Spotify.Spotify"]))
    await commands.run_queued()

    (result,) = results(tmp_path)
    assert (result.outcome, result.succeeded, result.installer_exit_code) == (
        "installer_failed",
        False,
        1603,
    )
    assert result.message.startswith(f"for {ADA} (user scope): ")


def test_only_an_agent_with_user_sessions_says_per_user(tmp_path):
    winget = PerUserWinget(tmp_path / "winget")
    users = UserScans(winget.sessions, winget.path, scan_timeout_s=60, install_timeout_s=60)

    without = runner(tmp_path / "a", None, winget).capabilities
    with_users = runner(tmp_path / "b", UserInstalls(users.locate, users.install), winget)

    assert Capability.PER_USER.value not in without
    assert with_users.capabilities == [*without, Capability.PER_USER.value]


def test_user_sessions_come_from_the_config_or_from_the_windows_service(tmp_path):
    config = new_config(tmp_path, "secret")
    stand_in = replace(config, user_sessions_file=tmp_path / "sessions.json")

    assert user_sessions(config, windows_service=False) is None
    assert user_sessions(config, windows_service=True) is None  # Windows' own: only on Windows
    sessions = user_sessions(stand_in, windows_service=False)
    assert isinstance(sessions, ProfileSessions)
    assert sessions.path == tmp_path / "sessions.json"
    config_file.save(stand_in)  # the key survives the agent rewriting its config
    assert config_file.load(stand_in.path).user_sessions_file == tmp_path / "sessions.json"


async def test_simulated_agents_do_not_say_per_user(app: FastAPI, tmp_path):
    await run(app, options(tmp_path, await create_secret(app), count=2))

    async with app_state(app).database.session() as session:
        stored = list(await session.scalars(select(Device.agent_capabilities)))
    assert len(stored) == 2
    for capabilities in stored:
        assert capabilities is not None
        assert Capability.EXACT_VERSIONS.value in capabilities
        assert Capability.PER_USER.value not in capabilities


async def test_an_agent_that_restarted_installs_where_the_last_run_found_the_package(tmp_path):
    # The places of the last report are kept: a command that arrives before the new run's
    # first scan still installs in the user's profile.
    winget = PerUserWinget(tmp_path / "winget")
    ada = winget.log_on("AzureAD\\ada", 2, upgrade=upgrades("Spotify.Spotify"))
    kept: list[bytes] = []
    first = UserScans(
        winget.sessions,
        winget.path,
        scan_timeout_s=60,
        install_timeout_s=60,
        keep=lambda places: kept.append(locations_to_bytes(places)),
    )
    await first.scanner(winget_scanner(winget.path))()
    assert first.locate("Spotify.Spotify") == ("AzureAD\\ada",)
    again = UserScans(
        winget.sessions,
        winget.path,
        scan_timeout_s=60,
        install_timeout_s=60,
        remembered=locations_from_bytes(kept[-1]),
    )
    assert again.locate("Spotify.Spotify") == ("AzureAD\\ada",)
    outcome = await again.install("Spotify.Spotify", "2.0", "AzureAD\\ada")
    assert outcome.succeeded
    assert any("--id" in call["argv"] for call in winget.calls(ada))
    with pytest.raises(ValueError, match="not an object"):
        locations_from_bytes(b"[1, 2]")
