"""Fleet counters kept by the report diff (devices per package, rows per package variant,
detected/resolved per day), backfilled from the existing rows; device list indexes: the
case-folded hostname the list sorts by, and on PostgreSQL a trigram index for the search.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

import hashlib
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "fleet_packages",
        sa.Column("package_identifier", sa.String(length=256), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("package_identifier", "source", name=op.f("pk_fleet_packages")),
    )
    variants = op.create_table(
        "fleet_variants",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("package_identifier", sa.String(length=256), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("installed_version", sa.String(length=128), nullable=False),
        sa.Column("available_version", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("explicit_targeting", sa.Boolean(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_fleet_variants")),
    )
    with op.batch_alter_table("fleet_variants", schema=None) as batch_op:
        batch_op.create_index(
            "ix_fleet_variants_package", ["package_identifier", "source"], unique=False
        )
    op.create_table(
        "update_activity",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("detected", sa.Integer(), nullable=False),
        sa.Column("resolved", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "shard", name=op.f("pk_update_activity")),
    )
    _backfill(variants)

    with op.batch_alter_table("devices", schema=None) as batch_op:
        # Nothing looks hostnames up as typed; the list sorts them case-folded.
        batch_op.drop_index("ix_devices_hostname")
        batch_op.create_index(
            "ix_devices_hostname_folded",
            [sa.text("lower(hostname)"), "id"],
            unique=False,
            postgresql_where=sa.text("revoked_at IS NULL"),
            sqlite_where=sa.text("revoked_at IS NULL"),
        )
    if _trigram_available():
        op.create_index(
            "ix_devices_hostname_trgm",
            "devices",
            [sa.text("lower(hostname) gin_trgm_ops")],
            unique=False,
            postgresql_using="gin",
        )


def _backfill(variants: sa.Table) -> None:
    """The counters as the report diff would have kept them for the rows already stored
    (those of revoked devices left out, as the console leaves them out)."""
    bind = op.get_bind()
    waiting = (
        "FROM device_updates u JOIN devices d ON d.id = u.device_id WHERE d.revoked_at IS NULL"
    )
    op.execute(
        "INSERT INTO fleet_packages (package_identifier, source, devices) "
        "SELECT u.package_identifier, coalesce(u.source, ''), count(DISTINCT u.device_id) "
        f"{waiting} GROUP BY u.package_identifier, coalesce(u.source, '')"
    )
    columns = (
        "u.package_identifier, coalesce(u.source, ''), u.installed_version, "
        "u.available_version, u.name, u.explicit_targeting, u.truncated"
    )
    result = bind.execute(sa.text(f"SELECT {columns}, count(*) {waiting} GROUP BY {columns}"))
    while batch := result.fetchmany(BATCH):
        rows = []
        for package, source, installed, available, name, explicit, truncated, count in batch:
            shown = [package, source, installed, available, name, bool(explicit), bool(truncated)]
            rows.append(
                {
                    # The same key as lunaris_server.updates.fleet_counts.Variant.key.
                    "key": hashlib.sha256(json.dumps(shown).encode()).hexdigest(),
                    "package_identifier": package,
                    "source": source,
                    "installed_version": installed,
                    "available_version": available,
                    "name": name,
                    "explicit_targeting": bool(explicit),
                    "truncated": bool(truncated),
                    "rows": count,
                }
            )
        op.bulk_insert(variants, rows)

    day = "(at AT TIME ZONE 'UTC')::date" if bind.dialect.name == "postgresql" else "date(at)"
    per_day = (
        f"SELECT {day}, 0, "  # noqa: S608 - built from constants only
        "sum(CASE WHEN kind = 'detected' THEN 1 ELSE 0 END), "
        "sum(CASE WHEN kind = 'resolved' THEN 1 ELSE 0 END) "
        f"FROM update_events WHERE kind IN ('detected', 'resolved') GROUP BY {day}"
    )
    op.execute(f"INSERT INTO update_activity (day, shard, detected, resolved) {per_day}")


def _trigram_available() -> bool:
    """PostgreSQL with the pg_trgm extension (in contrib) installed, or installable by us.
    Without it the search still works, by scanning the devices."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    available = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    ).scalar()
    if not available:
        return False
    try:
        with bind.begin_nested():  # a refused CREATE EXTENSION must not abort the migration
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError:
        return False
    return True


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_devices_hostname_trgm")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index("ix_devices_hostname_folded")
        batch_op.create_index("ix_devices_hostname", ["hostname"], unique=False)
    op.drop_table("update_activity")
    with op.batch_alter_table("fleet_variants", schema=None) as batch_op:
        batch_op.drop_index("ix_fleet_variants_package")
    op.drop_table("fleet_variants")
    op.drop_table("fleet_packages")
