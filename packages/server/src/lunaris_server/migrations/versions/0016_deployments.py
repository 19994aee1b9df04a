"""Deployments: commands queued together (a bulk action); each command's deployment and the
command of it a retry replaces. The ``partial`` status needs no change to the schema (a
command's status is a string).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


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
    # Plain columns, no foreign keys, added in place (as devices.merged_into_id in 0012). On
    # SQLite a constraint means rebuilding the table (batch mode), and dropping the old
    # commands table, foreign keys on, would delete every command's results (ON DELETE
    # CASCADE) and unlink its history (SET NULL); a reference added with the column is one
    # SQLAlchemy cannot read back. Nothing deletes a deployment, and a retry refers to a
    # command of its own deployment. Null for every command queued before: none of them
    # belongs to a deployment.
    op.add_column("commands", sa.Column("deployment_id", sa.String(length=36), nullable=True))
    op.add_column("commands", sa.Column("retry_of", sa.String(length=36), nullable=True))
    op.create_index(
        "ix_commands_deployment_id_status", "commands", ["deployment_id", "status"], unique=False
    )
    op.create_index(
        "ix_commands_deployment_id_created_at",
        "commands",
        ["deployment_id", "created_at"],
        unique=False,
    )
    op.create_index("ix_commands_retry_of", "commands", ["retry_of"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_commands_retry_of", table_name="commands")
    op.drop_index("ix_commands_deployment_id_created_at", table_name="commands")
    op.drop_index("ix_commands_deployment_id_status", table_name="commands")
    op.execute("ALTER TABLE commands DROP COLUMN retry_of")
    op.execute("ALTER TABLE commands DROP COLUMN deployment_id")
    # A partial command was a failed one before: nothing installed all it was asked to.
    op.execute(sa.text("UPDATE commands SET status = 'failed' WHERE status = 'partial'"))
    op.drop_index("ix_deployments_kind_created_at", table_name="deployments")
    op.drop_index("ix_deployments_created_at", table_name="deployments")
    op.drop_table("deployments")
