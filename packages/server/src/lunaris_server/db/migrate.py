"""Upgrade a database to the newest schema (Alembic, scripts shipped in the package)."""

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from lunaris_server.db.engine import make_engine


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "lunaris_server:migrations")
    config.attributes["database_url"] = database_url
    return config


def upgrade_to_head(database_url: str) -> None:
    """Blocking (Alembic runs its own event loop): call it from a thread in async code."""
    command.upgrade(alembic_config(database_url), "head")


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
