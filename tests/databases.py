"""The test databases: PostgreSQL when ``LUNARIS_TEST_DATABASE_URL`` is set (each database
created beside the one it names, under a name of its own, and dropped after), SQLite files
otherwise."""

import asyncio
import os
import shutil
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from lunaris_server.db.engine import asyncpg_dsn
from lunaris_server.migrations.tables import Base

POSTGRES_URL = os.environ.get("LUNARIS_TEST_DATABASE_URL")


async def create_postgres_database(admin_url: str) -> str:
    """A new, empty database beside the one in ``admin_url``; returns its SQLAlchemy URL."""
    name = f"lunaris_test_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    connection = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def fresh_database(template: str, directory: Path) -> str:
    """A migrated database with no rows, from the run's template: on PostgreSQL the template
    itself emptied (one test uses it at a time: each pytest process, each xdist worker, has
    a template of its own), on SQLite a copy in ``directory``."""
    if POSTGRES_URL:
        engine = create_async_engine(template)
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await engine.dispose()
        return template
    source = Path(make_url(template).database or "")
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    target = directory / "lunaris.db"
    shutil.copyfile(source, target)
    return f"sqlite+aiosqlite:///{target}"
