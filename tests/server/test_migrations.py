"""Migrations: an empty database upgrades to head, twice without harm, on both backends."""

import asyncio

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from lunaris_server.db.migrate import current_revision, head_revision, upgrade_to_head
from lunaris_server.db.models import Base


async def table_names(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_from_empty_to_head(empty_database_url):
    assert await table_names(empty_database_url) == set()
    await asyncio.to_thread(upgrade_to_head, empty_database_url)
    assert await current_revision(empty_database_url) == head_revision()
    expected = {table.name for table in Base.metadata.sorted_tables} | {"alembic_version"}
    assert await table_names(empty_database_url) == expected
    # Serving migrates on every start: a second upgrade is a no-op.
    await asyncio.to_thread(upgrade_to_head, empty_database_url)
    assert await current_revision(empty_database_url) == head_revision()


async def test_models_match_migrations(empty_database_url):
    """The tables the models describe are the ones the migrations create (no drift)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    await asyncio.to_thread(upgrade_to_head, empty_database_url)
    engine = create_async_engine(empty_database_url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
            )
    finally:
        await engine.dispose()
    assert diff == []
