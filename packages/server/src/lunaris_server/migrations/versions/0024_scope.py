"""Where a waiting update or an installed app is: the machine, or a user's profile (the
agent's per-user scans). Rows before are the machine's.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("device_updates", "device_software")


def upgrade() -> None:
    for table in _TABLES:
        op.add_column(
            table, sa.Column("scope", sa.String(8), server_default="machine", nullable=False)
        )
        op.add_column(
            table, sa.Column("user_account", sa.String(256), server_default="", nullable=False)
        )


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"ALTER TABLE {table} DROP COLUMN user_account")
        op.execute(f"ALTER TABLE {table} DROP COLUMN scope")
