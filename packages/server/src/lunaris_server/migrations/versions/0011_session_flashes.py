"""Session flashes: what a console page shows once after a form's redirect (a new secret),
sealed, kept for minutes at most.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "session_flashes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("page", sa.String(length=32), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["user_sessions.id"],
            name=op.f("fk_session_flashes_session_id_user_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_flashes")),
    )
    op.create_index(
        op.f("ix_session_flashes_session_id"), "session_flashes", ["session_id"], unique=False
    )
    op.create_index(
        op.f("ix_session_flashes_expires_at"), "session_flashes", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_session_flashes_expires_at"), table_name="session_flashes")
    op.drop_index(op.f("ix_session_flashes_session_id"), table_name="session_flashes")
    op.drop_table("session_flashes")
