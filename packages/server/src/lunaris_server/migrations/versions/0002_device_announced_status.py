"""Devices remember the status last announced to consoles (offline sweeper).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "announced_status", sa.String(length=16), nullable=False, server_default="online"
            )
        )
        batch_op.create_index(
            "ix_devices_announced_status_last_seen_at",
            ["announced_status", "last_seen_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index("ix_devices_announced_status_last_seen_at")
        batch_op.drop_column("announced_status")
