"""Small query helpers shared by the domain services."""

from enum import StrEnum
from typing import TypeVar

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
