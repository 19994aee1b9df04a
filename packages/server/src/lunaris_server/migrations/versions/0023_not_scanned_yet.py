"""Not scanned yet: a device's last scan that worked (``devices.last_good_scan_at``), and the
devices without one in the daily compliance rows (``compliance_daily.not_scanned``).

Existing devices whose last scan worked take its time. A device whose last scan failed
but that has waiting updates scanned well before (rows come only from good scans): the time
of the failed scan stands in. A device whose last scan failed with no rows may never have
scanned well: it stays "not scanned yet" until its next good scan.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lunaris_server.db.base import UTCDateTime

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("devices", sa.Column("last_good_scan_at", UTCDateTime(), nullable=True))
    op.execute(
        "UPDATE devices SET last_good_scan_at = last_scan_at WHERE last_scan_at IS NOT NULL"
        " AND (scan_error_at IS NULL"
        " OR EXISTS (SELECT 1 FROM device_updates WHERE device_updates.device_id = devices.id))"
    )
    op.add_column(
        "compliance_daily",
        sa.Column("not_scanned", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.execute("ALTER TABLE compliance_daily DROP COLUMN not_scanned")
    op.execute("ALTER TABLE devices DROP COLUMN last_good_scan_at")
