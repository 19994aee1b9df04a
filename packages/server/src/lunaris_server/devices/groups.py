"""Device groups: a saved rule (hostname glob, tags any/all of a kind, OS contains, enrolled
with a given secret) and/or an explicit list of devices. Membership is asked of the database
each time (devices/membership.py); this module keeps the definitions."""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol.tags import TagList
from lunaris_protocol.text import DISPLAY_TEXT, MESSAGE_TEXT
from lunaris_server.audit import service as audit
from lunaris_server.core.errors import Conflict, InvalidInput, NotFound
from lunaris_server.core.ids import RowNumber
from lunaris_server.db.queries import insert_missing, referring_tables
from lunaris_server.devices.membership import member_condition, rule_condition
from lunaris_server.devices.models import Device, DeviceGroup, DeviceGroupMember
from lunaris_server.enrollment.models import EnrollmentSecret

MAX_GROUPS = 1_000
MAX_LISTED = 10_000
"""Devices a group lists explicitly (larger sets are better said by a rule or a tag)."""

Pattern = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255), DISPLAY_TEXT]


class GroupSpec(BaseModel):
    """What a group is: its name, its rule, and the devices it lists. Every criterion of
    the rule that is given must hold; a group without any lists only its devices."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128), DISPLAY_TEXT
    ]
    description: Annotated[str, StringConstraints(max_length=1000), MESSAGE_TEXT] = ""
    hostname_glob: Pattern | None = None
    """``*`` stands for any characters, ``?`` for one; case does not matter (``PC-BER-*``)."""
    os_contains: Pattern | None = None
    """Case-folded text the OS description contains (``Windows 11``)."""
    tags: TagList | None = None
    tags_match: Literal["any", "all"] = "any"
    """The device has any (or all) of ``tags``."""
    tag_source: Literal["admin", "agent", "any"] = "any"
    """Which tags count: those admins set, those the agent's config claims, or either. A PC
    can claim any agent tag; choose ``admin`` where that must not let it in."""
    enrollment_secret_id: RowNumber | None = None
    """Devices enrolled (or enrolled again) with this enrollment secret."""
    device_ids: list[UUID] = Field(default_factory=list, max_length=MAX_LISTED)
    """Devices in the group whatever the rule says."""


@dataclass(frozen=True, slots=True)
class Membership:
    group: DeviceGroup
    by_rule: bool
    listed: bool


async def get_group(session: AsyncSession, *, group_id: int) -> DeviceGroup:
    group = await session.get(DeviceGroup, group_id)
    if group is None:
        raise NotFound(f"no group with id {group_id}")
    return group


async def list_groups(session: AsyncSession) -> list[DeviceGroup]:
    return list(
        await session.scalars(
            select(DeviceGroup).order_by(func.lower(DeviceGroup.name), DeviceGroup.id)
        )
    )


async def listed_devices(session: AsyncSession, group_ids: list[int]) -> dict[int, list[str]]:
    """The devices each group lists explicitly."""
    listed: dict[int, list[str]] = {group_id: [] for group_id in group_ids}
    rows = await session.execute(
        select(DeviceGroupMember.group_id, DeviceGroupMember.device_id)
        .where(DeviceGroupMember.group_id.in_(group_ids))
        .order_by(DeviceGroupMember.group_id, DeviceGroupMember.device_id)
    )
    for group_id, device_id in rows:
        listed[group_id].append(device_id)
    return listed


async def member_counts(session: AsyncSession, groups: list[DeviceGroup]) -> dict[int, int]:
    """How many enrolled devices each group holds now: one pass over the devices for all."""
    if not groups:
        return {}
    lists = set(
        await session.scalars(
            select(DeviceGroupMember.group_id)
            .where(DeviceGroupMember.group_id.in_([g.id for g in groups]))
            .distinct()
        )
    )
    counts = (
        await session.execute(
            select(
                *(func.count().filter(member_condition(g, lists=g.id in lists)) for g in groups)
            ).where(Device.revoked_at.is_(None))
        )
    ).one()
    return {group.id: int(count) for group, count in zip(groups, counts, strict=True)}


async def groups_of(session: AsyncSession, *, device_id: str) -> list[Membership]:
    """The groups a device is in, and why (the rule, the list, or both)."""
    groups = await list_groups(session)
    listed = set(
        await session.scalars(
            select(DeviceGroupMember.group_id).where(DeviceGroupMember.device_id == device_id)
        )
    )
    ruled = [(g, rule) for g in groups if (rule := rule_condition(g, per_row=True)) is not None]
    matched: set[int] = set()
    if ruled:
        row = (
            await session.execute(
                select(*(rule.label(f"g{g.id}") for g, rule in ruled)).where(Device.id == device_id)
            )
        ).first()
        if row is not None:
            matched = {g.id for (g, _), hit in zip(ruled, row, strict=True) if hit}
    return [
        Membership(group=g, by_rule=g.id in matched, listed=g.id in listed)
        for g in groups
        if g.id in matched or g.id in listed
    ]


async def _check(session: AsyncSession, spec: GroupSpec, *, group_id: int | None) -> list[str]:
    """Refuses a name in use (case does not matter), an unknown secret or device; returns
    the listed device ids in their stored form."""
    same_name = await session.scalar(
        select(DeviceGroup.id).where(func.lower(DeviceGroup.name) == spec.name.lower())
    )
    if same_name is not None and same_name != group_id:
        raise Conflict(f"a group named {spec.name!r} exists already", details={"id": same_name})
    if (
        spec.enrollment_secret_id is not None
        and await session.get(EnrollmentSecret, spec.enrollment_secret_id) is None
    ):
        raise InvalidInput(f"no enrollment secret with id {spec.enrollment_secret_id}")
    device_ids = sorted({str(device_id) for device_id in spec.device_ids})
    known: set[str] = set()
    for start in range(0, len(device_ids), 1_000):
        chunk = device_ids[start : start + 1_000]
        known.update(await session.scalars(select(Device.id).where(Device.id.in_(chunk))))
    unknown = [device_id for device_id in device_ids if device_id not in known]
    if unknown:
        raise InvalidInput(
            f"{len(unknown)} of the listed devices do not exist: " + ", ".join(unknown[:5]),
            details={"unknown": unknown[:100]},
        )
    return device_ids


def _apply(group: DeviceGroup, spec: GroupSpec) -> None:
    group.name = spec.name
    group.description = spec.description
    group.hostname_glob = spec.hostname_glob or None
    group.os_contains = spec.os_contains or None
    group.tags = spec.tags or None
    group.tags_match = spec.tags_match
    group.tag_source = spec.tag_source
    group.enrollment_secret_id = spec.enrollment_secret_id


def _described(group: DeviceGroup, listed: int) -> dict[str, object]:
    return {
        "name": group.name,
        "hostname_glob": group.hostname_glob,
        "os_contains": group.os_contains,
        "tags": group.tags,
        "tags_match": group.tags_match,
        "tag_source": group.tag_source,
        "enrollment_secret_id": group.enrollment_secret_id,
        "listed_devices": listed,
    }


async def _list(
    session: AsyncSession, group: DeviceGroup, device_ids: list[str], *, by: str, now: datetime
) -> None:
    """Makes the group's explicit list exactly ``device_ids``."""
    await session.execute(
        delete(DeviceGroupMember).where(
            DeviceGroupMember.group_id == group.id,
            DeviceGroupMember.device_id.not_in(device_ids),
        )
    )
    await insert_missing(
        session,
        DeviceGroupMember.__table__,  # type: ignore[arg-type]
        [
            {"group_id": group.id, "device_id": device_id, "added_at": now, "added_by": by}
            for device_id in device_ids
        ],
    )


async def _save(
    session: AsyncSession,
    group: DeviceGroup,
    spec: GroupSpec,
    device_ids: list[str],
    *,
    actor: audit.Actor,
    now: datetime,
    action: str,
) -> DeviceGroup:
    _apply(group, spec)
    group.updated_at, group.updated_by = now, actor.name
    session.add(group)
    await session.flush()
    await _list(session, group, device_ids, by=actor.name, now=now)
    await audit.record(
        session,
        actor=actor,
        action=action,
        target=f"group:{group.id}",
        details=_described(group, len(device_ids)),
        now=now,
    )
    return group


async def create_group(
    session: AsyncSession, *, spec: GroupSpec, actor: audit.Actor, now: datetime
) -> DeviceGroup:
    existing = await session.scalar(select(func.count()).select_from(DeviceGroup))
    if (existing or 0) >= MAX_GROUPS:
        raise Conflict(f"there are {MAX_GROUPS} groups already; delete one first")
    device_ids = await _check(session, spec, group_id=None)
    group = DeviceGroup(created_at=now, created_by=actor.name)
    return await _save(
        session, group, spec, device_ids, actor=actor, now=now, action="group.create"
    )


async def update_group(
    session: AsyncSession, *, group_id: int, spec: GroupSpec, actor: audit.Actor, now: datetime
) -> DeviceGroup:
    """Replaces the group's definition as a whole (its rule and its list)."""
    group = await session.get(DeviceGroup, group_id, with_for_update=True)
    if group is None:
        raise NotFound(f"no group with id {group_id}")
    device_ids = await _check(session, spec, group_id=group_id)
    return await _save(
        session, group, spec, device_ids, actor=actor, now=now, action="group.update"
    )


async def delete_group(
    session: AsyncSession, *, group_id: int, actor: audit.Actor, now: datetime
) -> None:
    """Deletes a group nothing uses: the package rules and policies that name one keep it
    (409 naming them; the database would refuse too)."""
    group = await get_group(session, group_id=group_id)
    users = await referring_tables(session, DeviceGroup.__table__, group_id)  # type: ignore[arg-type]
    if users:
        named = " and ".join(user.replace("_", " ") for user in users)
        raise Conflict(
            f"group {group.name!r} is in use by {named}: change those first",
            details={"used_by": users},
        )
    await audit.record(
        session,
        actor=actor,
        action="group.delete",
        target=f"group:{group_id}",
        details={"name": group.name},
        now=now,
    )
    await session.delete(group)
    await session.flush()
