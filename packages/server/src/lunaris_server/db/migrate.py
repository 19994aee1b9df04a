"""Upgrade a database to the newest schema (Alembic, scripts shipped in the package)."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, make_url

from lunaris_server.core.private_files import private_dir
from lunaris_server.db.engine import make_engine


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "lunaris_server:migrations")
    config.attributes["database_url"] = database_url
    return config


def upgrade_to_head(database_url: str) -> None:
    """Blocking (Alembic runs its own event loop): call it from a thread in async code."""
    _create_sqlite_directory(database_url)
    command.upgrade(alembic_config(database_url), "head")


def _create_sqlite_directory(database_url: str) -> None:
    """SQLite creates the file (see engine.py) but not its folder (the data dir, at first)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        private_dir(Path(url.database).parent)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("unused")).get_current_head()


async def current_revision(database_url: str) -> str | None:
    engine = make_engine(database_url)

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read)
    finally:
        await engine.dispose()
