"""What agents say about their PCs: who is logged on, the PC's own addresses, its model,
manufacturer and serial number (null until an agent that says them reports).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("logged_on_user", 256),
    ("ip_addresses", 736),
    ("model", 128),
    ("manufacturer", 128),
    ("serial_number", 128),
)


def upgrade() -> None:
    for name, length in _COLUMNS:
        op.add_column("devices", sa.Column(name, sa.String(length), nullable=True))


def downgrade() -> None:
    for name, _length in reversed(_COLUMNS):
        op.execute(f"ALTER TABLE devices DROP COLUMN {name}")
