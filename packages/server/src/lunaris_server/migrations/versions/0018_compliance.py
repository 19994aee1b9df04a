"""Compliance: each policy's SLA (days an update may wait before its device is overdue), and
the daily history of the compliance figures, for the fleet and each group.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column added in place (no table rebuild on SQLite): every policy so far has
    # no SLA.
    op.add_column("policies", sa.Column("sla_days", sa.Integer(), nullable=True))
    op.create_table(
        "compliance_daily",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.Column("compliant", sa.Integer(), nullable=False),
        sa.Column("overdue", sa.Integer(), nullable=False),
        sa.Column("waiting", sa.Integer(), nullable=False),
        sa.Column("age_0_7", sa.Integer(), nullable=False),
        sa.Column("age_8_30", sa.Integer(), nullable=False),
        sa.Column("age_over_30", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["device_groups.id"],
            name=op.f("fk_compliance_daily_group_id_device_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compliance_daily")),
    )
    op.create_index(
        "uq_compliance_daily_day_scope",
        "compliance_daily",
        ["day", sa.text("coalesce(group_id, 0)")],
        unique=True,
    )
    op.create_index("ix_compliance_daily_group_id", "compliance_daily", ["group_id"])


def downgrade() -> None:
    op.drop_index("ix_compliance_daily_group_id", table_name="compliance_daily")
    op.drop_index("uq_compliance_daily_day_scope", table_name="compliance_daily")
    op.drop_table("compliance_daily")
    op.execute("ALTER TABLE policies DROP COLUMN sla_days")
