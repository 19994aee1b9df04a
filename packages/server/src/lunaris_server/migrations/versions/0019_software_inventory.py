"""The software inventory: every app ``winget list`` shows on each device, its last report
(with the digest a steady PC repeats), and the fleet's counts of apps and versions.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lunaris_server.db.base import UTCDateTime

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY = sa.String(512).with_variant(sa.String(512, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "device_software",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(36), nullable=False),
        sa.Column("package_identifier", sa.String(256), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("version_key", _KEY, nullable=False),
        sa.Column("source", sa.String(64), nullable=True),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("instances", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_software_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_software")),
    )
    op.create_index("ix_device_software_device_id", "device_software", ["device_id"])
    op.create_index(
        "ix_device_software_package_version",
        "device_software",
        ["package_identifier", "version_key", "id"],
    )
    op.create_table(
        "device_inventories",
        sa.Column("device_id", sa.String(36), nullable=False),
        sa.Column("digest", sa.String(64), nullable=True),
        sa.Column("apps", sa.Integer(), nullable=False),
        sa.Column("reported_at", UTCDateTime(), nullable=True),
        sa.Column("changed_at", UTCDateTime(), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.String(4000), nullable=True),
        sa.Column("error_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_inventories_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_inventories")),
    )
    op.create_table(
        "software_titles",
        sa.Column("package_identifier", sa.String(256), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("package_identifier", name=op.f("pk_software_titles")),
    )
    op.create_index(
        "ix_software_titles_devices",
        "software_titles",
        [sa.text("devices DESC"), "package_identifier"],
    )
    op.create_index(
        "ix_software_titles_folded", "software_titles", [sa.text("lower(package_identifier)")]
    )
    if _has_trigrams():
        for name, column in (("id", "package_identifier"), ("name", "name")):
            op.create_index(
                f"ix_software_titles_{name}_trgm",
                "software_titles",
                [sa.text(f"lower({column}) gin_trgm_ops")],
                unique=False,
                postgresql_using="gin",
            )
    op.create_table(
        "software_versions",
        sa.Column("package_identifier", sa.String(256), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("version_key", _KEY, nullable=False),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("package_identifier", "version", name=op.f("pk_software_versions")),
    )
    op.create_index(
        "ix_software_versions_package_key",
        "software_versions",
        ["package_identifier", "version_key"],
    )


def _has_trigrams() -> bool:
    """PostgreSQL with pg_trgm, which migration 0003 installs where it can."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    found = bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"))
    return found.scalar() is not None


def downgrade() -> None:
    op.drop_table("software_versions")
    op.drop_table("software_titles")
    op.drop_table("device_inventories")
    op.drop_table("device_software")
