"""Device tags (set by admins and by the agent's config) and device groups (a saved rule and
an explicit list).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "device_tags",
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_tags_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", "source", "tag", name=op.f("pk_device_tags")),
    )
    op.create_index(
        "ix_device_tags_tag_source", "device_tags", ["tag", "source", "device_id"], unique=False
    )
    op.create_table(
        "device_groups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("hostname_glob", sa.String(length=255), nullable=True),
        sa.Column("os_contains", sa.String(length=255), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("tags_match", sa.String(length=8), nullable=False),
        sa.Column("tag_source", sa.String(length=8), nullable=False),
        sa.Column("enrollment_secret_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_groups")),
    )
    op.create_index(
        "ix_device_groups_name_folded",
        "device_groups",
        [sa.text("lower(name)")],
        unique=True,
    )
    op.create_table(
        "device_group_members",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_group_members_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["device_groups.id"],
            name=op.f("fk_device_group_members_group_id_device_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "device_id", name=op.f("pk_device_group_members")),
    )
    op.create_index(
        "ix_device_group_members_device_id", "device_group_members", ["device_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_device_group_members_device_id", table_name="device_group_members")
    op.drop_table("device_group_members")
    op.drop_index("ix_device_groups_name_folded", table_name="device_groups")
    op.drop_table("device_groups")
    op.drop_index("ix_device_tags_tag_source", table_name="device_tags")
    op.drop_table("device_tags")
