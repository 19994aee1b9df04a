"""Migration 0014: deployments, and commands.deployment_id and retry_of (foreign keys, ON
DELETE SET NULL, indexed), on a database that already holds commands; and goes back, where
a partial command becomes a failed one (what it was before partial existed)."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from alembic import command
from sqlalchemy import insert, inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from lunaris_server.commands.models import Command, Deployment
from lunaris_server.db.engine import make_engine
from lunaris_server.db.migrate import alembic_config, current_revision, head_revision
from lunaris_server.devices.models import Device

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DEVICE = "5d4c3b2a-0000-4000-8000-000000000001"
OLD = "5d4c3b2a-0000-4000-8000-00000000c001"
NEW = "5d4c3b2a-0000-4000-8000-00000000c002"
DEPLOYMENT = "5d4c3b2a-0000-4000-8000-0000000000d1"


def migrate(url: str, revision: str, *, down: bool = False) -> None:
    (command.downgrade if down else command.upgrade)(alembic_config(url), revision)


def a_command(command_id: str, status: str) -> dict[str, Any]:
    return {
        "id": command_id,
        "device_id": DEVICE,
        "kind": "RUN_UPDATES",
        "packages": ["Git.Git"],
        "status": status,
        "created_by": "user:admin",
        "created_at": NOW,
        "expires_at": NOW + timedelta(days=1),
        "updated_at": NOW,
        "last_sequence": 3,
        "message": "",
    }


async def seed(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            insert(Device),
            {
                "id": DEVICE,
                "hostname": "PC-0001",
                "os_version": "",
                "agent_version": "",
                "token_hash": "0" * 64,
                "enrolled_at": NOW,
                "last_seen_at": NOW,
                "announced_status": "online",
                "updates_count": 0,
            },
        )
        # Only the columns of 0013 are named (those 0014 adds have no default to send).
        await connection.execute(
            insert(Command), [a_command(OLD, "failed"), a_command(NEW, "succeeded")]
        )


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
    await asyncio.to_thread(migrate, url, "0013")
    engine = make_engine(url)  # SQLite with foreign keys enforced, as the server runs it
    try:
        await seed(engine)
        tables, keys, _ = await schema(engine)
        assert "deployments" not in tables
        assert set(keys) == {"device_id"}

        await asyncio.to_thread(migrate, url, "head")
        assert await current_revision(url) == head_revision()
        tables, keys, indexes = await schema(engine)
        assert "deployments" in tables
        assert keys["deployment_id"][0] == "deployments"
        assert keys["retry_of"][0] == "commands"
        assert {keys["deployment_id"][1].upper(), keys["retry_of"][1].upper()} == {"SET NULL"}
        # Rebuilt on SQLite: the device's key and the other indexes came along.
        assert keys["device_id"] == ("devices", keys["device_id"][1])
        assert keys["device_id"][1].upper() == "CASCADE"
        assert {
            "ix_commands_deployment_id_status",
            "ix_commands_deployment_id_created_at",
            "ix_commands_retry_of",
            "ix_commands_device_id_status",
            "ix_commands_created_at",
        } <= indexes
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

        await asyncio.to_thread(migrate, url, "0013", down=True)
        tables, keys, indexes = await schema(engine)
        assert "deployments" not in tables
        assert set(keys) == {"device_id"}
        assert "ix_commands_retry_of" not in indexes
        assert "ix_commands_device_id_status" in indexes
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT id, status FROM commands ORDER BY id"))
            assert [tuple(row) for row in rows] == [(OLD, "failed"), (NEW, "failed")]

        await asyncio.to_thread(migrate, url, "head")
        assert "deployment_id" in (await schema(engine))[1]
    finally:
        await engine.dispose()
