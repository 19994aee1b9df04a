"""The agent's command runner: each command once, packages one at a time, every step spooled
in order and numbered, expiry, and commands interrupted by a restart."""

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lunaris_agent.commands import (
    PROGRESS_KIND,
    CommandLedger,
    CommandRunner,
    progress_from_payload,
)
from lunaris_agent.spool import Spool
from lunaris_agent.winget.outcome import InstallOutcome, InstallOutcomeKind
from lunaris_agent.winget.upgrade import install_package
from lunaris_protocol import CommandProgress, RunUpdatesCommand, ScanError, UpdateItem, UpdateReport

pytestmark = pytest.mark.e2e

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def command(
    packages: list[str] | None,
    *,
    expires_in: timedelta = timedelta(hours=1),
    versions: dict[str, str] | None = None,
    window_ends_at: datetime | None = None,
):
    return RunUpdatesCommand(
        command_id=uuid.uuid4(),
        packages=packages,
        expires_at=NOW + expires_in,
        versions=versions,
        window_ends_at=window_ends_at,
    )


def available(*identifiers: str) -> UpdateReport:
    return UpdateReport(
        updates=[
            UpdateItem(
                package_identifier=identifier,
                name=identifier,
                installed_version="1",
                available_version="2",
                truncated=identifier.endswith("…"),
            )
            for identifier in identifiers
        ]
    )


class Fixture:
    def __init__(self, directory: Path, outcomes: dict[str, InstallOutcomeKind] | None = None):
        self.directory = directory
        self.spool = Spool(directory / "spool")
        self.outcomes = outcomes or {}
        self.installed: list[str] = []
        self.versions: list[str | None] = []
        self.now = NOW
        self.minutes_per_install = 0
        self.sends = 0
        self.rescans = 0
        self.listing = available("Git.Git", "Mozilla.Firefox")

    def runner(self) -> CommandRunner:
        async def install(package: str, version: str | None) -> InstallOutcome:
            self.installed.append(package)
            self.versions.append(version)
            self.now += timedelta(minutes=self.minutes_per_install)
            kind = self.outcomes.get(package, "success")
            return InstallOutcome(kind, package, 1603 if kind == "installer_failed" else None, None)

        async def list_updates() -> UpdateReport:
            return self.listing

        async def send() -> None:
            self.sends += 1

        async def rescan() -> None:
            self.rescans += 1

        return CommandRunner(
            ledger=CommandLedger(self.directory / "commands.json"),
            spool=self.spool,
            install=install,
            list_updates=list_updates,
            send=send,
            after_command=rescan,
            clock=lambda: self.now,
        )

    def steps(self) -> list[tuple[uuid.UUID, CommandProgress]]:
        pending = self.spool.pending_results()
        assert {spooled.kind for spooled in pending} <= {PROGRESS_KIND}
        return [progress_from_payload(spooled.payload) for spooled in pending]


async def test_a_command_installs_each_package_and_reports_every_step_in_order(tmp_path):
    fixture = Fixture(tmp_path, {"Mozilla.Firefox": "installer_failed"})
    runner = fixture.runner()
    run = command(["Git.Git", "Mozilla.Firefox", "Git.Git"])
    assert runner.offer(run)
    assert await runner.run_queued() == 1

    assert fixture.installed == ["Git.Git", "Mozilla.Firefox"]  # a repeated id runs once
    steps = fixture.steps()
    assert {command_id for command_id, _ in steps} == {run.command_id}
    progress = [step for _, step in steps]
    assert [step.sequence for step in progress] == [1, 2, 3, 4, 5]
    assert [(s.status, s.package_started) for s in progress] == [
        ("running", "Git.Git"),
        ("running", None),
        ("running", "Mozilla.Firefox"),
        ("running", None),
        ("failed", None),
    ]
    firefox = progress[3].result
    assert firefox is not None
    assert (firefox.outcome, firefox.succeeded, firefox.installer_exit_code) == (
        "installer_failed",
        False,
        1603,
    )
    assert fixture.rescans == 1  # the console sees what is left at once
    assert fixture.sends >= 3


async def test_a_command_delivered_twice_runs_once_even_after_a_restart(tmp_path):
    fixture = Fixture(tmp_path)
    run = command(["Git.Git"])
    first = fixture.runner()
    assert first.offer(run)
    assert not first.offer(run)
    await first.run_queued()
    restarted = fixture.runner()
    assert not restarted.offer(run)
    assert await restarted.run_queued() == 0
    assert fixture.installed == ["Git.Git"]


async def test_all_available_updates_skips_ids_winget_cannot_target(tmp_path):
    fixture = Fixture(tmp_path)
    fixture.listing = available("Git.Git", "Microsoft.VisualStudio.2022.Co…", "Mozilla.Firefox")
    runner = fixture.runner()
    runner.offer(command(None))
    await runner.run_queued()
    assert fixture.installed == ["Git.Git", "Mozilla.Firefox"]
    assert fixture.steps()[-1][1].status == "succeeded"


async def test_a_failed_listing_fails_the_command_without_installing(tmp_path):
    fixture = Fixture(tmp_path)
    fixture.listing = UpdateReport(scan_error=ScanError(code="0x8A15000F", message="no source"))
    runner = fixture.runner()
    runner.offer(command(None))
    await runner.run_queued()
    assert fixture.installed == []
    [(_, step)] = fixture.steps()
    assert (step.status, step.message) == ("failed", "winget could not list the updates")


async def test_an_expired_command_is_not_started(tmp_path):
    fixture = Fixture(tmp_path)
    runner = fixture.runner()
    runner.offer(command(["Git.Git"], expires_in=timedelta(seconds=-1)))
    await runner.run_queued()
    assert fixture.installed == []
    [(_, step)] = fixture.steps()
    assert step.status == "failed"
    assert "expired" in step.message


async def test_a_command_cut_short_by_a_restart_is_reported_failed_with_the_next_step(tmp_path):
    fixture = Fixture(tmp_path)
    ledger = CommandLedger(tmp_path / "commands.json")
    interrupted = uuid.uuid4()
    ledger.accept(interrupted)
    ledger.next_step(interrupted)  # "running Git.Git" was sent before the PC rebooted

    runner = fixture.runner()
    runner.report_interrupted()
    runner.report_interrupted()  # once only
    [(command_id, step)] = fixture.steps()
    assert command_id == interrupted
    assert (step.sequence, step.status) == (2, "failed")
    assert "stopped before this command finished" in step.message


def test_the_ledger_is_bounded(tmp_path, monkeypatch):
    from lunaris_agent import ledger

    monkeypatch.setattr(ledger, "LEDGER_SIZE", 3)
    ledger = CommandLedger(tmp_path / "commands.json")
    ids = [uuid.uuid4() for _ in range(5)]
    for command_id in ids:
        ledger.accept(command_id)
    reloaded = CommandLedger(tmp_path / "commands.json")
    assert [reloaded.knows(command_id) for command_id in ids] == [False, False, True, True, True]


async def test_an_install_that_cannot_start_is_a_failed_result_and_the_runner_goes_on(tmp_path):
    # A real install: a stand-in winget that exists, given ids it could never be started with.
    winget = tmp_path / "winget"
    winget.write_text("#!/bin/sh\nexit 0\n")
    winget.chmod(0o755)
    fixture = Fixture(tmp_path)
    runner = fixture.runner()
    runner._install = lambda package, version: install_package(winget, package, timeout_s=10)
    odd = ["Git\x00Git", "\u202etiG.tiG", "Git\u200b.Git"]
    first = command([*odd, "--force"])  # the last one is sent, and refused
    assert runner.offer(first)
    await runner.run_queued()
    steps = [step for command_id, step in fixture.steps() if command_id == first.command_id]
    # A step could not carry these ids: none is installed, and the last step names each.
    assert [step.package_started for step in steps if step.package_started] == ["--force"]
    results = [step.result for step in steps if step.result is not None]
    assert [r.package_identifier for r in results] == ["--force"]
    assert not any(r.succeeded for r in results)
    assert steps[-1].status == "failed"
    assert steps[-1].message == (
        "not installed, the id holds invisible characters: "
        "'Git\\x00Git', '\\u202etiG.tiG', 'Git\\u200b.Git'"
    )
    # The loop is still there for the next command.
    after = command(["Git.Git"])
    assert runner.offer(after)
    assert await runner.run_queued() == 1


async def test_each_package_is_installed_at_the_version_the_command_names(tmp_path):
    fixture = Fixture(tmp_path)
    runner = fixture.runner()
    runner.offer(command(["Git.Git", "Mozilla.Firefox"], versions={"Git.Git": "2.47.1"}))
    await runner.run_queued()
    assert fixture.installed == ["Git.Git", "Mozilla.Firefox"]
    assert fixture.versions == ["2.47.1", None]  # a package it does not name: the newest


async def test_no_install_starts_after_the_maintenance_window_closed(tmp_path):
    fixture = Fixture(tmp_path)
    fixture.minutes_per_install = 40  # each install takes 40 minutes
    runner = fixture.runner()
    closes = NOW + timedelta(hours=1)
    run = command(["A.One", "B.Two", "C.Three"], window_ends_at=closes)
    runner.offer(run)
    await runner.run_queued()
    # A.One starts at 9:00, B.Two at 9:40; at 10:20 the window has closed.
    assert fixture.installed == ["A.One", "B.Two"]
    steps = [step for _, step in fixture.steps()]
    assert [s.package_started for s in steps if s.package_started] == ["A.One", "B.Two"]
    results = {s.result.package_identifier: s.result for s in steps if s.result is not None}
    assert results["C.Three"].outcome == "window_closed"
    assert not results["C.Three"].succeeded
    assert results["C.Three"].message == (
        "not started: the maintenance window closed at 2026-11-28T10:00+00:00"
    )
    assert steps[-1].status == "failed"  # not everything was installed


async def test_a_command_whose_window_closed_before_it_ran_installs_nothing(tmp_path):
    fixture = Fixture(tmp_path)
    runner = fixture.runner()
    runner.offer(command(["A.One"], window_ends_at=NOW - timedelta(minutes=1)))
    await runner.run_queued()
    assert fixture.installed == []
    results = [step.result for _, step in fixture.steps() if step.result is not None]
    assert [(r.package_identifier, r.outcome) for r in results] == [("A.One", "window_closed")]
