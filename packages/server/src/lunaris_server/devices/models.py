from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from lunaris_server.db import Base


def capability_text(capabilities: list[str]) -> str:
    """How a device keeps its agent's capabilities (``Device.agent_capabilities``): each once,
    sorted, comma-separated; the protocol's bounds keep it within the column."""
    return ",".join(sorted(set(capabilities)))


class Device(Base):
    """A PC running the agent. ``id`` is the UUID the agent made for itself (canonical text)."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    os_version: Mapped[str] = mapped_column(String(512), default="")
    agent_version: Mapped[str] = mapped_column(String(128), default="")
    agent_capabilities: Mapped[str] = mapped_column(String(512), server_default="")
    """What its agent said it understands, sorted and comma-separated (``exact_versions,...``,
    see ``lunaris_protocol.Capability``); empty for agents built before capabilities. Set
    whenever a device registers; rows written before it existed (and bulk inserts) take the
    server default."""

    time_zone: Mapped[str | None] = mapped_column(String(64))
    """The PC's IANA time zone as its agent reports it (null from agents that do not): a
    policy with windows in each device's local time opens them by it."""
    booted_at: Mapped[datetime | None]
    """When the PC last started, as its agent reports it."""
    reboot_pending_since: Mapped[datetime | None]
    """An install on it asked for a restart then (``reboot_required``), or its agent said
    Windows waits for one, and the PC has not started since. Lunaris never restarts a PC
    itself: it says so, and a later boot clears it."""
    logged_on_user: Mapped[str | None] = mapped_column(String(256))
    """Who is logged on at the PC's console (``CONTOSO\\anna``), as its agent last said;
    empty when nobody is, null from agents that do not say."""
    ip_addresses: Mapped[str | None] = mapped_column(String(736))
    """The PC's own addresses, sorted and comma-separated (see ``devices.facts``)."""
    model: Mapped[str | None] = mapped_column(String(128))
    manufacturer: Mapped[str | None] = mapped_column(String(128))
    serial_number: Mapped[str | None] = mapped_column(String(128))

    @property
    def addresses(self) -> list[str]:
        return [address for address in (self.ip_addresses or "").split(",") if address]

    @property
    def capabilities(self) -> list[str]:
        return [name for name in self.agent_capabilities.split(",") if name]

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    enrolled_at: Mapped[datetime]
    enrollment_secret_id: Mapped[int | None] = mapped_column(Integer)
    last_seen_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # When the device first made an authenticated call (with any of its tokens). Until then,
    # and for a short while after enrolling, its id may register again without proof: the
    # answer that carried its token may have been lost (see devices/registration.py).
    token_used_at: Mapped[datetime | None]
    # Where the device last spoke from, and its last changes of address and hostname: one
    # identity heartbeating from two PCs in alternation is flagged (see devices/clones.py).
    last_ip: Mapped[str | None] = mapped_column(String(64))
    previous_ip: Mapped[str | None] = mapped_column(String(64))
    ip_changed_at: Mapped[datetime | None]
    previous_hostname: Mapped[str | None] = mapped_column(String(255))
    hostname_changed_at: Mapped[datetime | None]
    clone_suspected_at: Mapped[datetime | None]
    clone_evidence: Mapped[str | None] = mapped_column(String(600))
    split_pending: Mapped[bool] = mapped_column(Boolean, server_default=false())
    """An admin split this cloned identity and the other PC has not taken its own yet: its
    heartbeats are looked at (devices/splits.py), none is answered from a cache. Set when a
    device is created; rows written before it existed (and bulk inserts) take the default."""
    merged_into_id: Mapped[str | None] = mapped_column(String(36))
    """This record was merged into that device (a reimaged PC enrolled anew): its history
    moved there, and it is kept revoked so its links lead on (see devices/merge.py)."""
    reenrollment_blocked: Mapped[bool] = mapped_column(Boolean, server_default=false())
    """Revoked with "block": no enrollment secret brings it back. Set whenever a token is
    issued; rows written before it existed (and bulk inserts) take the server default."""
    # The status last announced to consoles. Liveness is derived from last_seen_at; this
    # column only lets the sweeper (and a heartbeat) announce each transition exactly once.
    announced_status: Mapped[str] = mapped_column(
        String(16), default="online", server_default="online"
    )
    # Kept by the update-report diff so lists, filters and sorts need no join.
    updates_count: Mapped[int] = mapped_column(Integer, default=0)
    last_scan_at: Mapped[datetime | None]
    """Its last scan report, good or failed."""
    last_good_scan_at: Mapped[datetime | None]
    """Its last scan that worked; null until one did: the device is "not scanned yet", in the
    list, its filters, the dashboard and compliance (which counts it as not compliant)."""
    scan_error_code: Mapped[str | None] = mapped_column(String(64))
    scan_error_message: Mapped[str | None] = mapped_column(Text)
    scan_error_at: Mapped[datetime | None]

    __table_args__ = (
        # The list's default order (case-folded hostname, then id), read in index order. Only
        # listed (not revoked) devices: SQLite then skips entries without reading their rows.
        # The hostname rides along on PostgreSQL, which can then skip a page's offset by an
        # index-only scan (it cannot take lower(hostname) from the expression alone).
        Index(
            "ix_devices_hostname_folded",
            func.lower(hostname),
            id,
            postgresql_include=["hostname"],
            postgresql_where=text("revoked_at IS NULL"),
            sqlite_where=text("revoked_at IS NULL"),
        ),
        # "Hostname contains" search on PostgreSQL (pg_trgm); migration 0003 creates it
        # where the extension is available, elsewhere the search scans the devices.
        Index(
            "ix_devices_hostname_trgm",
            func.lower(hostname).label("hostname_folded"),
            postgresql_using="gin",
            postgresql_ops={"hostname_folded": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
        Index("ix_devices_last_seen_at", "last_seen_at"),
        Index("ix_devices_updates_count", "updates_count"),
        Index("ix_devices_announced_status_last_seen_at", "announced_status", "last_seen_at"),
    )


class DeviceReenrollment(Base):
    """A registration for a known, enrolled device id that came without proof: it waits for an
    admin's approval. ``key_hash`` is the hash of a key the asking agent made and sends with
    every attempt, so an approval admits that agent and nobody else."""

    __tablename__ = "device_reenrollments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(36), ForeignKey("devices.id", ondelete="CASCADE"))
    key_hash: Mapped[str] = mapped_column(String(64))
    hostname: Mapped[str] = mapped_column(String(255))
    os_version: Mapped[str] = mapped_column(String(512))
    agent_version: Mapped[str] = mapped_column(String(128))
    ip: Mapped[str | None] = mapped_column(String(64))
    enrollment_secret_id: Mapped[int | None] = mapped_column(Integer)
    requested_at: Mapped[datetime]
    last_attempt_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    """``pending``, ``approved`` (the next attempt with the key registers), ``refused``,
    ``completed``."""
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("device_id", "key_hash"),
        Index("ix_device_reenrollments_status", "status", "device_id"),
    )


class SplitStatus(StrEnum):
    PENDING = "pending"
    """Waiting for the other PC's next heartbeat."""
    HANDED_OVER = "handed_over"
    """The other PC was given its own identity; done once it speaks with it."""
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class DeviceSplit(Base):
    """An admin's decision that a device flagged as cloned is two PCs: the one that speaks
    with this ``hostname`` (or from this ``address``, for clones that share a hostname) is
    given an identity of its own at its next heartbeat (see devices/splits.py)."""

    __tablename__ = "device_splits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(36), ForeignKey("devices.id", ondelete="CASCADE"))
    hostname: Mapped[str | None] = mapped_column(String(255))
    address: Mapped[str | None] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(128))
    requested_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    new_device_id: Mapped[str | None] = mapped_column(String(36))
    handed_over_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_device_splits_device_id_status", "device_id", "status"),
        Index("ix_device_splits_new_device_id", "new_device_id"),
    )


class TagSource(StrEnum):
    """Who set a tag. A PC can claim any agent tag (its config is the PC's to change), so a
    group's rule says which kind it trusts."""

    ADMIN = "admin"
    AGENT = "agent"


class DeviceTag(Base):
    __tablename__ = "device_tags"

    device_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    source: Mapped[str] = mapped_column(String(8), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)

    # The devices with a tag (a group's rule, the list's tag filter), by index alone.
    __table_args__ = (Index("ix_device_tags_tag_source", "tag", "source", "device_id"),)


class DeviceGroup(Base):
    """A saved set of devices: those its rule matches (every criterion given must hold), and
    those listed explicitly (see devices/groups.py). Membership is never stored for the rule's
    part: it is asked of the database each time, so it is always current."""

    __tablename__ = "device_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(String(1000), default="")
    hostname_glob: Mapped[str | None] = mapped_column(String(255))
    os_contains: Mapped[str | None] = mapped_column(String(255))
    tags: Mapped[list[str] | None] = mapped_column(JSON)
    tags_match: Mapped[str] = mapped_column(String(8), default="any")
    """``any`` or ``all`` of ``tags``."""
    tag_source: Mapped[str] = mapped_column(String(8), default="any")
    """Which tags count: ``admin``, ``agent`` or ``any`` (either kind)."""
    enrollment_secret_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(128))

    __table_args__ = (Index("ix_device_groups_name_folded", func.lower(name), unique=True),)


class DeviceGroupMember(Base):
    """A device listed in a group explicitly, whatever the group's rule says."""

    __tablename__ = "device_group_members"

    group_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("device_groups.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    added_at: Mapped[datetime]
    added_by: Mapped[str] = mapped_column(String(128))

    __table_args__ = (Index("ix_device_group_members_device_id", "device_id"),)
