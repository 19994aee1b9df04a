"""Small query helpers shared by the domain services."""


def contains_pattern(search: str) -> str:
    """A LIKE pattern (escape ``\\``) matching ``search`` anywhere, case-folded, literally."""
    escaped = search.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
