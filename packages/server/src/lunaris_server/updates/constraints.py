"""Version constraints of package rules ("stay on Java 8": ``<9``, ``8.*``, ``>=8,<9``),
compared in winget's order (core/versions.py).

A constraint is one or more clauses separated by commas, all of which must hold:
``<V``, ``<=V``, ``>V``, ``>=V``, ``==V`` (or ``=V``), ``!=V``, or a wildcard ``V.*`` (the
version starts with those parts: ``1.*`` holds for ``1``, ``1.4`` and ``1.4.2``, not
``10.1``). An update whose available version falls outside its rule's constraint is held.
"""

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from lunaris_server.core.versions import Part, parts, sort_key

MAX_CONSTRAINT = 128

_COMPARISONS: dict[str, Callable[[str, str], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
    "=": operator.eq,
}
_CLAUSE = re.compile(r"(<=|>=|==|!=|<|>|=)?\s*([0-9A-Za-z][0-9A-Za-z.+_-]*?)(\.\*)?")


class BadConstraint(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class _Clause:
    op: str
    """One of the comparisons, or ``*`` for a wildcard."""
    key: str
    """:func:`sort_key` of the clause's version (unused by a wildcard)."""
    prefix: tuple[Part, ...] = ()
    """A wildcard's parts, which the version's must start with."""

    def holds(self, version: str) -> bool:
        if self.op == "*":
            return parts(version)[: len(self.prefix)] == self.prefix
        return _COMPARISONS[self.op](sort_key(version), self.key)


@dataclass(frozen=True, slots=True)
class Constraint:
    text: str
    clauses: tuple[_Clause, ...]

    def allows(self, version: str) -> bool:
        return all(clause.holds(version) for clause in self.clauses)


def parse(text: str) -> Constraint:
    """The constraint ``text`` says, or BadConstraint saying what is wrong with it."""
    text = text.strip()
    if not text:
        raise BadConstraint("a version constraint cannot be empty")
    if len(text) > MAX_CONSTRAINT:
        raise BadConstraint(f"a version constraint has at most {MAX_CONSTRAINT} characters")
    clauses = []
    for part in text.split(","):
        found = _CLAUSE.fullmatch(part.strip())
        if found is None:
            raise BadConstraint(
                f"{part.strip()!r} is not a version constraint: write <3, >=8,<9 or 1.*"
            )
        op, version, wildcard = found.groups()
        if wildcard and op:
            raise BadConstraint(f"{part.strip()!r}: a wildcard takes no comparison")
        if wildcard:
            clauses.append(_Clause("*", "", parts(version)))
        else:
            clauses.append(_Clause(op or "==", sort_key(version)))
    return Constraint(text, tuple(clauses))
