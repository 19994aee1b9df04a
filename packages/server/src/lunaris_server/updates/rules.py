"""Package rules: how Lunaris treats the updates of a package, and which rule decides.

A rule is for one package (its exact id, in one source or any) or an id glob
(``Microsoft.VisualStudio.*``), fleet-wide or for one group. It says ``auto`` (installed
without asking, under a policy), ``manual`` (the default: shown, an admin clicks) or
``ignore`` (not offered, not counted as missing), and may hold a version constraint (an
available version outside it is held) and one skipped version (a known-bad release, until a
newer one appears).

The most specific matching rule decides everything about an update (RULE_ORDER):

====  ==========================  ======================================================
rank  rule                        among several of one rank
====  ==========================  ======================================================
1     a group's, exact id          one naming the update's source before one for any
2     a group's, id glob           the longest glob (most literal characters) first
3     the fleet's, exact id        as 1
4     the fleet's, id glob         as 2
5     none: ``manual``
====  ==========================  ======================================================

and, among equals (two groups of the device with a rule of one rank), the older rule. Ids
compare case-folded, as winget's do. The state of an update follows from the rule that
decides it: ``ignored``; else ``skipped`` when its available version is the skipped one;
else ``held`` when the version is outside the constraint; else ``auto`` or ``manual``.
"""

from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

from lunaris_protocol.text import IDENTIFIER, MESSAGE_TEXT
from lunaris_server.core.ids import RowNumber
from lunaris_server.updates.constraints import BadConstraint, parse
from lunaris_server.updates.models import PackageRule

RULE_ORDER = ("group exact id", "group glob", "fleet exact id", "fleet glob", "default")


class RuleAction(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"
    IGNORE = "ignore"


class UpdateState(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"
    IGNORED = "ignored"
    HELD = "held"
    SKIPPED = "skipped"


OFFERED = frozenset({UpdateState.AUTO, UpdateState.MANUAL})
"""The states in which an update is offered to admins (the others say why not)."""


Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=128), IDENTIFIER]


class RuleSpec(BaseModel):
    """A rule as an admin writes it (``POST``/``PUT /api/package-rules``)."""

    model_config = ConfigDict(extra="forbid")

    package: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256), IDENTIFIER
    ]
    """An exact package id, or a glob where ``*`` stands for any characters."""
    source: Literal["winget", "msstore"] | None = None
    """Only the package from this source; every source when null."""
    group_id: RowNumber | None = None
    """Only for the devices in this group; the whole fleet when null."""
    action: RuleAction = RuleAction.MANUAL
    version_constraint: Text | None = None
    """``<3``, ``8.*``, ``>=8,<9``: an available version outside it is held."""
    skip_version: Text | None = None
    """An available version not to install, until a newer one appears."""
    note: Annotated[str, StringConstraints(max_length=500), MESSAGE_TEXT] = ""
    """Why (shown beside the rule's decisions)."""

    @field_validator("package")
    @classmethod
    def _no_spaces(cls, value: str) -> str:
        if any(char.isspace() for char in value):
            raise ValueError("a package id or glob has no spaces")
        return value

    @field_validator("version_constraint")
    @classmethod
    def _constraint(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            return parse(value).text
        except BadConstraint as error:
            raise ValueError(str(error)) from None

    @field_validator("skip_version")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None


def is_glob(package: str) -> bool:
    return "*" in package


def _rank(rule: PackageRule) -> tuple[int, int, int, int]:
    """Higher is more specific (the module's table); the older rule wins a tie."""
    level = (2 if rule.group_id is not None else 0) + (0 if is_glob(rule.package) else 1)
    literal = len(rule.package.replace("*", ""))
    return (level, rule.source is not None, literal, -rule.id)


def _names(rule: PackageRule, folded_package: str) -> bool:
    pattern = rule.package.lower()
    if is_glob(rule.package):
        return fnmatchcase(folded_package, pattern)
    return folded_package == pattern


@dataclass(frozen=True, slots=True)
class Decision:
    state: UpdateState
    rule: PackageRule | None
    """The rule that decided; None for the default."""
    reason: str
    """In words, for every screen that shows the state."""


@dataclass(frozen=True, slots=True)
class RuleBook:
    """Every rule, read once per page or tick, and the group names their reasons use."""

    rules: list[PackageRule]
    group_names: dict[int, str]

    def matching(
        self, *, package: str, source: str | None, group_ids: frozenset[int]
    ) -> list[PackageRule]:
        """The rules that apply to ``package`` from ``source`` on a device in ``group_ids``,
        the one that decides first."""
        folded = package.lower()
        found = [
            rule
            for rule in self.rules
            if (rule.group_id is None or rule.group_id in group_ids)
            and (rule.source is None or rule.source == source)
            and _names(rule, folded)
        ]
        return sorted(found, key=_rank, reverse=True)

    def names(self, package: str) -> bool:
        """Whether any rule (of any group or source) names ``package``: if none does, every
        device decides it the default way."""
        folded = package.lower()
        return any(_names(rule, folded) for rule in self.rules)

    def describe(self, rule: PackageRule) -> str:
        scope = (
            "the fleet"
            if rule.group_id is None
            else f"group {self.group_names.get(rule.group_id, rule.group_id)}"
        )
        return f"rule #{rule.id} ({scope}: {rule.package})"

    def decide(
        self,
        *,
        package: str,
        source: str | None,
        available_version: str,
        group_ids: frozenset[int] = frozenset(),
    ) -> Decision:
        found = self.matching(package=package, source=source, group_ids=group_ids)
        if not found:
            return Decision(UpdateState.MANUAL, None, "no rule: installed when an admin asks")
        rule = found[0]
        named = self.describe(rule)
        if rule.action == RuleAction.IGNORE:
            return Decision(UpdateState.IGNORED, rule, f"ignored by {named}")
        if rule.skip_version is not None and rule.skip_version == available_version:
            return Decision(
                UpdateState.SKIPPED,
                rule,
                f"version {available_version} skipped by {named} until a newer one appears",
            )
        if rule.version_constraint and not parse(rule.version_constraint).allows(available_version):
            return Decision(
                UpdateState.HELD,
                rule,
                f"held by pin {rule.version_constraint} ({named}); available {available_version}",
            )
        if rule.action == RuleAction.AUTO:
            return Decision(UpdateState.AUTO, rule, f"installed automatically by {named}")
        return Decision(UpdateState.MANUAL, rule, f"installed when an admin asks ({named})")
