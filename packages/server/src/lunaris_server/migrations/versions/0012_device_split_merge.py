"""Splitting a cloned identity into two devices, and merging a reimaged PC's new record into
its old one.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD/DROP COLUMN (see 0007): a batch would rebuild the table and lose its indexes.
    op.add_column(
        "devices",
        sa.Column("split_pending", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("devices", sa.Column("merged_into_id", sa.String(length=36), nullable=True))
    op.create_table(
        "device_splits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("new_device_id", sa.String(length=36), nullable=True),
        sa.Column("handed_over_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_splits_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_splits")),
    )
    op.create_index(
        "ix_device_splits_device_id_status", "device_splits", ["device_id", "status"], unique=False
    )
    op.create_index(
        "ix_device_splits_new_device_id", "device_splits", ["new_device_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_device_splits_new_device_id", table_name="device_splits")
    op.drop_index("ix_device_splits_device_id_status", table_name="device_splits")
    op.drop_table("device_splits")
    op.execute("ALTER TABLE devices DROP COLUMN merged_into_id")
    op.execute("ALTER TABLE devices DROP COLUMN split_pending")
