from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from lunaris_server.db import Base


class DeviceUpdate(Base):
    """An update winget shows as waiting on a device.

    One row per (device, package, source, installed version): winget can list one id twice
    (two installs); exact duplicates collapse into one row with an instance count.
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

    __table_args__ = (Index("ix_device_updates_package", "package_identifier", "source"),)


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
    command_id: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (
        Index("ix_update_events_device_at", "device_id", "at"),
        Index("ix_update_events_at_kind", "at", "kind"),
    )
