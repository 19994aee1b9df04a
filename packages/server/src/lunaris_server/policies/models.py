from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
    func,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from lunaris_server.db import Base


class Policy(Base):
    """Installs the ``auto`` updates of the devices in its rings, in its maintenance window
    (see policies/windows.py and docs/policies.md). A device takes the first policy, by
    ``priority`` then id, with a ring it is in."""

    __tablename__ = "policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(String(1000), default="")
    priority: Mapped[int] = mapped_column(Integer, default=100)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=true())
    window_days: Mapped[list[int] | None] = mapped_column(JSON)
    """Days the window opens (0 Monday to 6 Sunday); null: always open."""
    window_start: Mapped[str | None] = mapped_column(String(5))
    """``HH:MM`` in ``time_zone``."""
    window_minutes: Mapped[int | None] = mapped_column(Integer)
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    local_time: Mapped[bool] = mapped_column(Boolean, server_default=false())
    """The window opens in each device's own time zone (as its agent reports it), and in
    ``time_zone`` on devices that report none."""
    """An IANA zone (``Europe/Berlin``)."""
    deferral_days: Mapped[int] = mapped_column(Integer, default=0)
    """Install a version only once it has been available in the fleet this many days."""
    max_concurrent: Mapped[int | None] = mapped_column(Integer)
    """Devices installing at once under this policy (all rings); null: no limit."""
    sla_days: Mapped[int | None] = mapped_column(Integer)
    """A device of the policy is overdue once an update it counts as missing has waited
    longer than this many days (compliance); null: no SLA."""
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(128))

    __table_args__ = (Index("ix_policies_name_folded", func.lower(name), unique=True),)


class PolicyRing(Base):
    """One ring of a policy: a group, in order. Later rings take a version once the ring
    before has had it long enough and well enough (the gates)."""

    __tablename__ = "policy_rings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    policy_id: Mapped[int] = mapped_column(Integer, ForeignKey("policies.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    group_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("device_groups.id", ondelete="RESTRICT")
    )
    soak_hours: Mapped[int] = mapped_column(Integer, default=0)
    min_devices: Mapped[int] = mapped_column(Integer, default=0)
    min_success_percent: Mapped[int] = mapped_column(Integer, default=0)
    halt_failure_percent: Mapped[int | None] = mapped_column(Integer)
    max_concurrent: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        UniqueConstraint("policy_id", "position"),
        Index("ix_policy_rings_group_id", "group_id"),
    )


class PolicyInstall(Base):
    """A version of a package the scheduler queued for a device: the key that makes a
    repeated tick (another process, a restart) unable to queue it twice."""

    __tablename__ = "policy_installs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(36), ForeignKey("devices.id", ondelete="CASCADE"))
    package_identifier: Mapped[str] = mapped_column(String(256))
    source: Mapped[str] = mapped_column(String(64))
    """"" where winget showed none (a key column cannot be NULL)."""
    version: Mapped[str] = mapped_column(String(128))
    policy_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("policies.id", ondelete="SET NULL")
    )
    ring_position: Mapped[int] = mapped_column(Integer)
    command_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("commands.id", ondelete="SET NULL")
    )
    queued_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("device_id", "package_identifier", "source", "version"),
        Index("ix_policy_installs_policy", "policy_id", "package_identifier", "version"),
        Index("ix_policy_installs_command_id", "command_id"),
    )


class SchedulerTick(Base):
    """A tick the scheduler ran: the row is claimed in the tick's own transaction, so of
    several processes (or a restart) exactly one runs each tick, and a tick that failed
    mid-way left no row and runs again."""

    __tablename__ = "scheduler_ticks"

    tick: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    """Seconds since the epoch, divided by the interval."""
    started_at: Mapped[datetime]
    process: Mapped[str] = mapped_column(String(64))
    queued: Mapped[int] = mapped_column(Integer, default=0)


class PackageVersionSeen(Base):
    """When the scheduler first saw a version of a package waiting in the fleet: a policy's
    deferral counts from here."""

    __tablename__ = "package_versions_seen"

    package_identifier: Mapped[str] = mapped_column(String(256), primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(128), primary_key=True)
    first_seen_at: Mapped[datetime]


class Rollout(Base):
    """A version of a package going through a policy's rings: how far it may go (the last
    ring allowed to take it), and whether it was halted. The first ring needs no row."""

    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    policy_id: Mapped[int] = mapped_column(Integer, ForeignKey("policies.id", ondelete="CASCADE"))
    package_identifier: Mapped[str] = mapped_column(String(256))
    source: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(128))
    ring_position: Mapped[int] = mapped_column(Integer, default=0)
    halted_at: Mapped[datetime | None]
    halted_reason: Mapped[str] = mapped_column(String(500), default="")
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(128))

    __table_args__ = (UniqueConstraint("policy_id", "package_identifier", "source", "version"),)


class AgentTarget(Base):
    """The agent version the fleet (``group_id`` null) or a group's devices are to run. The
    scheduler moves the devices below it there (UPDATE_AGENT), ``at_once`` at a time, and
    halts the target once ``halt_after_failures`` of its updates failed; setting it again
    resumes it. A device in a targeted group follows its group's target (the newest, if
    several), not the fleet's."""

    __tablename__ = "agent_targets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(32), unique=True)
    """``fleet`` or ``group:<id>``: one target each."""
    group_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("device_groups.id", ondelete="CASCADE")
    )
    version: Mapped[str] = mapped_column(String(64))
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    """Devices running a newer agent go back to this version too."""
    at_once: Mapped[int] = mapped_column(Integer)
    halt_after_failures: Mapped[int] = mapped_column(Integer)
    halted_at: Mapped[datetime | None]
    halt_reason: Mapped[str] = mapped_column(String(500), default="")
    set_by: Mapped[str] = mapped_column(String(128))
    set_at: Mapped[datetime]
    """Failures count from here: setting a target again starts its count afresh."""
