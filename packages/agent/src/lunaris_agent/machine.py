"""The PC's facts for the device page beyond its name and Windows version: its model,
manufacturer and serial number (read once, at start), and who is logged on, its addresses
and whether Windows waits for a restart (read again every few minutes, see
:class:`ChangingFacts`).

On Windows they come from Windows itself (see :mod:`lunaris_agent.windows.facts`); on Linux
and macOS, where the agent runs for development, from what is cheap to read, and None
otherwise. A fact that cannot be read is None (logged once, at debug): it never stops a
heartbeat. Every value is made to fit the protocol's bounds here, so a request built from
them is always valid.
"""

from __future__ import annotations

import getpass
import ipaddress
import logging
import os
import socket
import sys
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from lunaris_agent.windows import facts as windows
from lunaris_protocol.facts import MAX_HARDWARE_TEXT, MAX_IP_ADDRESSES, MAX_LOGGED_ON_USER

log = logging.getLogger(__name__)

FACTS_REREAD_S: Final = 300.0
"""How often the facts that change (user, addresses, restart) are read again at most."""
DMI: Final = Path("/sys/class/dmi/id")
REBOOT_REQUIRED: Final = Path("/run/reboot-required")
"""Debian's and Ubuntu's marker: a package asks for a restart."""
_PROBES: Final = (("192.0.2.1", socket.AF_INET), ("2001:db8::1", socket.AF_INET6))
"""Documentation addresses: "connecting" a UDP socket to them sends nothing, but tells which
address the PC would speak from."""

_T = TypeVar("_T")
_unreadable: set[str] = set()


def read_or_none(fact: str, read: Callable[[], _T]) -> _T | None:
    """``read()``, or None when it fails (logged once per fact, at debug)."""
    try:
        return read()
    except Exception as error:  # an odd registry, a missing DLL, a locked-down file
        if fact not in _unreadable:
            _unreadable.add(fact)
            log.debug("the PC's %s cannot be read: %s", fact, error)
        return None


def fitted(text: str | None, limit: int) -> str | None:
    """``text`` without control and format characters, trimmed and cut to ``limit``; None
    when nothing is left."""
    if text is None:
        return None
    kept = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf")).strip()
    return kept[:limit].strip() or None


@dataclass(frozen=True)
class Hardware:
    model: str | None = None
    manufacturer: str | None = None
    serial_number: str | None = None


def read_hardware() -> Hardware:
    """The PC's model, manufacturer and serial number, as its firmware gives them."""
    if sys.platform == "win32":
        model, maker = read_or_none("model", lambda: windows.bios_model(windows.WinregReader()))
        system = read_or_none("serial number", windows.firmware_system)
        serial = None if system is None else system.serial_number
        if model is None and system is not None:
            model, maker = system.product, maker or system.manufacturer
    else:
        model, maker, serial = (_dmi(n) for n in ("product_name", "sys_vendor", "product_serial"))
    return Hardware(
        fitted(model, MAX_HARDWARE_TEXT),
        fitted(maker, MAX_HARDWARE_TEXT),
        fitted(serial, MAX_HARDWARE_TEXT),
    )


def _dmi(name: str) -> str | None:
    """A DMI string from sysfs (the serial number is root's only); None if not readable."""
    try:
        return (DMI / name).read_text(encoding="latin-1").strip() or None
    except OSError:
        return None


@dataclass(frozen=True)
class ChangingFacts:
    logged_on_user: str | None = None
    """``DOMAIN\\user`` at the console; empty when nobody is logged on; None if unknown."""
    ip_addresses: list[str] | None = None
    reboot_pending: bool | None = None


def read_changing_facts() -> ChangingFacts:
    return ChangingFacts(
        logged_on_user=_user(),
        ip_addresses=read_or_none("addresses", own_addresses),
        reboot_pending=read_or_none("restart marker", restart_pending),
    )


def _user() -> str | None:
    read = windows.console_user if sys.platform == "win32" else logged_on_user
    user = read_or_none("logged-on user", read)
    return "" if user == "" else fitted(user, MAX_LOGGED_ON_USER)  # "": nobody


def logged_on_user() -> str:
    """Who the agent runs for, on a development machine: the terminal's user, else the
    process's."""
    try:
        return os.getlogin()
    except OSError:
        return getpass.getuser()


def restart_pending() -> bool | None:
    if sys.platform == "win32":
        return windows.reboot_pending(windows.WinregReader())
    return True if REBOOT_REQUIRED.exists() else None


def own_addresses(
    resolve: Callable[[], list[str]] | None = None, probe: Callable[[], list[str]] | None = None
) -> list[str]:
    """The PC's own addresses, sorted, without loopback, link-local and unspecified ones:
    what its hostname resolves to (on Windows every adapter's), and the addresses it would
    speak from to the world (a PC whose hostname resolves to loopback only, as Linux's do)."""
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for text in [*(resolve or _resolved)(), *(probe or _probed)()]:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            continue
        if not (address.is_loopback or address.is_link_local or address.is_unspecified):
            found.add(address)
    ordered = sorted(found, key=lambda a: (a.version, a))
    return [str(address) for address in ordered[:MAX_IP_ADDRESSES]]


def _resolved() -> list[str]:
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None)
    except OSError:
        return []
    return [str(info[4][0]) for info in infos]


def _probed() -> list[str]:
    addresses = []
    for target, family in _PROBES:
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((target, 9))
                addresses.append(str(probe.getsockname()[0]))
        except OSError:
            continue  # no route of that family
    return addresses


class ChangingFactsReader:
    """The facts that change, read again at most every :data:`FACTS_REREAD_S` (a heartbeat
    comes every minute; who is logged on needs not be asked that often)."""

    def __init__(
        self,
        read: Callable[[], ChangingFacts] = read_changing_facts,
        *,
        every_s: float = FACTS_REREAD_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read, self._every_s, self._clock = read, every_s, clock
        self._last: tuple[float, ChangingFacts] | None = None

    def __call__(self) -> ChangingFacts:
        now = self._clock()
        if self._last is None or now - self._last[0] >= self._every_s:
            self._last = (now, self._read())
        return self._last[1]
