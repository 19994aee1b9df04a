"""Package rules kept: adding, replacing and deleting them (audited), and reading them as a
RuleBook to decide a device's or the fleet's updates (updates/rules.py)."""

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from lunaris_server.audit import service as audit
from lunaris_server.core.errors import Conflict, InvalidInput, NotFound
from lunaris_server.devices import groups
from lunaris_server.devices.membership import member_condition
from lunaris_server.devices.models import Device, DeviceGroup
from lunaris_server.updates.models import DeviceUpdate, PackageRule
from lunaris_server.updates.rules import OFFERED, Decision, RuleAction, RuleBook, RuleSpec, is_glob

MAX_RULES = 5_000


async def load_book(session: AsyncSession) -> RuleBook:
    rules = list(await session.scalars(select(PackageRule).order_by(PackageRule.id)))
    rows = await session.execute(select(DeviceGroup.id, DeviceGroup.name))
    names = {row.id: row.name for row in rows}
    return RuleBook(rules=rules, group_names=names)


def packages_named(
    book: RuleBook,
    action: RuleAction,
    column: ColumnElement[str] | InstrumentedAttribute[str] = DeviceUpdate.package_identifier,
) -> ColumnElement[bool] | None:
    """The condition on rows with a package id ``column`` that a rule with ``action`` names
    (its exact id or its glob, case-folded), so that only those are read; None when no rule
    has that action. The rules still decide each row (RuleBook.decide): another rule may be
    more specific."""
    folded = func.lower(column)  # on device_updates: ix_device_updates_package_folded
    named = [rule.package.lower() for rule in book.rules if rule.action == action]
    conditions: list[ColumnElement[bool]] = []
    exact = [package for package in named if not is_glob(package)]
    if exact:
        conditions.append(folded.in_(exact))
    for pattern in (package for package in named if is_glob(package)):
        escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(folded.like(escaped.replace("*", "%"), escape="\\"))
    return or_(*conditions) if conditions else None


async def get_rule(session: AsyncSession, *, rule_id: int) -> PackageRule:
    rule = await session.get(PackageRule, rule_id)
    if rule is None:
        raise NotFound(f"no package rule with id {rule_id}")
    return rule


async def device_decisions(
    session: AsyncSession, *, device_id: str, updates: list[DeviceUpdate]
) -> dict[int, Decision]:
    """How each of a device's waiting updates is treated, by row id."""
    book = await load_book(session)
    group_ids: frozenset[int] = frozenset()
    if any(rule.group_id is not None for rule in book.rules):
        memberships = await groups.groups_of(session, device_id=device_id)
        group_ids = frozenset(m.group.id for m in memberships)
    return {
        u.id: book.decide(
            package=u.package_identifier,
            source=u.source,
            available_version=u.available_version,
            group_ids=group_ids,
        )
        for u in updates
    }


async def _check(session: AsyncSession, spec: RuleSpec, *, rule_id: int | None) -> None:
    if spec.group_id is not None:
        try:
            await groups.get_group(session, group_id=spec.group_id)
        except NotFound:
            raise InvalidInput(f"no group with id {spec.group_id}") from None
    same = await session.scalar(
        select(PackageRule.id).where(
            func.lower(PackageRule.package) == spec.package.lower(),
            PackageRule.group_id.is_(None)
            if spec.group_id is None
            else PackageRule.group_id == spec.group_id,
            PackageRule.source.is_(None)
            if spec.source is None
            else PackageRule.source == spec.source,
        )
    )
    if same is not None and same != rule_id:
        raise Conflict(
            f"rule #{same} is for {spec.package} in this scope already: change that one",
            details={"id": same},
        )


def _apply(rule: PackageRule, spec: RuleSpec) -> None:
    rule.package = spec.package
    rule.source = spec.source
    rule.group_id = spec.group_id
    rule.action = spec.action.value
    rule.version_constraint = spec.version_constraint
    rule.skip_version = spec.skip_version
    rule.note = spec.note


async def _save(
    session: AsyncSession, rule: PackageRule, *, actor: audit.Actor, now: datetime, action: str
) -> PackageRule:
    rule.updated_at, rule.updated_by = now, actor.name
    session.add(rule)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action=action,
        target=f"package_rule:{rule.id}",
        details={
            "package": rule.package,
            "source": rule.source,
            "group_id": rule.group_id,
            "action": rule.action,
            "version_constraint": rule.version_constraint,
            "skip_version": rule.skip_version,
        },
        now=now,
    )
    return rule


async def create_rule(
    session: AsyncSession, *, spec: RuleSpec, actor: audit.Actor, now: datetime
) -> PackageRule:
    if ((await session.scalar(select(func.count()).select_from(PackageRule))) or 0) >= MAX_RULES:
        raise Conflict(f"there are {MAX_RULES} package rules already; delete some first")
    await _check(session, spec, rule_id=None)
    rule = PackageRule(created_at=now, created_by=actor.name)
    _apply(rule, spec)
    return await _save(session, rule, actor=actor, now=now, action="package_rule.create")


async def update_rule(
    session: AsyncSession, *, rule_id: int, spec: RuleSpec, actor: audit.Actor, now: datetime
) -> PackageRule:
    rule = await get_rule(session, rule_id=rule_id)
    await _check(session, spec, rule_id=rule_id)
    _apply(rule, spec)
    return await _save(session, rule, actor=actor, now=now, action="package_rule.update")


async def delete_rule(
    session: AsyncSession, *, rule_id: int, actor: audit.Actor, now: datetime
) -> None:
    rule = await get_rule(session, rule_id=rule_id)
    await audit.record(
        session,
        actor=actor,
        action="package_rule.delete",
        target=f"package_rule:{rule.id}",
        details={"package": rule.package, "group_id": rule.group_id, "action": rule.action},
        now=now,
    )
    await session.delete(rule)
    await session.flush()


async def rule_groups(
    session: AsyncSession,
    book: RuleBook,
    device_ids: Collection[str],
    *,
    span: tuple[str, str] | None = None,
) -> dict[str, frozenset[int]]:
    """The groups each device is in, among those the rules name: per such group, one query a
    thousand devices, or one for the whole ``span`` (the ids lie between these two: a page
    of devices, asked by range rather than by list)."""
    named = sorted({rule.group_id for rule in book.rules if rule.group_id is not None})
    members: dict[str, set[int]] = defaultdict(set)
    if named:
        found = list(await session.scalars(select(DeviceGroup).where(DeviceGroup.id.in_(named))))
        ids = sorted(set(device_ids))
        within = (
            [Device.id.between(*span)]
            if span is not None
            else [Device.id.in_(ids[start : start + 1000]) for start in range(0, len(ids), 1000)]
        )
        for group in found:
            for condition in within:
                rows = await session.scalars(
                    select(Device.id).where(
                        condition, Device.revoked_at.is_(None), member_condition(group)
                    )
                )
                for device_id in rows:
                    members[device_id].add(group.id)
    return {device_id: frozenset(members[device_id]) for device_id in device_ids}


async def offered_updates(
    session: AsyncSession, device_ids: list[str]
) -> dict[str, list[str] | None]:
    """What "update all" installs on each device: None (every update, as the agent finds
    them) where no rule holds any back, else the ids of those its rules offer (auto or
    manual), winget-targetable ones only: possibly none."""
    book = await load_book(session)
    offered: dict[str, list[str] | None] = dict.fromkeys(device_ids)
    if not book.rules:
        return offered
    member_of = await rule_groups(session, book, device_ids)
    for start in range(0, len(device_ids), 1000):
        chunk = device_ids[start : start + 1000]
        rows = await session.execute(
            select(
                DeviceUpdate.device_id,
                DeviceUpdate.package_identifier,
                DeviceUpdate.source,
                DeviceUpdate.available_version,
                DeviceUpdate.truncated,
            )
            .where(DeviceUpdate.device_id.in_(chunk))
            # Each device's in the order its page lists them.
            .order_by(
                DeviceUpdate.device_id,
                func.lower(DeviceUpdate.name),
                DeviceUpdate.package_identifier,
                DeviceUpdate.id,
            )
        )
        kept: dict[str, list[str]] = defaultdict(list)
        held: set[str] = set()
        for device_id, package, source, available, truncated in rows:
            decision = book.decide(
                package=package,
                source=source,
                available_version=available,
                group_ids=member_of[device_id],
            )
            if decision.state not in OFFERED:
                held.add(device_id)
            elif not truncated:
                kept[device_id].append(package)
        for device_id in held:
            offered[device_id] = list(dict.fromkeys(kept[device_id]))
    return offered


async def held_devices(
    session: AsyncSession, device_ids: list[str], *, package: str, source: str | None
) -> set[str]:
    """The devices among ``device_ids`` on which the package rules offer no waiting update of
    ``package`` (from ``source``, or any): ignored, held by a pin, or the version skipped."""
    book = await load_book(session)
    if not book.names(package):
        return set()  # no rule names it: every device is offered it
    member_of = await rule_groups(session, book, device_ids)
    offered: set[str] = set()
    conditions = [DeviceUpdate.package_identifier == package]
    if source is not None:
        conditions.append(DeviceUpdate.source == source)
    for start in range(0, len(device_ids), 1000):
        rows = await session.execute(
            select(
                DeviceUpdate.device_id, DeviceUpdate.source, DeviceUpdate.available_version
            ).where(DeviceUpdate.device_id.in_(device_ids[start : start + 1000]), *conditions)
        )
        for device_id, row_source, available in rows:
            decision = book.decide(
                package=package,
                source=row_source,
                available_version=available,
                group_ids=member_of[device_id],
            )
            if decision.state in OFFERED:
                offered.add(device_id)
    return set(device_ids) - offered


async def offered_packages(session: AsyncSession, *, device_id: str) -> list[str] | None:
    """:func:`offered_updates` of one device."""
    return (await offered_updates(session, [device_id]))[device_id]
