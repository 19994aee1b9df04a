"""Splitting a cloned identity: two PCs made from one disk image share a device id and token
(see clones.py), and an admin decides they are two devices.

Both PCs hold the same credentials, so nothing cryptographic tells them apart: what does is
what each says about itself. The admin names the other PC by the hostname it reports (or,
for clones that kept one hostname, the address it speaks from), choosing from the two the
flag was raised for. At that PC's next heartbeat with the shared token the server makes it a
device of its own and answers with its new id and token instead of a heartbeat (no
commands: what waits for the shared record is not that PC's). Until the new device first
speaks with its token, another heartbeat from the other PC (the answer was lost) gets the
same new device with a fresh token, and the old one no longer works. Once the new device has
spoken, the split is complete and the flag on the shared record is lowered.

Nothing else is intercepted meanwhile: reports and progress steps sent with the shared token
land on the shared record, as before the split. An agent too old to take a new identity
keeps heartbeating with the shared one; its heartbeats are then not recorded on the shared
record (the split waits for it) until an admin cancels the split.
"""

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import HeartbeatRequest, NewIdentity
from lunaris_server.audit import service as audit
from lunaris_server.core.errors import Conflict, InvalidInput, NotFound
from lunaris_server.core.security import TokenKind, new_token, token_hash
from lunaris_server.devices import clones, events
from lunaris_server.devices.models import Device, DeviceSplit, SplitStatus, capability_text
from lunaris_server.realtime.outbox import announce

OPEN = (SplitStatus.PENDING.value, SplitStatus.HANDED_OVER.value)


async def request_split(
    session: AsyncSession,
    *,
    device_id: str,
    hostname: str | None,
    address: str | None,
    now: datetime,
    actor: audit.Actor,
) -> DeviceSplit:
    """Records that the PC speaking with ``hostname`` (or from ``address``) is to become a
    device of its own; replaces a split of this device still waiting."""
    if (hostname is None) == (address is None):
        raise InvalidInput("name the other PC by its hostname or by its address (one of them)")
    device = await _listed_device(session, device_id)
    if device.clone_suspected_at is None:
        raise Conflict("only a device flagged as cloned can be split")
    if hostname is not None and hostname.casefold() not in {
        seen.casefold() for seen in (device.hostname, device.previous_hostname) if seen
    }:
        raise InvalidInput(f"{hostname!r} is not one of the hostnames this device alternated")
    if address is not None and address not in {device.last_ip, device.previous_ip}:
        raise InvalidInput(f"{address!r} is not one of the addresses this device alternated")
    for waiting in await _open_splits(session, device.id):
        waiting.status, waiting.finished_at = SplitStatus.CANCELLED.value, now
    split = DeviceSplit(
        device_id=device.id,
        hostname=hostname,
        address=address,
        requested_by=actor.name,
        requested_at=now,
        status=SplitStatus.PENDING.value,
    )
    session.add(split)
    device.split_pending = True
    await session.flush()
    announce(session, events.device_status(device))  # no process answers it from its cache
    await audit.record(
        session,
        actor=actor,
        action="device.split_requested",
        target=f"device:{device.id}",
        details={"hostname": device.hostname, "other_pc": hostname or address},
        now=now,
    )
    return split


async def cancel_split(
    session: AsyncSession, *, device_id: str, now: datetime, actor: audit.Actor
) -> Device:
    """Withdraws a split still waiting; a device already handed over stays a device."""
    device = await _listed_device(session, device_id)
    waiting = await _open_splits(session, device.id)
    if not waiting:
        raise Conflict("this device has no split waiting")
    for split in waiting:
        split.status, split.finished_at = SplitStatus.CANCELLED.value, now
    device.split_pending = False
    announce(session, events.device_status(device))
    await audit.record(
        session,
        actor=actor,
        action="device.split_cancelled",
        target=f"device:{device.id}",
        details={"hostname": device.hostname},
        now=now,
    )
    return device


async def history(session: AsyncSession, device_id: str) -> list[DeviceSplit]:
    rows = await session.scalars(
        select(DeviceSplit)
        .where(DeviceSplit.device_id == device_id)
        .order_by(DeviceSplit.id.desc())
    )
    return list(rows)


async def open_split(session: AsyncSession, device_id: str) -> DeviceSplit | None:
    splits = await _open_splits(session, device_id)
    return splits[0] if splits else None


async def hand_over(
    session: AsyncSession,
    device: Device,
    request: HeartbeatRequest,
    *,
    ip: str | None,
    now: datetime,
) -> NewIdentity | None:
    """For a heartbeat with the (locked) ``device``'s token while a split waits: the new
    identity when it comes from the PC to split off; None when the heartbeat is the other
    PC's and goes on as usual (completing the split once the new device has spoken)."""
    split = await open_split(session, device.id)
    if split is None:
        device.split_pending = False
        return None
    new_device = (
        None if split.new_device_id is None else await session.get(Device, split.new_device_id)
    )
    if new_device is not None and new_device.token_used_at is not None:
        await _complete(session, split, device, new_device, now=now)
        return None
    if not _is_other_pc(split, request, ip):
        return None
    token = new_token(TokenKind.DEVICE)
    if new_device is None:
        new_device = Device(
            id=str(uuid.uuid4()),
            hostname=request.hostname or split.hostname or device.hostname,
            os_version=request.os_version or device.os_version,
            agent_version=request.agent_version or device.agent_version,
            agent_capabilities=device.agent_capabilities
            if request.capabilities is None
            else capability_text(request.capabilities),
            time_zone=request.time_zone or device.time_zone,
            enrolled_at=now,
            enrollment_secret_id=device.enrollment_secret_id,
            last_seen_at=now,
            last_ip=ip,
            updates_count=0,
            reenrollment_blocked=False,
            split_pending=False,
            token_hash=token_hash(token),
        )
        session.add(new_device)
        split.new_device_id, split.status = new_device.id, SplitStatus.HANDED_OVER.value
        split.handed_over_at = now
        await session.flush()
        await audit.record(
            session,
            actor=audit.Actor(f"device:{device.id}", ip),
            action="device.split_handed_over",
            target=f"device:{device.id}",
            details={"hostname": new_device.hostname, "new_device_id": new_device.id},
            now=now,
        )
    else:
        # The answer that carried the new token was lost: a fresh one, the old one dies.
        new_device.token_hash = token_hash(token)
        await session.flush()
    announce(session, events.device_status(new_device))
    return NewIdentity(device_id=uuid.UUID(new_device.id), device_token=token)


def _is_other_pc(split: DeviceSplit, request: HeartbeatRequest, ip: str | None) -> bool:
    if split.hostname is not None:
        return request.hostname is not None and (
            request.hostname.casefold() == split.hostname.casefold()
        )
    return ip is not None and ip == split.address


async def _complete(
    session: AsyncSession, split: DeviceSplit, device: Device, new_device: Device, *, now: datetime
) -> None:
    split.status, split.finished_at = SplitStatus.COMPLETED.value, now
    device.split_pending = False
    clones.lower_flag(device)
    announce(session, events.device_status(device))
    await audit.record(
        session,
        actor=audit.Actor(f"device:{new_device.id}", new_device.last_ip),
        action="device.split",
        target=f"device:{device.id}",
        details={
            "hostname": device.hostname,
            "new_device_id": new_device.id,
            "new_hostname": new_device.hostname,
        },
        now=now,
    )


async def _listed_device(session: AsyncSession, device_id: str) -> Device:
    device = await session.get(Device, device_id, with_for_update={"key_share": True})
    if device is None or device.revoked_at is not None:
        raise NotFound(f"no device with id {device_id}")
    return device


async def _open_splits(session: AsyncSession, device_id: str) -> list[DeviceSplit]:
    rows = await session.scalars(
        select(DeviceSplit)
        .where(DeviceSplit.device_id == device_id, DeviceSplit.status.in_(OPEN))
        .order_by(DeviceSplit.id.desc())
    )
    return list(rows)
