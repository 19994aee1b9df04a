"""What an agent says about its PC beyond its name and Windows version (logged-on user,
addresses, model, manufacturer, serial number), and its restarts: when a PC is "reboot
pending" and when that clears. Registration and heartbeats alike keep them here."""

import ipaddress
from datetime import datetime

from lunaris_protocol.facts import DeviceFactsFields
from lunaris_server.devices.models import Device


def address_text(addresses: list[str]) -> str:
    """How a device keeps its addresses (``Device.ip_addresses``): each once, IPv4 before
    IPv6, in order, comma-separated; the same set always gives the same text, so an agent
    that lists them in another order brings no news."""
    unique = {ipaddress.ip_address(address) for address in addresses}
    return ",".join(str(address) for address in sorted(unique, key=lambda a: (a.version, a)))


def said_facts(request: DeviceFactsFields) -> dict[str, str | None]:
    """The device's columns as the request has them; null for what it does not say."""
    addresses = request.ip_addresses
    return {
        "logged_on_user": request.logged_on_user,
        "ip_addresses": None if addresses is None else address_text(addresses),
        "model": request.model,
        "manufacturer": request.manufacturer,
        "serial_number": request.serial_number,
    }


def reboot_news(request: DeviceFactsFields, *, pending: bool) -> bool:
    """Windows says a restart is pending and the device is not marked so yet."""
    return request.reboot_pending is True and not pending


def note_restart(device: Device, *, windows_pending: bool | None = None, now: datetime) -> None:
    """A PC that started after it became "reboot pending" has restarted (whatever its agent
    says now, a later start is the evidence: an install's request to restart may leave no
    marker Windows shows); one whose agent says Windows waits for a restart becomes "reboot
    pending" if it was not. Lunaris never restarts a PC itself."""
    pending, booted = device.reboot_pending_since, device.booted_at
    if pending is not None and booted is not None and booted > pending:
        device.reboot_pending_since = None
    if windows_pending and device.reboot_pending_since is None:
        device.reboot_pending_since = now
