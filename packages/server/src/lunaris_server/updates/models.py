from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from lunaris_server.db import Base


class DeviceUpdate(Base):
    """An update winget shows as waiting on a device.

    One row per (device, package, source, installed version, scope, user): winget can list
    one id twice (two installs), for the machine and in users' profiles; exact duplicates
    collapse into one row with an instance count.
    """

    __tablename__ = "device_updates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("devices.id", ondelete="CASCADE"), index=True
    )
    package_identifier: Mapped[str] = mapped_column(String(256))
    name: Mapped[str] = mapped_column(String(512))
    installed_version: Mapped[str] = mapped_column(String(128))
    available_version: Mapped[str] = mapped_column(String(128))
    source: Mapped[str | None] = mapped_column(String(64))
    explicit_targeting: Mapped[bool] = mapped_column(Boolean, default=False)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    instances: Mapped[int] = mapped_column(Integer, default=1)
    first_seen_at: Mapped[datetime]
    scope: Mapped[str] = mapped_column(String(8), server_default="machine")
    """``machine``, or ``user``: installed into ``user_account``'s profile."""
    user_account: Mapped[str] = mapped_column(String(256), server_default="")
    """The account (``DOMAIN\\name``) of a ``user`` row; empty for the machine's."""

    __table_args__ = (
        Index("ix_device_updates_package", "package_identifier", "source"),
        # The updates a package rule names (ids compare case-folded): the scheduler's reads.
        Index("ix_device_updates_package_folded", func.lower(package_identifier)),
    )


class UpdateEvent(Base):
    """History of a device's updates. ``from_version``/``to_version`` are the update's
    installed and available versions (after the change; before it for ``resolved``)."""

    __tablename__ = "update_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(36), ForeignKey("devices.id", ondelete="CASCADE"))
    package_identifier: Mapped[str] = mapped_column(String(256))
    source: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    from_version: Mapped[str | None] = mapped_column(String(128))
    to_version: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime]
    command_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("commands.id", ondelete="SET NULL")
    )
    """The command that installed it (``install_*`` events); the history outlives the command."""

    __table_args__ = (
        Index("ix_update_events_device_at", "device_id", "at"),
        Index("ix_update_events_at_kind", "at", "kind"),
        # A command's history (its detail page); also what deleting a command looks up.
        Index("ix_update_events_command_id", "command_id"),
    )


# Fleet-wide figures kept by the report diff in the same transaction as the rows they count
# (see ``fleet_counts``), so the console reads a few small rows instead of aggregating every
# device's updates on each request. ``source`` is "" where winget showed none: a key column
# cannot be NULL.


class FleetPackage(Base):
    """How many devices wait for a package (a device with two installs counts once)."""

    __tablename__ = "fleet_packages"

    package_identifier: Mapped[str] = mapped_column(String(256), primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    devices: Mapped[int] = mapped_column(Integer)


class FleetVariant(Base):
    """How many waiting rows share one package, source, versions, name and flags: the
    details the fleet table shows (installed versions, newest available, name, flags).

    Keyed by a hash of those columns, which together are too long for a unique index."""

    __tablename__ = "fleet_variants"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    package_identifier: Mapped[str] = mapped_column(String(256))
    source: Mapped[str] = mapped_column(String(64))
    installed_version: Mapped[str] = mapped_column(String(128))
    available_version: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(512))
    explicit_targeting: Mapped[bool] = mapped_column(Boolean)
    truncated: Mapped[bool] = mapped_column(Boolean)
    rows: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_fleet_variants_package", "package_identifier", "source"),)


class UpdateActivity(Base):
    """Updates detected and resolved per UTC day, for the dashboard's chart. A day has up to
    ``fleet_counts.ACTIVITY_SHARDS`` rows (by device), so concurrent reports seldom wait
    for the same counter row; readers add them up."""

    __tablename__ = "update_activity"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    detected: Mapped[int] = mapped_column(Integer)
    resolved: Mapped[int] = mapped_column(Integer)


class PackageRule(Base):
    """How Lunaris treats a package's updates: fleet-wide or for one group, for one package
    (``package`` an exact id, ``source`` one source or any) or an id glob (``*``). The most
    specific matching rule decides (updates/rules.py has the order)."""

    __tablename__ = "package_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("device_groups.id", ondelete="RESTRICT")
    )
    """None: the whole fleet. A group in use by a rule cannot be deleted."""
    package: Mapped[str] = mapped_column(String(256))
    """An exact package id, or a glob with ``*`` (``Microsoft.VisualStudio.*``)."""
    source: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(8))
    """``auto``, ``manual`` or ``ignore``."""
    version_constraint: Mapped[str | None] = mapped_column(String(128))
    skip_version: Mapped[str | None] = mapped_column(String(128))
    """One available version not to install (a known-bad release), until a newer appears."""
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(128))

    __table_args__ = (Index("ix_package_rules_group_id", "group_id"),)
