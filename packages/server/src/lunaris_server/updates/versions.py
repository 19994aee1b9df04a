"""Ordering of version strings as winget prints them (``1.10`` is newer than ``1.9``)."""

import re

_CHUNKS = re.compile(r"\d+|[A-Za-z]+")


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Numeric runs compare as numbers, words case-insensitively.

    Unparseable strings (``Unknown``) simply sort below every real version.
    """
    return tuple(
        (1, int(chunk)) if chunk.isdigit() else (0, chunk.lower())
        for chunk in _CHUNKS.findall(version)
    )


def newest(versions: list[str]) -> str | None:
    return max(versions, key=version_key, default=None)
