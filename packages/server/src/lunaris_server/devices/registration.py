"""Registration: enrolling a device, and enrolling a known one again only with proof.

A device id is not a secret (it is in every log line and URL), and an enrollment secret is
shared by a whole rollout. So holding both must not be enough to take an enrolled device's
place: that would lock its real agent out and hand its commands to whoever asked. A known,
enrolled (not revoked) device id gets a new token only

- with proof: the agent sends its current token;
- when the device never made an authenticated call and enrolled less than ``grace`` ago: the
  agent's first registration answer was lost on the way, so it asks again with the same id
  (once a device has spoken, or after the grace, this never passes again: an attacker who
  learns a new device's id within its first minutes is the window it leaves);
- or with an admin's approval of that very request: an attempt without proof is recorded
  as a pending re-enrolment (hostname, source address) under a key the asking agent made,
  shown on the device's page; an approved request lets the next attempt with that key in.

A revoked device may enroll again with a valid secret, unless it was revoked with "block".
Every refusal is audited with its reason; an unauthenticated caller is told only as much as
it needs to act (never whether a secret exists, expired, was used up or revoked).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import RegisterRequest
from lunaris_server.audit import service as audit
from lunaris_server.core.errors import Conflict, DomainError, Forbidden, NotAuthenticated
from lunaris_server.core.security import TokenKind, constant_time_equals, new_token, token_hash
from lunaris_server.devices import events, reenrollments, tags
from lunaris_server.devices.facts import note_restart, said_facts
from lunaris_server.devices.lifecycle import DeviceLifecycle
from lunaris_server.devices.models import Device, DeviceReenrollment, capability_text
from lunaris_server.devices.reenrollments import ReenrollmentStatus
from lunaris_server.devices.service import mark_seen
from lunaris_server.enrollment import service as enrollment
from lunaris_server.realtime.outbox import announce
from lunaris_server.web.throttle import RegistrationThrottle

REFUSED = "enrollment refused: this enrollment secret is not valid (ask your admin)"


class ReenrollmentPending(Conflict):
    code = "reenrollment_pending"


@dataclass(frozen=True, slots=True)
class Registration:
    device: Device
    device_token: str
    """Shown once to the agent, stored hashed."""
    created: bool


@dataclass(frozen=True, slots=True)
class Refusal:
    """A registration refused after its audit entry (and a pending request) were written:
    the caller commits, then raises ``error``."""

    error: DomainError


async def register(
    session: AsyncSession,
    *,
    request: RegisterRequest,
    now: datetime,
    ip: str | None,
    throttle: RegistrationThrottle,
    grace: timedelta,
    lifecycle: DeviceLifecycle,
) -> Registration | Refusal:
    """Enrolls a device, or enrolls a known one again when the rules above allow it.
    TooManyRequests, without checking the secret, while ``throttle`` holds the address or
    the secret back."""
    throttle.attempt(address=ip, secret=request.enrollment_secret)
    device_id = str(request.device_id)
    actor = audit.Actor(f"device:{device_id}", ip)
    device = await session.get(Device, device_id, with_for_update=True)
    # The secret is checked before anything about the device is revealed or recorded.
    try:
        if device is None:
            secret_id = await enrollment.consume_secret(
                session, plaintext=request.enrollment_secret, now=now
            )
            throttle.succeeded(address=ip)
            proof: str | DomainError = "new device"
        else:
            async with session.begin_nested() as attempt:
                secret_id = await enrollment.consume_secret(
                    session, plaintext=request.enrollment_secret, now=now
                )
                throttle.succeeded(address=ip)
                proof = await _proof(session, device, request, now=now, grace=grace)
                if isinstance(proof, DomainError):
                    await attempt.rollback()  # a refusal spends no use of the secret
    except NotAuthenticated as refused:
        await _refused(session, actor, request, reason=refused.message, now=now)
        return Refusal(NotAuthenticated(REFUSED))
    if isinstance(proof, DomainError):
        if isinstance(proof, ReenrollmentPending):
            assert device is not None
            capped = await _ask_for_approval(
                session, device, request, ip=ip, secret_id=secret_id, now=now
            )
            if capped is not None:
                proof = capped
                await _refused(session, actor, request, reason=capped.message, now=now)
        else:
            await _refused(session, actor, request, reason=proof.message, now=now)
        return Refusal(proof)
    return await _enroll(
        session, device, request, secret_id=secret_id, actor=actor, now=now, lifecycle=lifecycle
    )


async def _proof(
    session: AsyncSession,
    device: Device,
    request: RegisterRequest,
    *,
    now: datetime,
    grace: timedelta,
) -> str | DomainError:
    """Why this registration of a known device id may go ahead, or the error that refuses it."""
    if device.revoked_at is not None:
        if device.reenrollment_blocked:
            return Forbidden(
                "enrollment refused: this device was revoked and blocked from enrolling again; "
                "an admin can unblock it in the console"
            )
        return "revoked before"
    if request.device_token and constant_time_equals(
        token_hash(request.device_token), device.token_hash
    ):
        return "current token"
    if device.token_used_at is None and now - device.enrolled_at <= grace:
        return "never used a token, enrolled within the grace period"
    if request.registration_key:
        approved = await session.scalar(
            select(DeviceReenrollment).where(
                DeviceReenrollment.device_id == device.id,
                DeviceReenrollment.key_hash == token_hash(request.registration_key),
            )
        )
        if (
            approved is not None
            and approved.status == ReenrollmentStatus.APPROVED
            and approved.decided_at is not None
            and now - approved.decided_at <= reenrollments.APPROVAL_VALID_FOR
        ):
            approved.status = ReenrollmentStatus.COMPLETED.value
            return "approved by an admin"
        if approved is not None and approved.status == ReenrollmentStatus.REFUSED:
            return Forbidden("enrollment refused: an admin refused to enroll this device again")
        return ReenrollmentPending(
            "this device id is enrolled already: an admin must approve enrolling it again "
            "(on the device's page in the console), or revoke it first"
        )
    return Forbidden(
        "enrollment refused: this device id is enrolled already and the request carries no "
        "proof (this agent version cannot ask for approval); an admin can revoke the device "
        "to let it enroll again"
    )


async def _enroll(
    session: AsyncSession,
    device: Device | None,
    request: RegisterRequest,
    *,
    secret_id: int,
    actor: audit.Actor,
    now: datetime,
    lifecycle: DeviceLifecycle,
) -> Registration:
    device_token = new_token(TokenKind.DEVICE)
    created = device is None
    if device is None:
        device = Device(
            id=str(request.device_id), enrolled_at=now, updates_count=0, split_pending=False
        )
        session.add(device)
    elif device.revoked_at is not None:
        # Enrolled again: its waiting updates count in the fleet's figures again.
        await lifecycle.reenrolled(session, device_id=device.id)
    device.hostname = request.hostname
    device.os_version = request.os_version
    device.agent_version = request.agent_version
    device.agent_capabilities = capability_text(request.capabilities or [])
    device.time_zone = request.time_zone
    if request.booted_at is not None:
        device.booted_at = request.booted_at
    for field, value in said_facts(request).items():
        if value is not None:
            setattr(device, field, value)
    note_restart(device, windows_pending=request.reboot_pending, now=now)
    device.token_hash = token_hash(device_token)
    device.enrollment_secret_id = secret_id
    device.last_ip = actor.ip
    device.revoked_at = None
    device.reenrollment_blocked = False
    device.merged_into_id = None  # its old history stays where it was merged
    if not created:
        await reenrollments.close_open(session, device_id=device.id)
    mark_seen(device, now=now)
    await session.flush()
    if request.tags is not None:
        await tags.set_agent_tags(session, device_id=device.id, tags=request.tags)
    announce(session, events.device_status(device))
    await audit.record(
        session,
        actor=actor,
        action="device.register" if created else "device.reregister",
        target=f"device:{device.id}",
        details={"hostname": request.hostname, "enrollment_secret_id": secret_id},
        now=now,
    )
    return Registration(device=device, device_token=device_token, created=created)


async def _refused(
    session: AsyncSession,
    actor: audit.Actor,
    request: RegisterRequest,
    *,
    reason: str,
    now: datetime,
) -> None:
    await audit.record(
        session,
        actor=actor,
        action="device.register_refused",
        target=f"device:{request.device_id}",
        details={"hostname": request.hostname, "reason": reason},
        now=now,
    )


async def _ask_for_approval(
    session: AsyncSession,
    device: Device,
    request: RegisterRequest,
    *,
    ip: str | None,
    secret_id: int,
    now: datetime,
) -> DomainError | None:
    """Records (or counts again) the pending request, audited and announced the first time;
    the error that refuses it when too many wait for this device already."""
    assert request.registration_key
    key_hash = token_hash(request.registration_key)
    pending = await session.scalar(
        select(DeviceReenrollment).where(
            DeviceReenrollment.device_id == device.id, DeviceReenrollment.key_hash == key_hash
        )
    )
    if pending is not None and pending.status == ReenrollmentStatus.PENDING:
        # What the admin reads stays what was first asked; only the attempts are counted.
        pending.last_attempt_at = now
        pending.attempts += 1
        return None
    if await reenrollments.open_count(session, device_id=device.id) >= (
        reenrollments.MAX_OPEN_PER_DEVICE
    ):
        return Forbidden(
            "enrollment refused: too many requests to enroll this device again are waiting; "
            "an admin must answer them first"
        )
    if pending is not None:
        # Asked again after its approval was used, withdrawn, expired or closed (a lost
        # answer, say): a new request for an admin to see.
        await session.delete(pending)
        await session.flush()
    session.add(
        DeviceReenrollment(
            device_id=device.id,
            key_hash=key_hash,
            hostname=request.hostname,
            os_version=request.os_version,
            agent_version=request.agent_version,
            ip=ip,
            enrollment_secret_id=secret_id,
            requested_at=now,
            last_attempt_at=now,
            attempts=1,
            status=ReenrollmentStatus.PENDING.value,
        )
    )
    await session.flush()
    announce(session, events.device_status(device))
    await audit.record(
        session,
        actor=audit.Actor(f"device:{device.id}", ip),
        action="device.reenroll_requested",
        target=f"device:{device.id}",
        details={"hostname": request.hostname, "enrolled_hostname": device.hostname},
        now=now,
    )
    return None
