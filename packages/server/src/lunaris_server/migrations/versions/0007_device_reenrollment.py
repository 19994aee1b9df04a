"""Re-enrolling a known device needs proof: when the device first used a token, whether a
revocation blocks enrolling it again, and the requests an admin approves or refuses.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ADD/DROP COLUMN, not batch mode: on SQLite a batch rebuilds the table, which would
# lose the device list's partial expression index (SQLite has both since 3.35).
_COLUMNS: tuple[sa.Column[object], ...] = (
    sa.Column("token_used_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("reenrollment_blocked", sa.Boolean(), nullable=False, server_default=sa.false()),
)


def upgrade() -> None:
    for column in _COLUMNS:
        op.add_column("devices", column)
    op.create_table(
        "device_reenrollments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("os_version", sa.String(length=512), nullable=False),
        sa.Column("agent_version", sa.String(length=128), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("enrollment_secret_id", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_reenrollments_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_reenrollments")),
        sa.UniqueConstraint(
            "device_id", "key_hash", name=op.f("uq_device_reenrollments_device_id")
        ),
    )
    op.create_index(
        "ix_device_reenrollments_status",
        "device_reenrollments",
        ["status", "device_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_device_reenrollments_status", table_name="device_reenrollments")
    op.drop_table("device_reenrollments")
    for column in reversed(_COLUMNS):
        op.execute(f"ALTER TABLE devices DROP COLUMN {column.name}")
