"""The MSI an ``UPDATE_AGENT`` command installs: its size and SHA-256 when it was queued
(its version is in ``versions``, as for packages). Null for every other command.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("commands", sa.Column("installer_size_bytes", sa.BigInteger(), nullable=True))
    op.add_column("commands", sa.Column("installer_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE commands DROP COLUMN installer_sha256")
    op.execute("ALTER TABLE commands DROP COLUMN installer_size_bytes")
