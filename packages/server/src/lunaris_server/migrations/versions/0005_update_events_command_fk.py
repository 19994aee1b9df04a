"""update_events.command_id: a foreign key to commands (ON DELETE SET NULL) and an index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NO_REFERRED = {"resolve_fks": False}


def upgrade() -> None:
    # The column predates the commands table: an id that names no command would fail the
    # constraint. The event itself stays; only the dangling link goes.
    op.execute(
        sa.text(
            "UPDATE update_events SET command_id = NULL "
            "WHERE command_id IS NOT NULL AND command_id NOT IN (SELECT id FROM commands)"
        )
    )
    # SQLite cannot add a constraint to a table: batch mode rebuilds it (rows, indexes and
    # the device foreign key included); PostgreSQL alters it in place. The tables it refers
    # to need not be read (devices has an expression index SQLAlchemy cannot reflect).
    with op.batch_alter_table("update_events", reflect_kwargs=_NO_REFERRED) as batch_op:
        batch_op.create_index("ix_update_events_command_id", ["command_id"])
        batch_op.create_foreign_key(
            op.f("fk_update_events_command_id_commands"),
            "commands",
            ["command_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("update_events", reflect_kwargs=_NO_REFERRED) as batch_op:
        batch_op.drop_constraint(op.f("fk_update_events_command_id_commands"), type_="foreignkey")
        batch_op.drop_index("ix_update_events_command_id")
