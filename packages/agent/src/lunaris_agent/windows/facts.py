"""What Windows says about the PC for the device page: who is logged on at its console, its
model, manufacturer and serial number, and whether it waits for a restart.

Importable on any OS. What reads Windows (the registry through ``winreg``, ``wtsapi32`` and
``GetSystemFirmwareTable`` through ``ctypes``) raises :class:`OSError` elsewhere; the work
in between is plain functions of what was read, tested anywhere with fakes:

- :func:`reboot_pending` reads the usual markers: the ``RebootPending`` key of Component
  Based Servicing, the ``RebootRequired`` key of Windows Update, and a non-empty
  ``PendingFileRenameOperations`` of the Session Manager (files replaced at the next start).
- :func:`console_user_of` makes ``DOMAIN\\user`` of the console session's WTS names.
- :func:`smbios_system` reads the SMBIOS table's System Information (type 1) structure: the
  serial number is not in the registry's BIOS key, only there.
"""

from __future__ import annotations

import ctypes
import struct
import sys
from collections.abc import Callable
from typing import Final, NamedTuple, Protocol

CBS_REBOOT_PENDING: Final = (
    r"SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending"
)
WU_REBOOT_REQUIRED: Final = (
    r"SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired"
)
SESSION_MANAGER: Final = r"SYSTEM\CurrentControlSet\Control\Session Manager"
PENDING_RENAMES: Final = "PendingFileRenameOperations"
BIOS_KEY: Final = r"HARDWARE\DESCRIPTION\System\BIOS"

NO_SESSION: Final = 0xFFFF_FFFF
"""``WTSGetActiveConsoleSessionId`` when no session is attached to the console."""
WTS_USER_NAME: Final = 5
WTS_DOMAIN_NAME: Final = 7
RSMB: Final = int.from_bytes(b"RSMB", "big")
"""``GetSystemFirmwareTable``'s provider signature for the raw SMBIOS table."""
SMBIOS_SYSTEM: Final = 1
SMBIOS_END: Final = 127
PLACEHOLDERS: Final = frozenset(
    {"", "0", "none", "default string", "not specified", "system serial number"}
    | {"to be filled by o.e.m.", "to be filled by oem", "not applicable", "n/a"}
)
"""What firmware says when the maker wrote nothing: no serial number at all."""


class RegistryReader(Protocol):
    """HKEY_LOCAL_MACHINE, read only."""

    def key_exists(self, path: str) -> bool: ...

    def value(self, path: str, name: str) -> object | None:
        """The value's data; None when the key or the value is not there."""


def reboot_pending(registry: RegistryReader) -> bool:
    """Windows waits for a restart to finish something."""
    if registry.key_exists(CBS_REBOOT_PENDING) or registry.key_exists(WU_REBOOT_REQUIRED):
        return True
    renames = registry.value(SESSION_MANAGER, PENDING_RENAMES)
    if isinstance(renames, list | tuple):  # REG_MULTI_SZ: pairs of paths, empty strings too
        return any(renames)
    return bool(renames)


def bios_model(registry: RegistryReader) -> tuple[str | None, str | None]:
    """The model and manufacturer the firmware gives (``Latitude 7440``, ``Dell Inc.``)."""

    def text(name: str) -> str | None:
        found = registry.value(BIOS_KEY, name)
        return found.strip() or None if isinstance(found, str) else None

    return text("SystemProductName"), text("SystemManufacturer")


_READ_64: Final = 0x20019 | 0x0100
"""``KEY_READ | KEY_WOW64_64KEY``."""


def console_user_of(session_id: int, query: Callable[[int, int], str]) -> str:
    """``DOMAIN\\user`` of the session at the console (``query(session, info_class)`` is
    ``WTSQuerySessionInformationW``'s string); empty when nobody is logged on there."""
    if session_id == NO_SESSION:
        return ""
    user = query(session_id, WTS_USER_NAME)
    if not user:
        return ""  # the logon screen
    domain = query(session_id, WTS_DOMAIN_NAME)
    return f"{domain}\\{user}" if domain else user


class SmbiosSystem(NamedTuple):
    manufacturer: str | None
    product: str | None
    serial_number: str | None


def smbios_system(raw: bytes) -> SmbiosSystem | None:
    """The System Information structure of ``GetSystemFirmwareTable("RSMB")``'s answer (an
    8-byte header, then the table); None when there is none or the table is cut short."""
    if len(raw) < 8:
        return None
    (length,) = struct.unpack_from("<I", raw, 4)
    table, at = raw[8 : 8 + length], 0
    while at + 4 <= len(table):
        kind, size = table[at], table[at + 1]
        if size < 4:
            return None  # a broken table: read no further
        end = table.find(b"\0\0", at + size)
        if end < 0:
            return None
        strings = table[at + size : end].split(b"\0")
        if kind == SMBIOS_SYSTEM and size >= 8:
            manufacturer, product, _version, serial = (
                _smbios_string(strings, table[at + offset]) for offset in range(4, 8)
            )
            return SmbiosSystem(manufacturer, product, serial)
        if kind == SMBIOS_END:
            return None
        at = end + 2
    return None


def _smbios_string(strings: list[bytes], number: int) -> str | None:
    """String ``number`` (from 1; 0 is none) of a structure's strings."""
    if not 1 <= number <= len(strings):
        return None
    value = strings[number - 1].decode("latin-1").strip()
    return None if value.casefold() in PLACEHOLDERS else value


if sys.platform == "win32":
    import winreg

    class WinregReader:
        """:class:`RegistryReader` on ``winreg``, in the 64-bit view (as a 32-bit Python too)."""

        def key_exists(self, path: str) -> bool:
            try:
                with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, path, 0, _READ_64):
                    return True
            except FileNotFoundError:
                return False

        def value(self, path: str, name: str) -> object | None:
            try:
                with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, path, 0, _READ_64) as key:
                    found: object = winreg.QueryValueEx(key, name)[0]
                    return found
            except FileNotFoundError:
                return None

    def console_user() -> str:
        """Who is logged on at the PC's console (a service sees no other way): raises OSError
        where wtsapi32 is not."""
        from ctypes import wintypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        wtsapi32 = ctypes.WinDLL("wtsapi32", use_last_error=True)
        kernel32.WTSGetActiveConsoleSessionId.restype = wintypes.DWORD
        query_info = wtsapi32.WTSQuerySessionInformationW
        query_info.argtypes = [
            wintypes.HANDLE,
            wintypes.DWORD,
            ctypes.c_int,
            ctypes.POINTER(wintypes.LPWSTR),
            ctypes.POINTER(wintypes.DWORD),
        ]
        query_info.restype = wintypes.BOOL
        wtsapi32.WTSFreeMemory.argtypes = [ctypes.c_void_p]

        def query(session: int, info_class: int) -> str:
            buffer, size = wintypes.LPWSTR(), wintypes.DWORD()
            if not query_info(None, session, info_class, ctypes.byref(buffer), ctypes.byref(size)):
                raise ctypes.WinError(ctypes.get_last_error())  # type: ignore[attr-defined,unused-ignore]
            try:
                return buffer.value or ""
            finally:
                wtsapi32.WTSFreeMemory(buffer)

        return console_user_of(int(kernel32.WTSGetActiveConsoleSessionId()), query)

    def firmware_system() -> SmbiosSystem | None:
        """The SMBIOS System Information: raises OSError where the firmware table is not."""
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        get_table = kernel32.GetSystemFirmwareTable
        get_table.argtypes = [ctypes.c_uint32, ctypes.c_uint32, ctypes.c_void_p, ctypes.c_uint32]
        get_table.restype = ctypes.c_uint32
        size = get_table(RSMB, 0, None, 0)
        if size == 0:
            raise ctypes.WinError(ctypes.get_last_error())  # type: ignore[attr-defined,unused-ignore]
        buffer = ctypes.create_string_buffer(size)
        if get_table(RSMB, 0, buffer, size) != size:
            raise OSError("the SMBIOS table changed size while it was read")
        return smbios_system(buffer.raw)

else:

    class WinregReader:
        """No registry on this platform: every read raises OSError."""

        def key_exists(self, path: str) -> bool:
            raise OSError("no Windows registry on this platform")

        def value(self, path: str, name: str) -> object | None:
            raise OSError("no Windows registry on this platform")

    def console_user() -> str:
        raise OSError("no Windows Terminal Services on this platform")

    def firmware_system() -> SmbiosSystem | None:
        raise OSError("no firmware tables on this platform")
