"""Migration 0018: policies get an SLA (null for those there already, every other column
kept) and compliance_daily appears, with one row per day and scope (the fleet's NULL scope
too); and back."""

import asyncio

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from lunaris_server.db.engine import make_engine
from lunaris_server.db.migrate import alembic_config, current_revision, head_revision
from tests.server.migration_rows import NOW


def migrate(url: str, revision: str, *, down: bool = False) -> None:
    (command.downgrade if down else command.upgrade)(alembic_config(url), revision)


async def tables_and_policy_columns(engine: AsyncEngine) -> tuple[set[str], set[str]]:
    def read(connection: object) -> tuple[set[str], set[str]]:
        inspector = inspect(connection)
        columns = {c["name"] for c in inspector.get_columns("policies")}
        return set(inspector.get_table_names()), columns

    async with engine.connect() as connection:
        return await connection.run_sync(read)


POLICY = text(
    "INSERT INTO policies (id, name, description, priority, enabled, time_zone, deferral_days,"
    " created_at, created_by, updated_at, updated_by)"
    " VALUES (1, 'Nightly', '', 100, true, 'UTC', 3, :now, 'admin', :now, 'admin')"
)
DAY = text(
    "INSERT INTO compliance_daily (day, group_id, taken_at, devices, compliant, overdue,"
    " waiting, age_0_7, age_8_30, age_over_30) VALUES (:day, NULL, :now, 1, 1, 0, 0, 0, 0, 0)"
)


async def test_policies_get_an_sla_and_the_history_its_table(empty_database_url):
    url = empty_database_url
    await asyncio.to_thread(migrate, url, "0017")
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(POLICY, {"now": NOW})
        await asyncio.to_thread(migrate, url, "head")
        assert await current_revision(url) == head_revision()
        tables, columns = await tables_and_policy_columns(engine)
        assert "compliance_daily" in tables
        assert "sla_days" in columns
        async with engine.begin() as connection:
            row = (
                await connection.execute(text("SELECT name, deferral_days, sla_days FROM policies"))
            ).one()
            assert tuple(row) == ("Nightly", 3, None)
            await connection.execute(DAY, {"day": NOW.date(), "now": NOW})
        # The fleet's row of a day is one, though its group_id is NULL.
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(DAY, {"day": NOW.date(), "now": NOW})

        await asyncio.to_thread(migrate, url, "0017", down=True)
        tables, columns = await tables_and_policy_columns(engine)
        assert "compliance_daily" not in tables
        assert "sla_days" not in columns
        async with engine.connect() as connection:
            assert (await connection.scalar(text("SELECT name FROM policies"))) == "Nightly"
        await asyncio.to_thread(migrate, url, "head")
    finally:
        await engine.dispose()
