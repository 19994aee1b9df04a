"""Registrations of a known device id that came without proof, waiting for an admin: listed on
the device's page, approved or refused there, closed when the device is revoked or enrolled.
An approval admits the asking agent once, within ``APPROVAL_VALID_FOR``."""

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.audit import service as audit
from lunaris_server.core.errors import Conflict, NotFound
from lunaris_server.devices import events
from lunaris_server.devices.models import Device, DeviceReenrollment
from lunaris_server.realtime.outbox import announce

APPROVAL_VALID_FOR = timedelta(days=7)
MAX_OPEN_PER_DEVICE = 5
"""Requests waiting at once for one device: a secret holder cannot bury the real one."""


class ReenrollmentStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"
    COMPLETED = "completed"
    CLOSED = "closed"
    """The device was revoked or enrolled meanwhile."""


OPEN = (ReenrollmentStatus.PENDING.value, ReenrollmentStatus.APPROVED.value)


async def close_open(session: AsyncSession, *, device_id: str) -> None:
    """The device was revoked or got a new token: what waited for an admin is void."""
    await session.execute(
        update(DeviceReenrollment)
        .where(DeviceReenrollment.device_id == device_id, DeviceReenrollment.status.in_(OPEN))
        .values(status=ReenrollmentStatus.CLOSED.value)
        .execution_options(synchronize_session=False)
    )


async def open_count(session: AsyncSession, *, device_id: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(DeviceReenrollment)
        .where(DeviceReenrollment.device_id == device_id, DeviceReenrollment.status.in_(OPEN))
    )
    return count or 0


async def pending_reenrollments(
    session: AsyncSession, *, device_id: str
) -> list[DeviceReenrollment]:
    rows = await session.scalars(
        select(DeviceReenrollment)
        .where(
            DeviceReenrollment.device_id == device_id,
            DeviceReenrollment.status.in_(
                [ReenrollmentStatus.PENDING.value, ReenrollmentStatus.APPROVED.value]
            ),
        )
        .order_by(DeviceReenrollment.requested_at.desc(), DeviceReenrollment.id.desc())
        .limit(20)
    )
    return list(rows)


async def decide_reenrollment(
    session: AsyncSession,
    *,
    device_id: str,
    request_id: int,
    approve: bool,
    now: datetime,
    actor: audit.Actor,
) -> DeviceReenrollment:
    """An admin approves (the asking agent's next attempt registers) or refuses a pending
    request. Deciding twice the same way changes nothing; a decided request stays decided."""
    asked = await session.get(DeviceReenrollment, request_id, with_for_update=True)
    if asked is None or asked.device_id != device_id:
        raise NotFound(f"no re-enrolment request {request_id} for device {device_id}")
    wanted = ReenrollmentStatus.APPROVED if approve else ReenrollmentStatus.REFUSED
    if asked.status == wanted:
        return asked
    # A mistaken approval can be taken back until the agent has used it.
    withdrawn = asked.status == ReenrollmentStatus.APPROVED and not approve
    if asked.status != ReenrollmentStatus.PENDING and not withdrawn:
        raise Conflict(f"this request was {asked.status} already")
    asked.status = wanted.value
    asked.decided_by, asked.decided_at = actor.name, now
    device = await session.get(Device, device_id)
    assert device is not None  # the foreign key
    announce(session, events.device_status(device))
    await audit.record(
        session,
        actor=actor,
        action="device.reenroll_approved" if approve else "device.reenroll_refused",
        target=f"device:{device_id}",
        details={"hostname": asked.hostname, "ip": asked.ip},
        now=now,
    )
    return asked
