"""The software inventory: what ``winget list`` shows on each device, and the fleet's
counts of it (kept by the inventory diff in the same transaction, like the updates')."""

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from lunaris_server.core.versions import MAX_SORT_KEY
from lunaris_server.db import Base

VersionKey = String(MAX_SORT_KEY).with_variant(String(MAX_SORT_KEY, collation="C"), "postgresql")
"""``core.versions.sort_key``: compared bytewise, which is SQLite's default and ``"C"`` on
PostgreSQL (a language's collation would skip the punctuation the key is made of)."""


class DeviceSoftware(Base):
    """One installed app on a device. One row per (device, package, source, version, scope,
    user): winget can list one id twice (two versions side by side, for the machine and in
    users' profiles); exact duplicates collapse into one row with an instance count."""

    __tablename__ = "device_software"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("devices.id", ondelete="CASCADE"), index=True
    )
    package_identifier: Mapped[str] = mapped_column(String(256))
    name: Mapped[str] = mapped_column(String(512))
    version: Mapped[str] = mapped_column(String(128))
    version_key: Mapped[str] = mapped_column(VersionKey)
    source: Mapped[str | None] = mapped_column(String(64))
    truncated: Mapped[bool] = mapped_column(Boolean)
    instances: Mapped[int] = mapped_column(Integer)
    first_seen_at: Mapped[datetime]
    scope: Mapped[str] = mapped_column(String(8), server_default="machine")
    """``machine``, or ``user``: installed into ``user_account``'s profile."""
    user_account: Mapped[str] = mapped_column(String(256), server_default="")
    """The account (``DOMAIN\\name``) of a ``user`` row; empty for the machine's."""

    __table_args__ = (
        # A version range of one package ("Notepad++.Notepad++ < 8.8"): its devices, oldest
        # version first, a page at a time.
        Index("ix_device_software_package_version", "package_identifier", "version_key", "id"),
    )


class DeviceInventory(Base):
    """A device's last inventory: when, the digest of the list stored (a report repeating it
    sends only the digest), and the last failure of ``winget list``."""

    __tablename__ = "device_inventories"

    device_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    digest: Mapped[str | None] = mapped_column(String(64))
    """None once anything but a report changed the rows: the next report sends its list."""
    apps: Mapped[int] = mapped_column(Integer)
    reported_at: Mapped[datetime | None]
    """The last report that said what is installed (sent in full or as a known digest)."""
    changed_at: Mapped[datetime | None]
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(String(4000))
    error_at: Mapped[datetime | None]


class SoftwareTitle(Base):
    """How many devices (enrolled, not revoked) have a package installed, in any version."""

    __tablename__ = "software_titles"

    package_identifier: Mapped[str] = mapped_column(String(256), primary_key=True)
    name: Mapped[str] = mapped_column(String(512))
    """As the first device to report it named it."""
    devices: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        # The Software page's order, most installed first: a page is its first rows (by
        # devices alone the ties were sorted, half a million titles read for 50).
        Index("ix_software_titles_devices", devices.desc(), package_identifier),
        Index("ix_software_titles_folded", func.lower(package_identifier)),
        # "Id or name contains" on PostgreSQL (pg_trgm, where migration 0003 could install
        # it): a fleet has hundreds of thousands of titles, most of them one PC's ARP entries,
        # and scanning them all took 0.2 to 0.5 s a search. Elsewhere the search scans.
        Index(
            "ix_software_titles_id_trgm",
            func.lower(package_identifier).label("id_folded"),
            postgresql_using="gin",
            postgresql_ops={"id_folded": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
        Index(
            "ix_software_titles_name_trgm",
            func.lower(name).label("name_folded"),
            postgresql_using="gin",
            postgresql_ops={"name_folded": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )


class SoftwareVersion(Base):
    """How many devices have one version of a package: the spread of versions."""

    __tablename__ = "software_versions"

    package_identifier: Mapped[str] = mapped_column(String(256), primary_key=True)
    version: Mapped[str] = mapped_column(String(128), primary_key=True)
    version_key: Mapped[str] = mapped_column(VersionKey)
    devices: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_software_versions_package_key", "package_identifier", "version_key"),
    )
