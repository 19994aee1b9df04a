from datetime import datetime

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


class Command(Base):
    """A remote action for one device: ``queued -> sent -> running -> succeeded | failed``,
    or ``expired`` (nobody picked it up in time) / ``cancelled`` (withdrawn while queued, or
    its device revoked). The server fails a running command whose agent stopped reporting
    on it, or whose device was revoked.

    ``id`` is the idempotency key the agent sees (canonical UUID text)."""

    __tablename__ = "commands"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(36), ForeignKey("devices.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    packages: Mapped[list[str] | None] = mapped_column(JSON)
    """The package ids to install, in order; null for every update available when it runs."""
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
