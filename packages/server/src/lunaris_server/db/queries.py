"""Small query helpers shared by the domain services."""

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.core.errors import InvalidInput

SortField = TypeVar("SortField", bound=StrEnum)


def contains_pattern(search: str) -> str:
    """A LIKE pattern (escape ``\\``) matching ``search`` anywhere, case-folded, literally."""
    escaped = search.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def parse_sort(sort: str, fields: type[SortField], *, what: str) -> tuple[SortField, bool]:
    """``field`` sorts ascending, ``-field`` descending; anything else is refused clearly."""
    try:
        return fields(sort.removeprefix("-")), sort.startswith("-")
    except ValueError:
        allowed = ", ".join(field.value for field in fields)
        raise InvalidInput(f"cannot sort {what} by {sort!r}; use one of: {allowed}") from None


_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


async def insert_missing(
    session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]], *, batch: int = 5_000
) -> None:
    """Inserts ``rows``, leaving out any whose key is there already (``ON CONFLICT DO
    NOTHING``, which both databases have): two requests adding the same row both succeed."""
    dialect_insert: Any = _INSERTS[session.get_bind().dialect.name]
    insert = dialect_insert(table).on_conflict_do_nothing()
    for start in range(0, len(rows), batch):
        await session.execute(insert, list(rows[start : start + batch]))
