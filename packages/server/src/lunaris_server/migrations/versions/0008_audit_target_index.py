"""The audit log by target, newest first: where a user logged in from (the login throttle
trusts those addresses while the username is being guessed at elsewhere), and a device's or
user's own entries.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_log_target_at", "audit_log", ["target", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_log_target_at", table_name="audit_log")
