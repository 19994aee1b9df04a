"""Agent targets: the agent version the fleet or a group is to run (policies/agent_targets.py).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lunaris_server.db.base import UTCDateTime

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_targets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("at_once", sa.Integer(), nullable=False),
        sa.Column("halt_after_failures", sa.Integer(), nullable=False),
        sa.Column("halted_at", UTCDateTime(), nullable=True),
        sa.Column("halt_reason", sa.String(500), nullable=False),
        sa.Column("set_by", sa.String(128), nullable=False),
        sa.Column("set_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["device_groups.id"],
            name=op.f("fk_agent_targets_group_id_device_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_targets")),
        sa.UniqueConstraint("scope", name=op.f("uq_agent_targets_scope")),
    )


def downgrade() -> None:
    op.drop_table("agent_targets")
