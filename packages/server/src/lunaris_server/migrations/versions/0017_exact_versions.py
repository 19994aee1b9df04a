"""Exact-version installs: the version a command installs of each package, the end of the
maintenance window a policy's command must not start an install after, what each agent says
it understands (its capabilities), each PC's own time zone (windows in local time), and when
it last started, to tell when a restart an install asked for has happened (reboot pending).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("commands", sa.Column("versions", sa.JSON(), nullable=True))
    op.add_column("commands", sa.Column("window_ends_at", sa.DateTime(timezone=True)))
    op.add_column(
        "devices",
        sa.Column("agent_capabilities", sa.String(length=512), server_default="", nullable=False),
    )
    op.add_column("devices", sa.Column("time_zone", sa.String(length=64), nullable=True))
    op.add_column(
        "policies", sa.Column("local_time", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column("devices", sa.Column("booted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "devices", sa.Column("reboot_pending_since", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch would copy the tables, and cannot reflect
    # their expression indexes.
    op.execute("ALTER TABLE policies DROP COLUMN local_time")
    op.execute("ALTER TABLE devices DROP COLUMN reboot_pending_since")
    op.execute("ALTER TABLE devices DROP COLUMN booted_at")
    op.execute("ALTER TABLE devices DROP COLUMN time_zone")
    op.execute("ALTER TABLE devices DROP COLUMN agent_capabilities")
    op.execute("ALTER TABLE commands DROP COLUMN window_ends_at")
    op.execute("ALTER TABLE commands DROP COLUMN versions")
