"""Merging a reimaged PC's new record into its old one.

A PC that was wiped and set up again gets a fresh agent, which enrolls under a new id: the
console then shows two records for one PC, the old one offline with all its history. An
admin merges them: the old record's history (its update events and commands) moves to the
new record, which the PC's agent speaks for; the old record is revoked and remembers where
it went, so its links lead to the new one. What moves is each domain's to say (see
lifecycle.py). The new record keeps its own id, token and
current update list, so the agent needs to know nothing of it.

Only a record that is not speaking any more can be merged away (revoked, or offline): one
still heartbeating is another PC, not a reimaged one.
"""

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import DeviceStatus
from lunaris_server.audit import service as audit
from lunaris_server.core.errors import Conflict, InvalidInput, NotFound
from lunaris_server.core.liveness import Liveness
from lunaris_server.devices import events
from lunaris_server.devices import service as devices
from lunaris_server.devices.lifecycle import DeviceLifecycle
from lunaris_server.devices.models import Device
from lunaris_server.realtime.outbox import announce


async def merge(
    session: AsyncSession,
    *,
    old_device_id: str,
    new_device_id: str,
    liveness: Liveness,
    now: datetime,
    actor: audit.Actor,
    lifecycle: DeviceLifecycle,
) -> Device:
    """Moves ``old_device_id``'s history to ``new_device_id`` and retires the old record;
    returns the new one."""
    if old_device_id == new_device_id:
        raise InvalidInput("a device cannot be merged into itself")
    # Both rows locked in id order, as every multi-device write takes them.
    first, second = sorted((old_device_id, new_device_id))
    locked = {
        device_id: await session.get(Device, device_id, with_for_update={"key_share": True})
        for device_id in (first, second)
    }
    old, new = locked[old_device_id], locked[new_device_id]
    if old is None or old.merged_into_id is not None:
        raise NotFound(f"no device with id {old_device_id} to merge")
    if new is None or new.revoked_at is not None:
        raise NotFound(f"no device with id {new_device_id}")
    if old.revoked_at is None and liveness.status(old, now) is DeviceStatus.ONLINE:
        raise Conflict(
            f"{old.hostname} is online: only a record that stopped speaking (offline or "
            "revoked) can be merged into the PC's new one"
        )
    if old.revoked_at is None:
        # Its open commands are closed and its waiting updates leave the fleet's counts.
        await devices.revoke(session, device_id=old.id, now=now, actor=actor, lifecycle=lifecycle)
    moved = await lifecycle.merged(session, old_id=old.id, new_id=new.id)
    old.merged_into_id = new.id
    new.enrolled_at = min(new.enrolled_at, old.enrolled_at)
    await session.flush()
    announce(session, events.device_status(new))
    await audit.record(
        session,
        actor=actor,
        action="device.merge",
        target=f"device:{new.id}",
        details={
            "hostname": new.hostname,
            "merged_device_id": old.id,
            "merged_hostname": old.hostname,
            **moved,
        },
        now=now,
    )
    return new


async def merged_into(session: AsyncSession, device_id: str) -> str | None:
    """Where a record merged away went (its old links lead there)."""
    return await session.scalar(select(Device.merged_into_id).where(Device.id == device_id))


MAX_CANDIDATES = 5


async def candidates(
    session: AsyncSession, device: Device, *, liveness: Liveness, now: datetime
) -> list[Device]:
    """Old records that may be this PC's: the same hostname, not speaking any more."""
    rows = await session.scalars(
        select(Device)
        .where(
            func.lower(Device.hostname) == device.hostname.lower(),
            Device.id != device.id,
            Device.merged_into_id.is_(None),
            or_(Device.revoked_at.is_not(None), Device.last_seen_at <= liveness.cutoff(now)),
        )
        .order_by(Device.last_seen_at.desc(), Device.id)
        .limit(MAX_CANDIDATES)
    )
    return list(rows)
