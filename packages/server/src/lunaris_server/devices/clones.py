"""Two PCs with one identity: a disk image cloned after the agent enrolled carries the same
``config.json`` (device id and token) to every PC made from it. Their heartbeats then
alternate: hostname A, B, A... or address A, B, A... A device whose hostname or address goes
back to the one it had just before, within an hour, is flagged; its page says so, and an
admin can split it (the other PC enrolls anew) or clear the flag.

A PC that moves (a laptop from the office to home) changes address once, not back and forth
every minute; a dual-stack PC alternating between its IPv4 and IPv6 address is one PC, so
addresses of different families are not compared.
"""

import ipaddress
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.audit import service as audit
from lunaris_server.core.errors import NotFound
from lunaris_server.devices import events
from lunaris_server.devices.models import Device
from lunaris_server.realtime.outbox import announce

FLIP_WINDOW = timedelta(hours=1)
MAX_EVIDENCE = 600


def note_hostname(device: Device, hostname: str, *, now: datetime) -> bool:
    """Call before the device takes its new ``hostname``; True when it newly looks cloned."""
    flipped = _is_flip(device.previous_hostname, device.hostname_changed_at, hostname, now)
    device.previous_hostname, device.hostname_changed_at = device.hostname, now
    return flipped and _flag(device, f"hostnames {device.hostname} and {hostname}", now)


def note_address(device: Device, ip: str | None, *, now: datetime) -> tuple[bool, bool]:
    """Records where the device spoke from: (it moved within its address family, it newly
    looks cloned). The first address is only written down; one of the other family (a
    dual-stack PC) is not compared at all."""
    if ip is None or ip == device.last_ip or not same_family(device.last_ip, ip):
        return False, False
    if device.last_ip is None:
        device.last_ip = ip
        return False, False
    flipped = _is_flip(device.previous_ip, device.ip_changed_at, ip, now)
    previous = device.last_ip
    device.previous_ip, device.ip_changed_at, device.last_ip = previous, now, ip
    return True, flipped and _flag(device, f"addresses {previous} and {ip}", now)


def is_news(last_ip: str | None, ip: str | None) -> bool:
    """Does a heartbeat from ``ip`` tell anything about where the device is?"""
    return ip is not None and ip != last_ip and same_family(last_ip, ip)


async def clear_flag(
    session: AsyncSession, *, device_id: str, now: datetime, actor: audit.Actor
) -> Device:
    """An admin says it is one PC after all (it moved back and forth): the flag goes, and
    the alternation must be seen afresh to raise it again."""
    device = await session.get(Device, device_id, with_for_update={"key_share": True})
    if device is None or device.revoked_at is not None:
        raise NotFound(f"no device with id {device_id}")
    if device.clone_suspected_at is None:
        return device
    evidence = device.clone_evidence
    lower_flag(device)
    announce(session, events.device_status(device))
    await audit.record(
        session,
        actor=actor,
        action="device.clone_flag_cleared",
        target=f"device:{device.id}",
        details={"hostname": device.hostname, "evidence": evidence},
        now=now,
    )
    return device


def seen_hostnames(device: Device) -> list[str]:
    """The hostnames a flagged device alternated between (one if its clones share it)."""
    seen = [device.hostname, *([device.previous_hostname] if device.previous_hostname else [])]
    return list(dict.fromkeys(seen))


def seen_addresses(device: Device) -> list[str]:
    return [ip for ip in (device.last_ip, device.previous_ip) if ip]


def lower_flag(device: Device) -> None:
    """No longer flagged, and the alternation must be seen afresh to raise it again."""
    device.clone_suspected_at = device.clone_evidence = None
    device.previous_hostname = device.hostname_changed_at = None
    device.previous_ip = device.ip_changed_at = None


def _is_flip(previous: str | None, changed_at: datetime | None, new: str, now: datetime) -> bool:
    return previous == new and changed_at is not None and now - changed_at <= FLIP_WINDOW


def _flag(device: Device, evidence: str, now: datetime) -> bool:
    if device.clone_suspected_at is not None:
        return False
    device.clone_suspected_at = now
    device.clone_evidence = evidence[:MAX_EVIDENCE]
    return True


def same_family(a: str | None, b: str) -> bool:
    """True when ``a`` is unknown yet, or both are IPv4 or both IPv6."""
    if a is None:
        return True
    try:
        return ipaddress.ip_address(a).version == ipaddress.ip_address(b).version
    except ValueError:
        return True
