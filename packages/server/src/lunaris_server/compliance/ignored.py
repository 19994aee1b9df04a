"""Which waiting updates a package rule ignores, as SQL, decided by the rules' own code.

Precedence (updates/rules.py) stays in Python, in RuleBook.decide: it is never written again
in SQL. What the database needs is small: the (package, source) pairs of the fleet that an
``ignore`` rule names at all (a few, read from the fleet counters), and, when group rules
are among the rules that name them, which of those groups a device is in. Devices are told
apart by a membership key (one character per such group: ``1`` in it, ``0`` not), which
the database computes per device; each key seen in the fleet is decided in Python once per
pair. The result is a condition on ``device_updates`` rows joined to that key: a pair
ignored for every key, or a (pair, key) triple.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    String,
    bindparam,
    case,
    false,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.devices.membership import member_condition
from lunaris_server.devices.models import Device, DeviceGroup
from lunaris_server.updates import rule_store
from lunaris_server.updates.models import DeviceUpdate, FleetPackage
from lunaris_server.updates.rules import RuleAction, RuleBook, UpdateState


@dataclass(frozen=True, slots=True)
class Ignored:
    everywhere: list[tuple[str, str]]
    """(package, source or "") that rules ignore on every device."""
    by_key: list[tuple[str, str, str]]
    """(package, source or "", membership key) ignored on the devices with that key."""
    groups: list[DeviceGroup]
    """The groups of the membership key, in its order."""

    def key(self) -> ColumnElement[str] | None:
        """The devices row's membership key (None: no group rule matters)."""
        return membership_key(self.groups) if self.by_key else None

    def condition(self, key: ColumnElement[str] | None) -> ColumnElement[bool]:
        """True on the update rows a rule ignores (``key``: the row's device's key)."""
        pair: list[Any] = [DeviceUpdate.package_identifier, func.coalesce(DeviceUpdate.source, "")]
        conditions: list[ColumnElement[bool]] = []
        if self.everywhere:
            conditions.append(_joined(pair).in_(_inline(self.everywhere)))
        if self.by_key and key is not None:
            conditions.append(_joined([*pair, key]).in_(_inline(self.by_key)))
        return or_(*conditions) if conditions else false()


SEPARATOR = "\x1f"
"""Between the parts of a compared key: package ids and sources never hold a control
character (lunaris_protocol.text), and membership keys are 0s and 1s."""


def _joined(parts: list[Any]) -> ColumnElement[str]:
    column: ColumnElement[str] = parts[0]
    for part in parts[1:]:
        column = column.concat(literal(SEPARATOR, String)).concat(part)
    return column


def _inline(values: Sequence[tuple[str, ...]]) -> BindParameter[Any]:
    """The keys, joined, written into the statement as literals: an ignore glob can name
    thousands of the fleet's packages (times the membership keys), past the databases'
    limits on bound parameters (32,767 for PostgreSQL's protocol), and a list of row values
    that long is too deep for PostgreSQL to plan; a list of strings becomes one array."""
    joined = [SEPARATOR.join(value) for value in values]
    return bindparam(None, joined, expanding=True, literal_execute=True, type_=String())


def membership_key(groups: list[DeviceGroup]) -> ColumnElement[str]:
    """A column of the devices row: ``1`` or ``0`` for each group, in order."""
    flags = [
        case((member_condition(group), literal("1", String)), else_=literal("0", String))
        for group in groups
    ]
    column: ColumnElement[str] = flags[0]
    for flag in flags[1:]:
        column = column.concat(flag)
    return column


def _group_sets(keys: list[str], groups: list[DeviceGroup]) -> dict[str, frozenset[int]]:
    return {
        key: frozenset(group.id for group, flag in zip(groups, key, strict=True) if flag == "1")
        for key in keys
    }


async def ignored_updates(session: AsyncSession, book: RuleBook | None = None) -> Ignored:
    """What the rules ignore in the fleet now (enrolled devices)."""
    book = book or await rule_store.load_book(session)
    named = rule_store.packages_named(book, RuleAction.IGNORE, FleetPackage.package_identifier)
    if named is None:
        return Ignored([], [], [])
    pairs = [
        (package, source)
        for package, source in await session.execute(
            select(FleetPackage.package_identifier, FleetPackage.source).where(named)
        )
    ]
    if not pairs:
        return Ignored([], [], [])

    def decide(package: str, source: str, group_ids: frozenset[int]) -> bool:
        # Whether a rule ignores an update does not depend on its version.
        decision = book.decide(
            package=package, source=source or None, available_version="", group_ids=group_ids
        )
        return decision.state is UpdateState.IGNORED

    group_ids = sorted(
        {
            rule.group_id
            for package, source in pairs
            for rule in book.matching(
                package=package,
                source=source or None,
                group_ids=frozenset(book.group_names),
            )
            if rule.group_id is not None
        }
    )
    if not group_ids:
        return Ignored([p for p in pairs if decide(*p, frozenset())], [], [])
    groups = list(
        await session.scalars(
            select(DeviceGroup).where(DeviceGroup.id.in_(group_ids)).order_by(DeviceGroup.id)
        )
    )
    key = membership_key(groups)
    keys = list(await session.scalars(select(key).where(Device.revoked_at.is_(None)).distinct()))
    sets = _group_sets(keys, groups)
    everywhere: list[tuple[str, str]] = []
    by_key: list[tuple[str, str, str]] = []
    for package, source in pairs:
        ignored_keys = [k for k in keys if decide(package, source, sets[k])]
        if ignored_keys and len(ignored_keys) == len(keys):
            everywhere.append((package, source))
        else:
            by_key.extend((package, source, k) for k in ignored_keys)
    return Ignored(everywhere, by_key, groups)
