"""What the agent tells the server about the machine it runs on.

The device *id* is made once and kept in config.json (see :func:`config.with_device_id`);
the facts here are read afresh at every start, so a renamed PC or a feature update shows up
in the console with the next heartbeat.
"""

from __future__ import annotations

import logging
import platform
import re
import secrets
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from lunaris_agent import __version__
from lunaris_agent.machine import ChangingFacts, ChangingFactsReader, read_hardware
from lunaris_protocol.agent import MAX_TIME_ZONE, TIME_ZONE_PATTERN
from lunaris_protocol.limits import MAX_HOSTNAME, MAX_NAME

log = logging.getLogger(__name__)

WINDOWS_11_FIRST_BUILD = 22000
"""Windows 11 still calls itself "Windows 10" in the registry's ProductName."""


class WireFacts(TypedDict):
    """The facts a registration and every heartbeat carry besides name and version."""

    logged_on_user: str | None
    ip_addresses: list[str] | None
    model: str | None
    manufacturer: str | None
    serial_number: str | None
    reboot_pending: bool | None


def _no_changing_facts() -> ChangingFacts:
    return ChangingFacts()


@dataclass(frozen=True)
class DeviceFacts:
    hostname: str
    os_version: str
    agent_version: str = __version__
    booted_at: datetime | None = None
    model: str | None = None
    manufacturer: str | None = None
    serial_number: str | None = None
    changing: Callable[[], ChangingFacts] = field(default=_no_changing_facts, compare=False)
    """Who is logged on, the addresses, a pending restart: read again every few minutes."""

    def wire(self) -> WireFacts:
        now = self.changing()
        return WireFacts(
            logged_on_user=now.logged_on_user,
            ip_addresses=now.ip_addresses,
            model=self.model,
            manufacturer=self.manufacturer,
            serial_number=self.serial_number,
            reboot_pending=now.reboot_pending,
        )


def read_device_facts() -> DeviceFacts:
    hostname = (socket.gethostname() or platform.node() or "unknown")[:MAX_HOSTNAME]
    hardware = read_hardware()
    return DeviceFacts(
        hostname=hostname,
        os_version=os_description()[:MAX_NAME],
        booted_at=boot_time(),
        model=hardware.model,
        manufacturer=hardware.manufacturer,
        serial_number=hardware.serial_number,
        changing=ChangingFactsReader(),
    )


def boot_time(*, now: datetime | None = None) -> datetime | None:
    """When the PC started, to the second: now less the time since boot (``GetTickCount64``
    on Windows, ``CLOCK_BOOTTIME`` on Linux). Read once when the agent starts, so every
    heartbeat says the same. None where it cannot be told."""
    try:
        if sys.platform == "win32":
            import ctypes

            kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined,unused-ignore]
            kernel32.GetTickCount64.restype = ctypes.c_ulonglong
            uptime_s = kernel32.GetTickCount64() / 1000
        elif hasattr(time, "CLOCK_BOOTTIME"):
            uptime_s = time.clock_gettime(time.CLOCK_BOOTTIME)
        else:
            return None
    except (OSError, AttributeError) as error:
        log.debug("the boot time cannot be told: %s", error)
        return None
    started = (now or datetime.now(UTC)) - timedelta(seconds=uptime_s)
    return started.replace(microsecond=0)


_ZONE_NAME = re.compile(TIME_ZONE_PATTERN)
ZONE_REREAD_S = 3600.0
"""How often the PC's time zone is read again (tzlocal keeps what it read)."""
_zone_read_at: float | None = None


def local_time_zone(*, now: float | None = None) -> str | None:
    """The PC's IANA time zone (``Europe/Berlin``), read again every hour, since a laptop that
    travels changes it: tzlocal maps Windows' own zone names to IANA ones through the CLDR
    table. None when it cannot be told."""
    global _zone_read_at
    import tzlocal

    moment = time.monotonic() if now is None else now
    try:
        if _zone_read_at is None:
            _zone_read_at = moment
        elif moment - _zone_read_at >= ZONE_REREAD_S:
            tzlocal.reload_localzone()
            _zone_read_at = moment
        name = tzlocal.get_localzone_name()
    except Exception as error:  # an odd registry or /etc/localtime: windows use the policy's zone
        log.debug("the local time zone cannot be told: %s", error)
        return None
    if name is None or len(name) > MAX_TIME_ZONE or not _ZONE_NAME.fullmatch(name):
        return None
    return name


def os_description() -> str:
    """``Windows 11 Pro 23H2 (10.0.22631.4460)`` on Windows; ``Linux 6.1.0`` elsewhere."""
    if sys.platform == "win32":
        try:
            return _windows_description()
        except OSError:
            pass  # a locked-down registry: fall back to what the C runtime knows
    return f"{platform.system()} {platform.release()}".strip() or "unknown"


if sys.platform == "win32":

    def _windows_description() -> str:
        import winreg

        key_path = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion"
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key_path) as key:

            def value(name: str) -> str:
                try:
                    return str(winreg.QueryValueEx(key, name)[0])
                except OSError:
                    return ""

            return describe_windows(
                product_name=value("ProductName"),
                display_version=value("DisplayVersion") or value("ReleaseId"),
                build=value("CurrentBuild") or value("CurrentBuildNumber"),
                revision=value("UBR"),
                major=value("CurrentMajorVersionNumber") or "10",
                minor=value("CurrentMinorVersionNumber") or "0",
            )

else:

    def _windows_description() -> str:
        raise OSError("no Windows registry on this platform")


def describe_windows(
    *, product_name: str, display_version: str, build: str, revision: str, major: str, minor: str
) -> str:
    """Builds the console's OS label from the registry's CurrentVersion values."""
    name = product_name or "Windows"
    if build.isdigit() and int(build) >= WINDOWS_11_FIRST_BUILD:
        name = name.replace("Windows 10", "Windows 11")
    number = ".".join(part for part in (major, minor, build, revision) if part)
    label = f"{name} {display_version}".strip()
    return f"{label} ({number})" if build else label


def new_registration_key() -> str:
    """A key only this agent knows, for a registration an admin approves (see config.py)."""
    return secrets.token_urlsafe(32)
