"""The device list's index also holds the hostname (PostgreSQL), so a page asked for by
number skips its offset in the index alone (an index-only scan) where the rows are visible
to all: PostgreSQL cannot answer ``lower(hostname)`` from an index on the expression alone.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _replace_hostname_index(include=["hostname"])


def downgrade() -> None:
    _replace_hostname_index(include=[])


def _replace_hostname_index(*, include: list[str]) -> None:
    # SQLite has no INCLUDE; its index stays as it is.
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_devices_hostname_folded", table_name="devices")
    op.create_index(
        "ix_devices_hostname_folded",
        "devices",
        [sa.text("lower(hostname)"), "id"],
        unique=False,
        postgresql_include=include,
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
