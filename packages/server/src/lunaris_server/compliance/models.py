from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, func
from sqlalchemy.orm import Mapped, mapped_column

from lunaris_server.db import Base


class ComplianceDay(Base):
    """The compliance figures of one UTC day, for the fleet (``group_id`` null) or one group:
    written once a day (compliance/history.py), kept 400 days, charted by the dashboard."""

    __tablename__ = "compliance_daily"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date)
    group_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("device_groups.id", ondelete="CASCADE")
    )
    taken_at: Mapped[datetime]
    devices: Mapped[int] = mapped_column(Integer)
    compliant: Mapped[int] = mapped_column(Integer)
    """Devices with no waiting update that a rule does not ignore."""
    not_scanned: Mapped[int] = mapped_column(Integer, server_default="0")
    """Devices with no scan that worked yet (not compliant); 0 in rows from before it."""
    overdue: Mapped[int] = mapped_column(Integer)
    waiting: Mapped[int] = mapped_column(Integer)
    """Waiting updates (device x package rows) that a rule does not ignore."""
    age_0_7: Mapped[int] = mapped_column(Integer)
    age_8_30: Mapped[int] = mapped_column(Integer)
    age_over_30: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        # One row per day and scope, the fleet's too (a NULL would never conflict): what
        # makes a second writer's ``INSERT ... ON CONFLICT DO NOTHING`` insert nothing.
        Index("uq_compliance_daily_day_scope", day, func.coalesce(group_id, 0), unique=True),
        Index("ix_compliance_daily_group_id", group_id),
    )
