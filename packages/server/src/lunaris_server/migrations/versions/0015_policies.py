"""Policies: maintenance windows, rings of groups, the scheduler's ticks and the versions it
queued, when each version was first seen, and each version's rollout through the rings.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "package_versions_seen",
        sa.Column("package_identifier", sa.String(length=256), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "package_identifier", "source", "version", name=op.f("pk_package_versions_seen")
        ),
    )
    op.create_table(
        "policies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("window_days", sa.JSON(), nullable=True),
        sa.Column("window_start", sa.String(length=5), nullable=True),
        sa.Column("window_minutes", sa.Integer(), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("deferral_days", sa.Integer(), nullable=False),
        sa.Column("max_concurrent", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policies")),
    )
    op.create_table(
        "scheduler_ticks",
        sa.Column("tick", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("process", sa.String(length=64), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tick", name=op.f("pk_scheduler_ticks")),
    )
    op.create_index("ix_policies_name_folded", "policies", [sa.text("lower(name)")], unique=True)
    op.create_table(
        "policy_rings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("soak_hours", sa.Integer(), nullable=False),
        sa.Column("min_devices", sa.Integer(), nullable=False),
        sa.Column("min_success_percent", sa.Integer(), nullable=False),
        sa.Column("halt_failure_percent", sa.Integer(), nullable=True),
        sa.Column("max_concurrent", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["device_groups.id"],
            name=op.f("fk_policy_rings_group_id_device_groups"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["policies.id"],
            name=op.f("fk_policy_rings_policy_id_policies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_rings")),
        sa.UniqueConstraint("policy_id", "position", name=op.f("uq_policy_rings_policy_id")),
    )
    with op.batch_alter_table("policy_rings", schema=None) as batch_op:
        batch_op.create_index("ix_policy_rings_group_id", ["group_id"], unique=False)

    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=False),
        sa.Column("package_identifier", sa.String(length=256), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("ring_position", sa.Integer(), nullable=False),
        sa.Column("halted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("halted_reason", sa.String(length=500), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["policies.id"],
            name=op.f("fk_rollouts_policy_id_policies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollouts")),
        sa.UniqueConstraint(
            "policy_id",
            "package_identifier",
            "source",
            "version",
            name=op.f("uq_rollouts_policy_id"),
        ),
    )
    op.create_table(
        "policy_installs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("package_identifier", sa.String(length=256), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=True),
        sa.Column("ring_position", sa.Integer(), nullable=False),
        sa.Column("command_id", sa.String(length=36), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["command_id"],
            ["commands.id"],
            name=op.f("fk_policy_installs_command_id_commands"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_policy_installs_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["policies.id"],
            name=op.f("fk_policy_installs_policy_id_policies"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_installs")),
        sa.UniqueConstraint(
            "device_id",
            "package_identifier",
            "source",
            "version",
            name=op.f("uq_policy_installs_device_id"),
        ),
    )
    with op.batch_alter_table("policy_installs", schema=None) as batch_op:
        batch_op.create_index("ix_policy_installs_command_id", ["command_id"], unique=False)
        batch_op.create_index(
            "ix_policy_installs_policy",
            ["policy_id", "package_identifier", "version"],
            unique=False,
        )

    op.create_index(
        "ix_device_updates_package_folded",
        "device_updates",
        [sa.text("lower(package_identifier)")],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_device_updates_package_folded", table_name="device_updates")
    op.drop_index("ix_policies_name_folded", table_name="policies")
    with op.batch_alter_table("policy_installs", schema=None) as batch_op:
        batch_op.drop_index("ix_policy_installs_policy")
        batch_op.drop_index("ix_policy_installs_command_id")

    op.drop_table("policy_installs")
    op.drop_table("rollouts")
    with op.batch_alter_table("policy_rings", schema=None) as batch_op:
        batch_op.drop_index("ix_policy_rings_group_id")

    op.drop_table("policy_rings")
    op.drop_table("scheduler_ticks")
    op.drop_table("policies")
    op.drop_table("package_versions_seen")
