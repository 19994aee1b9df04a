from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from lunaris_server.db import Base


class Deployment(Base):
    """Commands queued together, with one summary: a person's bulk action (every device
    waiting for a package, a selection of devices) or, later, a policy's commands for one
    package version in one ring, which join it across scheduler ticks. Retrying its failures
    adds commands to it. Its figures are never stored: they are its commands' statuses,
    counted when asked."""

    __tablename__ = "deployments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    """``manual`` (an admin's bulk action); ``policy`` is for the scheduler."""
    title: Mapped[str] = mapped_column(String(300))
    """What it does, in words, for its lists and pages."""
    packages: Mapped[list[str] | None] = mapped_column(JSON)
    """The package ids it installs; null for every update each device reports waiting."""
    source: Mapped[str | None] = mapped_column(String(16))
    """The source a package run was limited to; null for every source."""
    selection: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """How its devices were chosen (ids picked, or the device list's filters), as audited."""
    created_by: Mapped[str] = mapped_column(String(128))
    """The actor (``user:NAME``), as the audit log names it."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    """The last time commands joined it (its creation, a retry)."""
    skipped_busy: Mapped[int] = mapped_column(Integer, default=0)
    """Devices that got no command: an open command of theirs installs the same already."""
    skipped_up_to_date: Mapped[int] = mapped_column(Integer, default=0)
    """Selected devices that got no command: they report nothing (of its packages) waiting."""

    __table_args__ = (
        # The list, newest first, and filtered by kind.
        Index("ix_deployments_created_at", "created_at"),
        Index("ix_deployments_kind_created_at", "kind", "created_at"),
    )


class Command(Base):
    """A remote action for one device: ``queued -> sent -> running -> succeeded | partial |
    failed`` (``partial``: some packages installed, others not), or ``expired`` (nobody
    picked it up in time) / ``cancelled`` (withdrawn while queued, or its device revoked).
    The server fails a running command whose agent stopped reporting on it, or whose device
    was revoked.

    ``id`` is the idempotency key the agent sees (canonical UUID text)."""

    __tablename__ = "commands"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(36), ForeignKey("devices.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    packages: Mapped[list[str] | None] = mapped_column(JSON)
    """The package ids to install, in order; null for every update available when it runs."""
    versions: Mapped[dict[str, str] | None] = mapped_column(JSON)
    """The version to install of each package (id: version): what the device reported
    available when the command was queued, so a newer release cannot overtake a pin, a
    skipped version or a ring. A package it does not name goes to the newest."""
    window_ends_at: Mapped[datetime | None]
    """A policy's command: its maintenance window closes then, and no install starts after."""
    status: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(128))
    """The actor (``user:NAME``), as the audit log names it."""
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    """First handed to the agent (socket or heartbeat answer); it may be handed over again."""
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    """The last change, or the last step the agent reported: a running command is failed
    when this is older than the running timeout."""
    last_sequence: Mapped[int] = mapped_column(Integer, default=0)
    """The highest progress step applied; a step at or below it is acknowledged and ignored."""
    current_package: Mapped[str | None] = mapped_column(String(256))
    """The package being installed now (between its start and its result)."""
    message: Mapped[str] = mapped_column(Text, default="")
    deployment_id: Mapped[str | None] = mapped_column(String(36))
    """The deployment it was queued in (``deployments.id``); null for a command queued for
    one device. No foreign key: see migration 0014 (nothing deletes a deployment)."""
    retry_of: Mapped[str | None] = mapped_column(String(36))
    """The command of its deployment whose failures it retries: that one no longer counts
    in the deployment's summary, this one does."""
    installer_size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    installer_sha256: Mapped[str | None] = mapped_column(String(64))
    """An ``UPDATE_AGENT``'s MSI as it was when the command was queued: the agent checks
    what it downloads against these (its version is in ``versions``)."""

    __table_args__ = (
        # What a device has waiting (heartbeat handover, socket push).
        Index("ix_commands_device_id_status", "device_id", "status"),
        # A device's commands, newest first.
        Index("ix_commands_device_id_created_at", "device_id", "created_at"),
        # A status filter, newest first; the sweeps (expiry, running timeout, revoked devices)
        # and the startup load of devices with something to hand over (few rows are queued,
        # sent or running at any time).
        Index("ix_commands_status_created_at", "status", "created_at"),
        # The whole list, newest first.
        Index("ix_commands_created_at", "created_at"),
        # A deployment's commands by status (its summary), and newest first (its page).
        Index("ix_commands_deployment_id_status", "deployment_id", "status"),
        Index("ix_commands_deployment_id_created_at", "deployment_id", "created_at"),
        # Whether a command was retried (a deployment's summary counts the retry instead).
        Index("ix_commands_retry_of", "retry_of"),
    )


class CommandResult(Base):
    """What installing one package of a command did, as the agent reported it."""

    __tablename__ = "command_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    command_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("commands.id", ondelete="CASCADE")
    )
    package_identifier: Mapped[str] = mapped_column(String(256))
    outcome: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    reboot_required: Mapped[bool] = mapped_column(Boolean, default=False)
    installer_exit_code: Mapped[int | None] = mapped_column(BigInteger)
    """Installers exit with unsigned 32-bit codes too (HRESULTs): more than an INTEGER holds."""
    hresult: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    finished_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint(
            "command_id", "package_identifier", name="uq_command_results_command_id_package"
        ),
    )
