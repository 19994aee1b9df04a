"""Deployments: commands queued together (a bulk action), with the command of a deployment
that a retry replaces; and the ``partial`` status, which needs no change to the schema (a
command's status is a string).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NO_REFERRED = {"resolve_fks": False}


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("packages", sa.JSON(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=True),
        sa.Column("selection", sa.JSON(), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("skipped_busy", sa.Integer(), nullable=False),
        sa.Column("skipped_up_to_date", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
    )
    op.create_index("ix_deployments_created_at", "deployments", ["created_at"], unique=False)
    op.create_index(
        "ix_deployments_kind_created_at", "deployments", ["kind", "created_at"], unique=False
    )
    # SQLite cannot add a constraint to a table: batch mode rebuilds it (rows, indexes and
    # the device foreign key included); PostgreSQL alters it in place. The new columns are
    # null for every command queued before: none of them belongs to a deployment.
    with op.batch_alter_table("commands", reflect_kwargs=_NO_REFERRED) as batch_op:
        batch_op.add_column(sa.Column("deployment_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("retry_of", sa.String(length=36), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_commands_deployment_id_deployments"),
            "deployments",
            ["deployment_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            op.f("fk_commands_retry_of_commands"),
            "commands",
            ["retry_of"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(
            "ix_commands_deployment_id_status", ["deployment_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_commands_deployment_id_created_at", ["deployment_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_commands_retry_of", ["retry_of"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("commands", reflect_kwargs=_NO_REFERRED) as batch_op:
        batch_op.drop_index("ix_commands_retry_of")
        batch_op.drop_index("ix_commands_deployment_id_created_at")
        batch_op.drop_index("ix_commands_deployment_id_status")
        batch_op.drop_constraint(op.f("fk_commands_retry_of_commands"), type_="foreignkey")
        batch_op.drop_constraint(op.f("fk_commands_deployment_id_deployments"), type_="foreignkey")
        batch_op.drop_column("retry_of")
        batch_op.drop_column("deployment_id")
    # A partial command was a failed one before: nothing installed all it was asked to.
    op.execute(sa.text("UPDATE commands SET status = 'failed' WHERE status = 'partial'"))
    op.drop_index("ix_deployments_kind_created_at", table_name="deployments")
    op.drop_index("ix_deployments_created_at", table_name="deployments")
    op.drop_table("deployments")
