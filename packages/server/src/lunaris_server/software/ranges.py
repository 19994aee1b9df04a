"""The software search: a package (its id or name, or part of either), optionally followed by
a version range, ``Notepad++.Notepad++ < 8.8``, ``7zip.7zip <= 23.01``, ``Java >= 8, < 9``.

Versions compare in winget's order through their sort key (core/versions.py), which the
database holds in an index next to each row: the range is evaluated in SQL. An ``Unknown``
version is older than any other, so it falls inside every "older than" range: an install
whose version winget cannot tell is shown, never hidden.
"""

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from lunaris_server.core.errors import InvalidInput
from lunaris_server.core.versions import sort_key

MAX_SEARCH: Final = 256
MAX_CLAUSES: Final = 4


class Comparison(StrEnum):
    LT = "<"
    LTE = "<="
    GT = ">"
    GTE = ">="
    EQ = "="


@dataclass(frozen=True, slots=True)
class Bound:
    comparison: Comparison
    version: str

    @property
    def key(self) -> str:
        return sort_key(self.version)

    def __str__(self) -> str:
        return f"{self.comparison.value} {self.version}"


@dataclass(frozen=True, slots=True)
class SoftwareSearch:
    term: str
    """What the package's id or name contains ("" for every package)."""
    bounds: tuple[Bound, ...] = ()

    @property
    def text(self) -> str:
        return " ".join([self.term, ", ".join(str(b) for b in self.bounds)]).strip()


_CLAUSE = re.compile(r"\s*(<=|>=|==|=|<|>)\s*([^\s,<>=]{1,128})\s*")


def parse_search(text: str) -> SoftwareSearch:
    """What ``text`` asks for; InvalidInput saying what is wrong with it otherwise."""
    if len(text) > MAX_SEARCH:
        raise InvalidInput(f"a search has at most {MAX_SEARCH} characters")
    first = re.search(r"[<>=]", text)
    if first is None:
        return SoftwareSearch(term=text.strip())
    term, rest = text[: first.start()].strip(), text[first.start() :]
    if not term:
        raise InvalidInput("name a package before a version range: Notepad++.Notepad++ < 8.8")
    clauses = rest.split(",")
    if len(clauses) > MAX_CLAUSES:
        raise InvalidInput(f"a version range has at most {MAX_CLAUSES} comparisons")
    bounds = []
    for clause in clauses:
        found = _CLAUSE.fullmatch(clause)
        if found is None:
            raise InvalidInput(
                f"{clause.strip()!r} is not a version comparison: write < 8.8, >= 8, < 9"
            )
        comparison = "=" if found.group(1) == "==" else found.group(1)
        bounds.append(Bound(Comparison(comparison), found.group(2)))
    return SoftwareSearch(term=term, bounds=tuple(bounds))


_PARAMS: Final = {
    Comparison.EQ: "version",
    Comparison.LT: "version_lt",
    Comparison.LTE: "version_lte",
    Comparison.GT: "version_gt",
    Comparison.GTE: "version_gte",
}


def as_params(bounds: tuple[Bound, ...]) -> dict[str, str]:
    """The query parameters of :func:`bounds_from` that say these bounds (of two bounds of
    one kind, the last: the stricter one is not worked out)."""
    return {_PARAMS[bound.comparison]: bound.version for bound in bounds}


def bounds_from(
    *,
    version: str | None = None,
    version_lt: str | None = None,
    version_lte: str | None = None,
    version_gt: str | None = None,
    version_gte: str | None = None,
) -> tuple[Bound, ...]:
    """The bounds an API call's query parameters name."""
    given = [
        (Comparison.EQ, version),
        (Comparison.LT, version_lt),
        (Comparison.LTE, version_lte),
        (Comparison.GT, version_gt),
        (Comparison.GTE, version_gte),
    ]
    return tuple(Bound(comparison, value) for comparison, value in given if value)
