"""Migrations: an empty database upgrades to head, twice without harm, on both backends."""

import asyncio

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from lunaris_server.db.migrate import (
    alembic_config,
    current_revision,
    head_revision,
    upgrade_to_head,
)
from lunaris_server.migrations.tables import Base


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


# SQLite cannot reflect indexes on expressions, so Alembic skips them there (with these
# warnings); test_expression_indexes_exist checks them instead.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
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


async def index_definitions(url: str) -> dict[str, str]:
    engine = create_async_engine(url)
    query = (
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'devices'"
        if url.startswith("postgresql")
        else "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'devices'"
    )
    try:
        async with engine.connect() as connection:
            return {name: sql or "" for name, sql in await connection.execute(text(query))}
    finally:
        await engine.dispose()


async def test_expression_indexes_exist(empty_database_url, backend):
    await asyncio.to_thread(upgrade_to_head, empty_database_url)
    indexes = await index_definitions(empty_database_url)
    folded = indexes["ix_devices_hostname_folded"].lower()
    assert "lower(" in folded
    assert "where" in folded
    assert "revoked_at is null" in folded
    if backend == "postgresql":  # pg_trgm is available where the tests run
        assert "gin_trgm_ops" in indexes["ix_devices_hostname_trgm"]


async def test_downgrade_to_the_previous_schema_and_back(empty_database_url):
    await asyncio.to_thread(upgrade_to_head, empty_database_url)
    await asyncio.to_thread(command.downgrade, alembic_config(empty_database_url), "0002")
    assert "fleet_packages" not in await table_names(empty_database_url)
    assert "ix_devices_hostname" in await index_definitions(empty_database_url)
    await asyncio.to_thread(upgrade_to_head, empty_database_url)
    assert await current_revision(empty_database_url) == head_revision()
