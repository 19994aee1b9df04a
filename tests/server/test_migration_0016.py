"""Migration 0016: deployments, and commands.deployment_id and retry_of (indexed), on a
database that already holds commands with results and history: every row stays, linked as
before (a rebuild of the commands table on SQLite, foreign keys on, would have deleted the
results and unlinked the history). And back, where a partial command becomes a failed one
(what it was before partial existed)."""

import asyncio
from typing import Any

from alembic import command
from sqlalchemy import insert, inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from lunaris_server.commands.models import Command, CommandResult, Deployment
from lunaris_server.db.engine import make_engine
from lunaris_server.db.migrate import alembic_config, current_revision, head_revision
from lunaris_server.devices.models import Device
from lunaris_server.updates.models import UpdateEvent
from tests.server.migration_rows import DEVICE, NOW, command_row, device_row

OLD = "5d4c3b2a-0000-4000-8000-00000000c001"
NEW = "5d4c3b2a-0000-4000-8000-00000000c002"
DEPLOYMENT = "5d4c3b2a-0000-4000-8000-0000000000d1"


def migrate(url: str, revision: str, *, down: bool = False) -> None:
    (command.downgrade if down else command.upgrade)(alembic_config(url), revision)


async def seed(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(insert(Device), device_row())
        # Only the columns of 0015 are named (those 0016 adds have no default to send).
        await connection.execute(
            insert(Command), [command_row(OLD, "failed"), command_row(NEW, "succeeded")]
        )
        await connection.execute(
            insert(CommandResult),
            {
                "command_id": OLD,
                "package_identifier": "Git.Git",
                "outcome": "installer_failed",
                "succeeded": False,
                "finished_at": NOW,
            },
        )
        await connection.execute(
            insert(UpdateEvent),
            {
                "id": 1,
                "device_id": DEVICE,
                "package_identifier": "Git.Git",
                "kind": "install_failed",
                "at": NOW,
                "command_id": OLD,
            },
        )


async def kept(engine: AsyncEngine) -> tuple[list[str], list[str | None]]:
    """The results' commands and the history's links to commands."""
    async with engine.connect() as connection:
        results = await connection.scalars(select(CommandResult.command_id))
        links = await connection.scalars(select(UpdateEvent.command_id))
        return list(results), list(links)


async def schema(
    engine: AsyncEngine,
) -> tuple[set[str], dict[str, tuple[str, str | None]], set[str]]:
    """The tables, the commands' foreign keys (column: referred table, on delete) and their
    index names."""

    def read(connection: Any) -> tuple[set[str], dict[str, tuple[str, str | None]], set[str]]:
        inspector = inspect(connection)
        keys = {
            fk["constrained_columns"][0]: (fk["referred_table"], fk["options"].get("ondelete"))
            for fk in inspector.get_foreign_keys("commands")
        }
        indexes = {index["name"] for index in inspector.get_indexes("commands")}
        return set(inspector.get_table_names()), keys, indexes

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def test_commands_join_deployments_and_go_back(empty_database_url):
    url = empty_database_url
    await asyncio.to_thread(migrate, url, "0015")
    engine = make_engine(url)  # SQLite with foreign keys enforced, as the server runs it
    try:
        await seed(engine)
        tables, _, _ = await schema(engine)
        assert "deployments" not in tables

        await asyncio.to_thread(migrate, url, "head")
        assert await current_revision(url) == head_revision()
        tables, keys, indexes = await schema(engine)
        assert "deployments" in tables
        assert set(keys) == {"device_id"}  # plain columns: see the migration
        assert {
            "ix_commands_deployment_id_status",
            "ix_commands_deployment_id_created_at",
            "ix_commands_retry_of",
            "ix_commands_device_id_status",
            "ix_commands_created_at",
        } <= indexes
        assert await kept(engine) == ([OLD], [OLD])
        async with engine.begin() as connection:
            rows = await connection.execute(
                select(Command.id, Command.deployment_id, Command.retry_of).order_by(Command.id)
            )
            assert [tuple(row) for row in rows] == [(OLD, None, None), (NEW, None, None)]
            # A deployment, a retry in it, and a partial command.
            await connection.execute(
                insert(Deployment),
                {
                    "id": DEPLOYMENT,
                    "kind": "manual",
                    "title": "Git.Git on every device waiting for it",
                    "packages": ["Git.Git"],
                    "created_by": "user:admin",
                    "created_at": NOW,
                    "updated_at": NOW,
                    "skipped_busy": 0,
                    "skipped_up_to_date": 0,
                },
            )
            await connection.execute(
                update(Command).where(Command.id == OLD).values(deployment_id=DEPLOYMENT)
            )
            await connection.execute(
                update(Command)
                .where(Command.id == NEW)
                .values(deployment_id=DEPLOYMENT, retry_of=OLD, status="partial")
            )

        await asyncio.to_thread(migrate, url, "0015", down=True)
        tables, keys, indexes = await schema(engine)
        assert "deployments" not in tables
        assert set(keys) == {"device_id"}
        assert "ix_commands_retry_of" not in indexes
        assert "ix_commands_device_id_status" in indexes
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT id, status FROM commands ORDER BY id"))
            assert [tuple(row) for row in rows] == [(OLD, "failed"), (NEW, "failed")]
        assert await kept(engine) == ([OLD], [OLD])

        await asyncio.to_thread(migrate, url, "head")
        assert "ix_commands_retry_of" in (await schema(engine))[2]
    finally:
        await engine.dispose()
