"""Small query helpers shared by the domain services."""

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Table, literal, select
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
) -> int:
    """Inserts ``rows``, leaving out any whose key is there already (``ON CONFLICT DO
    NOTHING``, which both databases have): two requests adding the same row both succeed.
    Returns how many were inserted."""
    dialect_insert: Any = _INSERTS[session.get_bind().dialect.name]
    insert = dialect_insert(table).on_conflict_do_nothing()
    inserted = 0
    for start in range(0, len(rows), batch):
        result = await session.execute(insert, list(rows[start : start + batch]))
        inserted += max(getattr(result, "rowcount", 0), 0)
    return inserted


async def referring_tables(session: AsyncSession, table: Table, key: object) -> list[str]:
    """The tables with a row that refers to ``table``'s row ``key`` through a foreign key that
    forbids deleting it (``ON DELETE RESTRICT``): what a delete would be refused for. Asked
    of every table the metadata knows, so the table referred to need not know who refers."""
    found = []
    for other in table.metadata.sorted_tables:
        for foreign in other.foreign_keys:
            if foreign.column.table is table and (foreign.ondelete or "").upper() == "RESTRICT":
                hit = await session.scalar(select(literal(1)).where(foreign.parent == key).limit(1))
                if hit is not None:
                    found.append(other.name)
    return found
