"""Migration 0005: update_events.command_id becomes a foreign key to commands (ON DELETE SET
NULL) with an index, on a database that already holds events; and goes back."""

import asyncio
from typing import Any

from alembic import command
from sqlalchemy import delete, insert, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from lunaris_server.commands.models import Command
from lunaris_server.db.engine import make_engine
from lunaris_server.db.migrate import alembic_config, current_revision, head_revision
from lunaris_server.devices.models import Device
from lunaris_server.updates.models import UpdateEvent
from tests.server.migration_rows import DEVICE, NOW, command_row, device_row

COMMAND = "5d4c3b2a-0000-4000-8000-00000000c0de"
GONE = "5d4c3b2a-0000-4000-8000-0000000000ff"
"""A command id no commands row has (the column predates the table)."""


def migrate(url: str, revision: str, *, down: bool = False) -> None:
    (command.downgrade if down else command.upgrade)(alembic_config(url), revision)


async def seed(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(insert(Device), device_row())
        await connection.execute(insert(Command), command_row(COMMAND, "succeeded"))
        await connection.execute(
            insert(UpdateEvent),
            [
                event(1, "install_started", COMMAND),
                event(2, "install_succeeded", COMMAND),
                event(3, "install_started", GONE),
                event(4, "detected", None),
            ],
        )


def event(number: int, kind: str, command_id: str | None) -> dict[str, Any]:
    return {
        "id": number,
        "device_id": DEVICE,
        "package_identifier": "Git.Git",
        "kind": kind,
        "at": NOW,
        "command_id": command_id,
    }


async def links(engine: AsyncEngine) -> dict[int, str | None]:
    async with engine.connect() as connection:
        rows = await connection.execute(select(UpdateEvent.id, UpdateEvent.command_id))
        return {row.id: row.command_id for row in rows}


async def schema(engine: AsyncEngine) -> tuple[list[dict[str, Any]], set[str]]:
    """update_events' foreign keys and index names."""

    def read(connection: Any) -> tuple[list[dict[str, Any]], set[str]]:
        inspector = inspect(connection)
        return (
            inspector.get_foreign_keys("update_events"),
            {index["name"] for index in inspector.get_indexes("update_events")},
        )

    async with engine.connect() as connection:
        return await connection.run_sync(read)


def by_column(foreign_keys: list[dict[str, Any]]) -> dict[str, tuple[str, str | None]]:
    return {
        fk["constrained_columns"][0]: (fk["referred_table"], fk["options"].get("ondelete"))
        for fk in foreign_keys
    }


async def test_the_link_becomes_a_foreign_key_and_goes_back(empty_database_url):
    url = empty_database_url
    await asyncio.to_thread(migrate, url, "0004")
    engine = make_engine(url)  # SQLite with foreign keys enforced, as the server runs it
    try:
        await seed(engine)
        foreign_keys, indexes = await schema(engine)
        assert "command_id" not in by_column(foreign_keys)
        assert "ix_update_events_command_id" not in indexes

        await asyncio.to_thread(migrate, url, "head")
        assert await current_revision(url) == head_revision()
        foreign_keys, indexes = await schema(engine)
        keys = by_column(foreign_keys)
        assert keys["command_id"][0] == "commands"
        assert keys["command_id"][1].upper() == "SET NULL"
        # Rebuilt on SQLite: the device's key and the other indexes came along.
        assert keys["device_id"][0] == "devices"
        assert keys["device_id"][1].upper() == "CASCADE"
        assert {
            "ix_update_events_command_id",
            "ix_update_events_device_at",
            "ix_update_events_at_kind",
        } <= indexes
        # Every event stays; only the link to a command that does not exist is dropped.
        assert await links(engine) == {1: COMMAND, 2: COMMAND, 3: None, 4: None}

        # The history outlives a deleted command.
        async with engine.begin() as connection:
            await connection.execute(delete(Command).where(Command.id == COMMAND))
        assert await links(engine) == {1: None, 2: None, 3: None, 4: None}

        await asyncio.to_thread(migrate, url, "0004", down=True)
        foreign_keys, indexes = await schema(engine)
        assert "command_id" not in by_column(foreign_keys)
        assert by_column(foreign_keys)["device_id"][0] == "devices"
        assert "ix_update_events_command_id" not in indexes
        assert "ix_update_events_device_at" in indexes
        assert len(await links(engine)) == 4

        await asyncio.to_thread(migrate, url, "head")
        assert "command_id" in by_column((await schema(engine))[0])
    finally:
        await engine.dispose()
