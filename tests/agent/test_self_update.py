"""UPDATE_AGENT from start to end: the runner downloads the MSI from a real HTTP server,
checks it, writes the marker and starts an installer stand-in (a real process) detached; the
agent that starts next finishes the command with the version it runs, or the one still
running reports the installer's failure with its log's words."""

import asyncio
import json
import sys
import time
from pathlib import Path
from uuid import UUID

import pytest

from lunaris_agent.client import AgentClient
from lunaris_agent.commands import AGENT_CAPABILITIES, CommandLedger, CommandRunner
from lunaris_agent.ledger import progress_from_payload
from lunaris_agent.runtime.agent import Agent
from lunaris_agent.selfupdate import SelfUpdater, SelfUpdateSettings
from lunaris_agent.selfupdate.files import MARKER_FILE, UpdateFiles
from lunaris_agent.selfupdate.signature import OsslsigncodeVerifier
from lunaris_agent.spool import Spool
from lunaris_protocol import CommandProgress, UpdateReport
from tests.agent.self_update_support import (
    TARGET,
    Served,
    build_msi,
    config_for,
    installer_server,
    stand_in,
    update_command,
)

pytestmark = pytest.mark.e2e

OLD = "0.1.0"


class Device:
    """One PC's data directory, and the agents that run on it one after the other."""

    def __init__(self, directory: Path, api_url: str, mode: str = "upgrade", **config: str):
        self.directory = directory
        self.config = config_for(directory, api_url, **config)
        self.spool = Spool(directory / "spool")
        prefix, self.ran = stand_in(directory, mode)
        self.settings = SelfUpdateSettings(
            command_line=lambda msi, log: [*prefix, str(msi), str(log), str(self.ran)],
            verifier=OsslsigncodeVerifier(),
            exit_grace_s=60.0,
            first_retry_s=0.05,
        )

    def agent(self, version: str, *, self_update: bool = True) -> CommandRunner:
        async def nothing() -> None:
            pass

        async def no_updates() -> UpdateReport:
            return UpdateReport(updates=[])

        updater = SelfUpdater(
            self.settings if self_update else None, lambda: self.config, version=version
        )
        return CommandRunner(
            ledger=CommandLedger(self.directory / "commands.json"),
            spool=self.spool,
            install=lambda package, version: pytest.fail("nothing to install"),
            list_updates=no_updates,
            send=nothing,
            after_command=nothing,
            self_update=updater,
        )

    def steps(self) -> list[tuple[UUID, CommandProgress]]:
        return [progress_from_payload(spooled.payload) for spooled in self.spool.pending_results()]

    async def stopped_by_the_installer(self, runner: CommandRunner) -> None:
        """Runs what is queued until the installer stand-in has run, then ends the agent as
        an MSI upgrade stops the service."""
        task = asyncio.create_task(runner.run_queued())
        deadline = time.monotonic() + 30
        while not self.ran.exists():
            assert not task.done(), task
            assert time.monotonic() < deadline, "the installer never ran"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # it exits
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.fixture(scope="module")
def msi(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build_msi(tmp_path_factory.mktemp("msi")).read_bytes()


async def test_the_agent_that_starts_after_the_upgrade_reports_success(tmp_path, msi):
    served = Served(msi)
    command = update_command(msi)
    with installer_server(served) as api_url:
        device = Device(tmp_path, api_url)
        old = device.agent(OLD)
        assert old.offer(command)
        await device.stopped_by_the_installer(old)
    files = UpdateFiles(tmp_path, TARGET)
    marker = json.loads((tmp_path / MARKER_FILE).read_text())
    assert marker["command_id"] == str(command.command_id)
    assert (marker["version"], marker["last_step"]) == (TARGET, 1)
    assert marker["log"] == str(files.log)
    assert device.ran.read_text() == msi[:8].hex()  # it was given the downloaded MSI
    [(_, started)] = device.steps()
    assert (started.status, started.package_started) == ("running", "Lunaris.Agent")

    new = device.agent(TARGET)
    new.report_interrupted()
    steps = [progress for command_id, progress in device.steps()]
    assert [(step.sequence, step.status) for step in steps] == [
        (1, "running"),
        (2, "running"),
        (3, "succeeded"),
    ]
    result = steps[1].result
    assert result is not None
    assert (result.package_identifier, result.outcome, result.succeeded) == (
        "Lunaris.Agent",
        "success",
        True,
    )
    assert "interrupted" not in steps[2].message
    assert "stopped before" not in steps[2].message
    assert not (tmp_path / MARKER_FILE).exists()
    assert sorted(path.name for path in files.updates.iterdir()) == [files.log.name]
    assert not new.offer(command)  # finished: a re-sent copy is ignored
    device.agent(TARGET).report_interrupted()
    assert len(device.steps()) == 3


async def test_the_agent_still_running_reports_the_installers_failure(tmp_path, msi):
    device = await run_to_the_end(tmp_path, msi, update_command(msi), mode="fail")
    steps = [progress for _, progress in device.steps()]
    assert [step.status for step in steps] == ["running", "running", "failed"]
    result = steps[1].result
    assert result is not None
    exit_code = 1603 if sys.platform == "win32" else 1603 % 256  # POSIX keeps 8 bits
    assert (result.outcome, result.succeeded, result.installer_exit_code) == (
        "installer_failed",
        False,
        exit_code,
    )
    assert f"exit code {exit_code}" in result.message
    assert "Error 1920. Service 'Lunaris Agent' failed to start." in result.message
    assert "Return value 3" in result.message
    assert "Installation failed" in result.message
    assert "Doing action" not in result.message
    files = UpdateFiles(tmp_path, TARGET)
    assert not files.marker.exists()
    assert sorted(path.name for path in files.updates.iterdir()) == [files.log.name]
    device.agent(OLD).report_interrupted()  # the next start has nothing to add
    assert len(device.steps()) == 3


async def test_the_old_agent_back_after_a_failed_upgrade_says_why(tmp_path, msi):
    """The upgrade stopped the agent, then failed and put the old version back."""
    command = update_command(msi)
    with installer_server(Served(msi)) as api_url:
        device = Device(tmp_path, api_url)
        await device.stopped_by_the_installer(_offered(device.agent(OLD), command))
    failed = "Action ended 10:15:23: InstallFinalize. Return value 3.\r\n"
    status = "Installation success or error status: 1603.\r\n"
    UpdateFiles(tmp_path, TARGET).log.write_bytes(("\ufeff" + failed + status).encode("utf-16-le"))
    device.agent(OLD).report_interrupted()
    result = device.steps()[1][1].result
    assert result is not None
    assert (result.outcome, result.installer_exit_code) == ("installer_failed", 1603)
    assert "Return value 3" in result.message


async def test_an_agent_at_another_version_is_a_version_mismatch(tmp_path, msi):
    command = update_command(msi)
    with installer_server(Served(msi)) as api_url:
        device = Device(tmp_path, api_url)
        await device.stopped_by_the_installer(_offered(device.agent(OLD), command))
    device.agent(OLD).report_interrupted()
    steps = [progress for _, progress in device.steps()]
    assert steps[-1].status == "failed"
    assert steps[1].result is not None
    assert steps[1].result.outcome == "version_mismatch"
    assert f"came back at version {OLD}, not {TARGET}" in steps[1].result.message


async def test_other_interrupted_commands_are_still_reported_so(tmp_path, msi):
    command = update_command(msi)
    with installer_server(Served(msi)) as api_url:
        device = Device(tmp_path, api_url)
        await device.stopped_by_the_installer(_offered(device.agent(OLD), command))
    other = UUID("00000000-0000-4000-8000-000000000001")
    CommandLedger(tmp_path / "commands.json").accept(other)
    device.agent(TARGET).report_interrupted()
    ends = {command_id: step for command_id, step in device.steps() if step.status != "running"}
    assert ends[command.command_id].status == "succeeded"
    assert ends[other].status == "failed"
    assert "stopped before this command finished" in ends[other].message


async def test_an_msi_without_the_pinned_signature_never_runs(tmp_path, msi):
    command = update_command(msi)
    device = await run_to_the_end(tmp_path, msi, command, publisher="CN=Lunaris, O=Lunaris")
    result = device.steps()[1][1].result
    assert result is not None
    assert result.outcome == "signature_refused"
    assert not device.ran.exists()
    assert not (tmp_path / MARKER_FILE).exists()
    assert list(UpdateFiles(tmp_path, TARGET).updates.iterdir()) == []


async def test_a_wrong_hash_is_the_commands_result(tmp_path, msi):
    device = await run_to_the_end(tmp_path, msi, update_command(msi, sha256="0" * 64))
    steps = [progress for _, progress in device.steps()]
    assert steps[-1].status == "failed"
    assert steps[1].result is not None
    assert steps[1].result.outcome == "hash_mismatch"
    assert f"expected SHA-256 {'0' * 64}" in steps[1].result.message
    assert not device.ran.exists()


def test_only_an_agent_that_can_replace_itself_says_so_and_takes_the_command(tmp_path, msi):
    device = Device(tmp_path, "http://127.0.0.1:9/api")
    assert device.agent(OLD).capabilities == [*AGENT_CAPABILITIES, "self_update"]
    unable = device.agent(OLD, self_update=False)
    assert unable.capabilities == AGENT_CAPABILITIES
    assert not unable.offer(update_command(msi))


async def test_an_agent_made_without_self_update_does_not_claim_it(tmp_path):
    """As the simulator's devices are made."""
    from dataclasses import replace
    from uuid import uuid4

    config = replace(config_for(tmp_path, "http://127.0.0.1:9/api"), device_id=uuid4())

    async def scan() -> UpdateReport:
        return UpdateReport(updates=[])

    async with AgentClient(config.api_url) as client:
        agent = Agent(config, client, scanner=scan, push=False, record_contact=False)
        assert "self_update" not in agent.commands.capabilities


async def run_to_the_end(tmp_path: Path, msi: bytes, command, **device: str) -> Device:
    """One old agent runs the command to its end (its installer, if any, failing)."""
    with installer_server(Served(msi)) as api_url:
        agent = Device(tmp_path, api_url, **device)
        runner = agent.agent(OLD)
        assert runner.offer(command)
        assert await runner.run_queued() == 1
    return agent


def _offered(runner: CommandRunner, command) -> CommandRunner:
    assert runner.offer(command)
    return runner


def test_the_push_channel_hands_over_an_update_command(msi):
    from lunaris_agent.push import PushChannel
    from lunaris_protocol import UpdateAgentMessage

    received: list[object] = []
    channel = PushChannel("http://127.0.0.1:9/api", token=lambda: None, on_command=received.append)
    command = update_command(msi)
    channel._receive(UpdateAgentMessage(data=command).model_dump_json())
    assert received == [command]
