"""Signs of a cloned identity: where a device last spoke from, its last changes of address
and hostname, and the flag raised when they alternate.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain ADD/DROP COLUMN (see 0007): a batch would rebuild the table and lose its indexes.
_COLUMNS: tuple[sa.Column[object], ...] = (
    sa.Column("last_ip", sa.String(length=64), nullable=True),
    sa.Column("previous_ip", sa.String(length=64), nullable=True),
    sa.Column("ip_changed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("previous_hostname", sa.String(length=255), nullable=True),
    sa.Column("hostname_changed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("clone_suspected_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("clone_evidence", sa.String(length=600), nullable=True),
)


def upgrade() -> None:
    for column in _COLUMNS:
        op.add_column("devices", column)


def downgrade() -> None:
    for column in reversed(_COLUMNS):
        op.execute(f"ALTER TABLE devices DROP COLUMN {column.name}")
