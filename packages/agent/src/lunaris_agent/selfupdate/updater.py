"""UPDATE_AGENT: download, check, start the installer; and, in the agent that starts next,
finish the command with the version it runs."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final
from uuid import UUID

from lunaris_agent import __version__
from lunaris_agent.config import AgentConfig
from lunaris_agent.ledger import Steps
from lunaris_agent.selfupdate import installer_log
from lunaris_agent.selfupdate.download import Download, download
from lunaris_agent.selfupdate.files import Marker, UpdateFiles, UpdateRefused
from lunaris_agent.selfupdate.launch import (
    REBOOT_CODES,
    SUCCESS_CODES,
    msiexec,
    msiexec_command_line,
    start_detached,
    wait_for_exit,
)
from lunaris_agent.selfupdate.signature import (
    AuthenticodeVerifier,
    SignatureVerifier,
    check_publisher,
    default_verifier,
)
from lunaris_protocol import (
    AGENT_INSTALLER_PATH,
    AGENT_PACKAGE,
    PackageResult,
    UpdateAgentCommand,
)
from lunaris_protocol.limits import MAX_MESSAGE

log = logging.getLogger(__name__)

EXIT_GRACE_S: Final = 120.0
"""After msiexec succeeded, how long this agent waits to be stopped by the upgrade."""

CommandLine = Callable[[Path, Path], Sequence[str]]
"""The installer's command line for an MSI and its log file."""


@dataclass(frozen=True)
class SelfUpdateSettings:
    """How this agent replaces itself: msiexec on Windows, a stand-in elsewhere."""

    command_line: CommandLine
    verifier: SignatureVerifier = field(default_factory=default_verifier)
    """Checks the pinned publisher's signature (when config.json pins one)."""
    exit_grace_s: float = EXIT_GRACE_S
    first_retry_s: float = 2.0
    download_timeout_s: float = 60.0


def windows_self_update() -> SelfUpdateSettings | None:
    """For the installed service on Windows, when msiexec is there."""
    if sys.platform == "win32" and msiexec().is_file():
        return SelfUpdateSettings(msiexec_command_line, verifier=AuthenticodeVerifier())
    return None


class SelfUpdater:
    def __init__(
        self,
        settings: SelfUpdateSettings | None,
        config: Callable[[], AgentConfig],
        *,
        version: str = __version__,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``settings`` None: this agent cannot replace itself, but still finishes an update
        an earlier one started. ``version`` is the version this agent runs."""
        self.settings = settings
        self._config = config
        self.version = version
        self._clock = clock

    @property
    def available(self) -> bool:
        return self.settings is not None

    async def execute(
        self, command: UpdateAgentCommand, steps: Steps, send: Callable[[], Awaitable[None]]
    ) -> None:
        assert self.settings is not None  # offered only when available
        command_id, config = command.command_id, self._config()
        files = UpdateFiles(config.directory, command.version)
        if self._clock() >= command.expires_at:
            steps.finish(command_id, "failed", message="expired before the agent could start it")
            await send()
            return
        steps.step(command_id, "running", package_started=AGENT_PACKAGE)
        await send()
        if command.version == self.version:
            self._result(steps, command_id, "success", f"this agent runs {self.version} already")
            await send()
            return
        try:
            msi = await download(self._download(command, config), files)
            if config.update_publisher is not None:
                await check_publisher(self.settings.verifier, msi, config.update_publisher)
        except UpdateRefused as refusal:
            files.discard_download()
            log.error("agent update to %s refused: %s", command.version, refusal.message)
            self._result(steps, command_id, refusal.outcome, refusal.message)
            await send()
            return
        last_step = steps.ledger.last_step(command_id)
        marker = Marker(command_id, command.version, files.log, self._clock(), last_step)
        marker.save(files.marker)
        try:
            process = start_detached(self.settings.command_line(msi, files.log))
        except OSError as error:
            files.clean_up()
            message = f"could not start the installer: {error.strerror or error}"
            self._result(steps, command_id, "installer_failed", message)
            await send()
            return
        log.warning("agent update to %s: installer started (log %s)", command.version, files.log)
        code = await wait_for_exit(process)
        if code in REBOOT_CODES:
            log.warning("the agent update waits for a restart (installer exit code %d)", code)
            return  # the agent that starts after it finishes the command
        if code in SUCCESS_CODES:
            await asyncio.sleep(self.settings.exit_grace_s)  # the upgrade stops this agent
        self._finish(steps, marker, exit_code=code)  # still here: it did not replace us
        await send()

    def finish_pending(self, steps: Steps) -> UUID | None:
        """At start, before interrupted commands are reported: an update an earlier agent
        started ends with the version this one runs. Returns its command id."""
        marker = Marker.load(UpdateFiles(self._config().directory, "").marker)
        if marker is None:
            return None
        self._finish(steps, marker, exit_code=None)
        return marker.command_id

    def _finish(self, steps: Steps, marker: Marker, *, exit_code: int | None) -> None:
        files = UpdateFiles(self._config().directory, marker.version)
        command_id = marker.command_id
        if steps.ledger.is_finished(command_id):  # reported before the marker could go
            files.clean_up()
            return
        steps.ledger.resume(command_id, marker.last_step)
        duration = max(0.0, (self._clock() - marker.started_at).total_seconds())
        if self.version == marker.version:
            message = f"the agent runs version {self.version} now"
            self._result(steps, command_id, "success", message, duration=duration)
            log.info("agent updated to %s", self.version)
        else:
            text = installer_log.read_log(marker.log)
            code = exit_code if exit_code is not None else installer_log.exit_code(text)
            lines = installer_log.failure_lines(text)
            if lines or code not in (None, *SUCCESS_CODES):
                said = f"the installer failed (exit code {code}); {marker.log.name}: "
                message = said + installer_log.excerpt(lines, MAX_MESSAGE - len(said))
                outcome = "installer_failed"
            else:
                message = f"the agent came back at version {self.version}, not {marker.version}"
                outcome = "version_mismatch"
            log.error("agent update to %s failed: %s", marker.version, message)
            self._result(steps, command_id, outcome, message, duration=duration, code=code)
        files.clean_up()

    def _result(
        self,
        steps: Steps,
        command_id: UUID,
        outcome: str,
        message: str,
        *,
        duration: float = 0.0,
        code: int | None = None,
    ) -> None:
        """The agent package's result, then the command's end."""
        succeeded = outcome == "success"
        result = PackageResult(
            package_identifier=AGENT_PACKAGE,
            outcome=outcome,
            succeeded=succeeded,
            installer_exit_code=code,
            message=message[:MAX_MESSAGE],
            duration_s=round(min(duration, 7 * 86_400), 3),
        )
        steps.step(command_id, "running", result=result)
        steps.finish(command_id, "succeeded" if succeeded else "failed", message=message)

    def _download(self, command: UpdateAgentCommand, config: AgentConfig) -> Download:
        assert self.settings is not None
        path = AGENT_INSTALLER_PATH.format(version=command.version)
        return Download(
            url=f"{config.api_url.rstrip('/')}/{path}",
            token=lambda: self._config().device_token,
            verify=config.tls_verify,
            size_bytes=command.size_bytes,
            sha256=command.sha256,
            expires_at=command.expires_at,
            clock=self._clock,
            timeout_s=self.settings.download_timeout_s,
            first_retry_s=self.settings.first_retry_s,
        )
