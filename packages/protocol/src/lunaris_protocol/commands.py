"""Commands the server hands to an agent."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, StringConstraints

from lunaris_protocol._base import WireModel, WireReply
from lunaris_protocol.limits import (
    MAX_IDENTIFIER,
    MAX_MESSAGE,
    MAX_OUTCOME,
    MAX_PACKAGES_PER_COMMAND,
    MAX_VERSION,
)
from lunaris_protocol.text import IDENTIFIER, MESSAGE_TEXT

CommandKind = Literal["RUN_UPDATES", "UPDATE_AGENT"]
AGENT_PACKAGE = "Lunaris.Agent"
"""The package an ``UPDATE_AGENT`` command's progress and result name."""
AGENT_INSTALLER_PATH = "agent/installers/{version}"
"""Under the agent's API URL: the MSI of an agent version, for the device's own token, with
HTTP ``Range`` (a download cut off goes on where it stopped)."""
MAX_INSTALLER_BYTES = 512 * 1024 * 1024
AGENT_VERSION_PATTERN = r"^[0-9][0-9A-Za-z.+_-]*$"
MAX_AGENT_VERSION = 64
AgentVersion = Annotated[
    str, StringConstraints(max_length=MAX_AGENT_VERSION, pattern=AGENT_VERSION_PATTERN)
]
"""An agent's version (``0.2.0``, ``1.4.0rc1``): it names files and URLs, so nothing else."""


class CommandStatus(StrEnum):
    """``queued -> sent -> running -> succeeded | partial | failed``; a command nobody picked
    up in time is ``expired``, one an admin withdrew while queued is ``cancelled``.

    ``partial``: some of its packages were installed and others were not. Agents never send
    it (their last step says ``succeeded`` or ``failed``): the server derives it from the
    per-package results, so agents built before it existed report it too. Like
    ``succeeded`` and ``failed`` it is final."""

    QUEUED = "queued"
    SENT = "sent"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class RunUpdatesCommand(WireReply):
    """Install updates on one device: the listed packages, or every one available (``None``)."""

    command_id: UUID
    """Idempotency key: an agent that receives the same id twice runs it once."""
    kind: Literal["RUN_UPDATES"] = "RUN_UPDATES"
    packages: (
        Annotated[
            list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_IDENTIFIER)]],
            Field(min_length=1, max_length=MAX_PACKAGES_PER_COMMAND),
        ]
        | None
    ) = None
    expires_at: datetime
    versions: (
        dict[
            Annotated[str, StringConstraints(min_length=1, max_length=MAX_IDENTIFIER)],
            Annotated[str, StringConstraints(min_length=1, max_length=MAX_VERSION)],
        ]
        | None
    ) = None
    """The version to install of each listed package (``winget upgrade --version``): the one
    the device reported available when the command was queued, so a release published
    since cannot overtake a pin, a skipped version or a ring. A package it does not name is
    upgraded to the newest. Agents that install exact versions say so with the
    ``exact_versions`` capability; older ones ignore the field and install the newest."""
    window_ends_at: datetime | None = None
    """A policy's maintenance window closes then: no package install starts after it (those
    left are reported ``window_closed``). Agents with the ``window_end`` capability honour
    it; for older ones the command still expires then, so none starts it late."""


class UpdateAgentCommand(WireReply):
    """Replace this agent with another version: download its MSI
    (``AGENT_INSTALLER_PATH``), check its size, SHA-256 and (when the agent was installed
    with a pinned publisher) its Authenticode signer, then run it. Sent only to agents with
    the ``self_update`` capability. Its progress names the package ``AGENT_PACKAGE``; the
    agent that comes back after the upgrade finishes it, with the version it runs."""

    command_id: UUID
    kind: Literal["UPDATE_AGENT"] = "UPDATE_AGENT"
    version: AgentVersion
    size_bytes: Annotated[int, Field(ge=1, le=MAX_INSTALLER_BYTES)]
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    expires_at: datetime


AgentCommand = Annotated[RunUpdatesCommand | UpdateAgentCommand, Field(discriminator="kind")]
"""Any command the server hands to an agent."""


class PackageResult(WireModel):
    """What installing one package did, as the agent saw it."""

    package_identifier: Annotated[
        str, StringConstraints(min_length=1, max_length=MAX_IDENTIFIER), IDENTIFIER
    ]
    outcome: Annotated[str, StringConstraints(min_length=1, max_length=MAX_OUTCOME), IDENTIFIER]
    """``success``, ``success_reboot_required``, ``no_applicable_upgrade``, ``not_found``,
    ``hash_mismatch``, ``installer_failed``, ``refused_unknown_version``,
    ``version_unavailable`` (the exact version asked for is no longer in the source),
    ``window_closed`` (not started: the maintenance window had closed), ``timeout``,
    ``error``; for ``UPDATE_AGENT``: ``download_failed``, ``size_mismatch``,
    ``hash_mismatch``, ``signature_refused``, ``installer_failed``, ``version_mismatch``
    (the agent that came back runs another version)...: a code to group by; new agents may
    send new ones."""
    succeeded: bool
    reboot_required: bool = False
    installer_exit_code: int | None = None
    """The installer's own code (``Installer failed with exit code: N``)."""
    hresult: Annotated[str, StringConstraints(max_length=MAX_OUTCOME), IDENTIFIER] | None = None
    message: Annotated[str, StringConstraints(max_length=MAX_MESSAGE), MESSAGE_TEXT] = ""
    duration_s: Annotated[float, Field(ge=0, le=7 * 86_400)] = 0.0


class CommandProgress(WireModel):
    """Agent -> server, ``POST /api/agent/commands/{command_id}/progress``: one step of a
    command. Steps are numbered per command and sent in order (from the agent's spool when the
    server was unreachable); a step the server has already applied is acknowledged and
    ignored, so sending one twice is harmless."""

    sequence: Annotated[int, Field(ge=1, le=1_000_000)]
    status: Literal["running", "succeeded", "failed"]
    """``running`` while packages are installed; the last step says how the command ended."""
    package_started: (
        Annotated[str, StringConstraints(min_length=1, max_length=MAX_IDENTIFIER), IDENTIFIER]
        | None
    ) = None
    """The package whose install starts now."""
    result: PackageResult | None = None
    """A package's install finished."""
    message: Annotated[str, StringConstraints(max_length=MAX_MESSAGE), MESSAGE_TEXT] = ""
    """Why a command failed as a whole (expired before it could start, winget not found...)."""


class CommandProgressResponse(WireReply):
    status: CommandStatus
    """The command's status on the server after this step; never ``partial``, which agents
    built before it existed cannot read: a partial command is answered ``failed`` (not
    everything was installed), as the agent itself reported it."""

    @classmethod
    def of(cls, status: CommandStatus) -> "CommandProgressResponse":
        return cls(status=CommandStatus.FAILED if status is CommandStatus.PARTIAL else status)
