"""Device tags: the admins' (console, API, bulk) and the agent's (its config), kept apart.

Tags arrive normalised (:mod:`lunaris_protocol.tags` is the one rule); these functions store
them. An agent's tags are replaced by each report that carries them; an admin's by the
tags form or ``PUT /api/devices/{id}/tags``, or changed in bulk for a selection.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol.tags import MAX_TAGS
from lunaris_server.audit import service as audit
from lunaris_server.core.errors import InvalidInput
from lunaris_server.db.queries import insert_missing
from lunaris_server.devices.models import DeviceTag, TagSource

_TAGS: Table = DeviceTag.__table__  # type: ignore[assignment]


@dataclass(slots=True)
class Tags:
    """A device's tags, each kind sorted."""

    admin: list[str] = field(default_factory=list)
    agent: list[str] = field(default_factory=list)

    @property
    def all(self) -> list[str]:
        return sorted({*self.admin, *self.agent})


async def tags_of(session: AsyncSession, device_ids: Iterable[str]) -> dict[str, Tags]:
    """The tags of each device asked about (those with none map to empty ``Tags``)."""
    ids = list(dict.fromkeys(device_ids))
    found: dict[str, Tags] = {device_id: Tags() for device_id in ids}
    for start in range(0, len(ids), 1_000):
        rows = await session.execute(
            select(DeviceTag.device_id, DeviceTag.source, DeviceTag.tag)
            .where(DeviceTag.device_id.in_(ids[start : start + 1_000]))
            .order_by(DeviceTag.device_id, DeviceTag.source, DeviceTag.tag)
        )
        for device_id, source, tag in rows:
            kind = found[device_id].admin if source == TagSource.ADMIN else found[device_id].agent
            kind.append(tag)
    return found


async def _replace(
    session: AsyncSession, *, device_id: str, source: TagSource, tags: list[str]
) -> tuple[list[str], list[str]]:
    """Makes ``device_id``'s tags of ``source`` exactly ``tags``; returns (added, removed)."""
    current = set(
        await session.scalars(
            select(DeviceTag.tag).where(
                DeviceTag.device_id == device_id, DeviceTag.source == source
            )
        )
    )
    wanted = set(tags)
    added, removed = sorted(wanted - current), sorted(current - wanted)
    if removed:
        await session.execute(
            delete(DeviceTag).where(
                DeviceTag.device_id == device_id,
                DeviceTag.source == source,
                DeviceTag.tag.in_(removed),
            )
        )
    await insert_missing(
        session,
        _TAGS,
        [{"device_id": device_id, "source": source.value, "tag": tag} for tag in added],
    )
    return added, removed


async def set_agent_tags(session: AsyncSession, *, device_id: str, tags: list[str]) -> bool:
    """The tags the device's agent claims now; True when they changed. Not audited: the
    agent's config is the PC's, and every change shows on the device's page."""
    added, removed = await _replace(session, device_id=device_id, source=TagSource.AGENT, tags=tags)
    return bool(added or removed)


async def set_admin_tags(
    session: AsyncSession, *, device_id: str, tags: list[str], actor: audit.Actor, now: datetime
) -> bool:
    """Replaces the admins' tags of a device (which must exist); True when they changed."""
    added, removed = await _replace(session, device_id=device_id, source=TagSource.ADMIN, tags=tags)
    if added or removed:
        await audit.record(
            session,
            actor=actor,
            action="device.tags",
            target=f"device:{device_id}",
            details={"added": added, "removed": removed, "tags": tags},
            now=now,
        )
    return bool(added or removed)


@dataclass(frozen=True, slots=True)
class BulkTagging:
    devices: int
    """Devices selected."""
    changed: int
    """Devices whose tags changed."""


async def change_admin_tags(
    session: AsyncSession,
    *,
    device_ids: list[str],
    add: list[str],
    remove: list[str],
    actor: audit.Actor,
    now: datetime,
    selection: dict[str, object],
) -> BulkTagging:
    """Adds ``add`` to and takes ``remove`` from the admins' tags of every device listed
    (existing, not revoked: the caller selected them), in one transaction and one audit
    entry. ``selection`` says how they were chosen, for the audit log."""
    if not add and not remove:
        raise InvalidInput("say which tags to add or remove")
    if set(add) & set(remove):
        raise InvalidInput("a tag cannot be both added and removed")
    current: dict[str, set[str]] = defaultdict(set)
    for start in range(0, len(device_ids), 1_000):
        chunk = device_ids[start : start + 1_000]
        rows = await session.execute(
            select(DeviceTag.device_id, DeviceTag.tag).where(
                DeviceTag.device_id.in_(chunk), DeviceTag.source == TagSource.ADMIN
            )
        )
        for device_id, tag in rows:
            current[device_id].add(tag)
    too_many = [d for d in device_ids if len((current[d] - set(remove)) | set(add)) > MAX_TAGS]
    if too_many:
        raise InvalidInput(
            f"{len(too_many)} of the devices would have more than {MAX_TAGS} tags",
            details={"devices": too_many[:100]},
        )
    changed: set[str] = set()
    if remove:
        for start in range(0, len(device_ids), 1_000):
            chunk = device_ids[start : start + 1_000]
            changed.update(d for d in chunk if current[d] & set(remove))
            await session.execute(
                delete(DeviceTag).where(
                    DeviceTag.device_id.in_(chunk),
                    DeviceTag.source == TagSource.ADMIN,
                    DeviceTag.tag.in_(remove),
                )
            )
    new_rows = [
        {"device_id": device_id, "source": TagSource.ADMIN.value, "tag": tag}
        for device_id in device_ids
        for tag in add
        if tag not in current[device_id]
    ]
    changed.update(row["device_id"] for row in new_rows)
    await insert_missing(session, _TAGS, new_rows)
    await audit.record(
        session,
        actor=actor,
        action="device.tags_bulk",
        target=None,
        details={
            "add": add,
            "remove": remove,
            "devices": len(device_ids),
            "changed": len(changed),
            "selection": selection,
        },
        now=now,
    )
    return BulkTagging(devices=len(device_ids), changed=len(changed))
