"""Windows helpers on plain ``ctypes``: where ProgramData is, and who may read the agent's files.

Importable on any OS. The public functions call Windows DLLs and raise :class:`OSError` when
those are not there; the work in between takes the DLL functions as arguments, so tests can
run it anywhere with fakes.

- :func:`program_data_dir` asks the shell for ``FOLDERID_ProgramData``. The ``%ProgramData%``
  variable is not used: it can be missing or different in a service's environment (under Wine
  it is ``C:\\users\\Public`` there).
- :func:`restrict_to_administrators` gives a file or folder a protected DACL: full control for
  SYSTEM and BUILTIN\\Administrators, inherited by everything inside, nothing from the parent.
  The DACL is set with ``SetNamedSecurityInfoW``, not ``SetFileSecurityW``: only the former
  pushes the new inheritable ACEs down to files that already exist (e.g. a config.json the
  installer wrote while the folder still let Users read).
"""

from __future__ import annotations

import ctypes
import functools
import re
import sys
import uuid
from collections.abc import Callable, Iterable
from ctypes import wintypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

FOLDERID_PROGRAM_DATA: Final = uuid.UUID("62ab5d82-fdc1-4dc3-a9dd-070d1d495d97")
KF_FLAG_DEFAULT: Final = 0

ADMINISTRATORS_ONLY: Final = ("SY", "BA")
"""SDDL aliases: LocalSystem and BUILTIN\\Administrators."""

SDDL_REVISION_1: Final = 1
SE_FILE_OBJECT: Final = 1
DACL_SECURITY_INFORMATION: Final = 0x0000_0004
PROTECTED_DACL_SECURITY_INFORMATION: Final = 0x8000_0000
"""Cuts the ACEs inherited from the parent (ProgramData lets Users read)."""

_TRUSTEE = re.compile(r"[A-Z]{2}|S(?:-\d+){2,}")


class GUID(ctypes.Structure):
    # Fixed-width fields: ctypes.wintypes.DWORD is 8 bytes on 64-bit Linux, the struct is 16.
    _fields_ = (
        ("Data1", ctypes.c_uint32),
        ("Data2", ctypes.c_uint16),
        ("Data3", ctypes.c_uint16),
        ("Data4", ctypes.c_ubyte * 8),
    )

    @classmethod
    def from_uuid(cls, value: uuid.UUID) -> GUID:
        # bytes_le is exactly a GUID's memory layout (first three fields little-endian).
        return cls.from_buffer_copy(value.bytes_le)


def protected_dacl_sddl(trustees: Iterable[str]) -> str:
    """SDDL of a DACL that ignores the parent's ACEs (``P``) and gives each trustee (an SDDL
    alias such as ``BA``, or a SID string) full access (``FA``), inherited by subfolders and
    files (``OICI``)."""
    aces = []
    for trustee in trustees:
        if not _TRUSTEE.fullmatch(trustee):
            raise ValueError(f"not an SDDL alias or SID string: {trustee!r}")
        aces.append(f"(A;OICI;FA;;;{trustee})")
    if not aces:
        raise ValueError("a DACL without entries would lock everyone out")
    return "D:P" + "".join(aces)


def program_data_dir() -> Path:
    """``C:\\ProgramData`` as the shell resolves it (``FOLDERID_ProgramData``)."""
    return _known_folder_path(FOLDERID_PROGRAM_DATA, _shell_api())


def restrict_to_administrators(path: Path) -> None:
    """Only SYSTEM and Administrators may open ``path`` (and, for a folder, what is in it).

    The caller must be elevated (or SYSTEM); raises :class:`OSError` otherwise. Files inside
    that carry ACEs of their own keep them: only inherited entries are replaced."""
    _apply_protected_dacl(path, protected_dacl_sddl(ADMINISTRATORS_ONLY), _security_api())


@dataclass(frozen=True)
class _ShellApi:
    get_known_folder_path: Callable[..., Any]  # shell32!SHGetKnownFolderPath -> HRESULT
    co_task_mem_free: Callable[..., Any]  # ole32!CoTaskMemFree


@dataclass(frozen=True)
class _SecurityApi:
    string_to_descriptor: Callable[..., Any]  # ...SDDL...ToSecurityDescriptorW -> BOOL
    get_descriptor_dacl: Callable[..., Any]  # advapi32!GetSecurityDescriptorDacl -> BOOL
    set_named_security_info: Callable[..., Any]  # advapi32!SetNamedSecurityInfoW -> error code
    local_free: Callable[..., Any]  # kernel32!LocalFree


def _known_folder_path(folder: uuid.UUID, api: _ShellApi) -> Path:
    guid = GUID.from_uuid(folder)
    text = ctypes.c_void_p()
    try:
        result = api.get_known_folder_path(
            ctypes.byref(guid), KF_FLAG_DEFAULT, None, ctypes.pointer(text)
        )
        if result < 0:  # a failed HRESULT
            raise _windows_error(result)
        if not text.value:
            raise OSError(f"the shell returned no path for known folder {folder}")
        return Path(ctypes.wstring_at(text.value))
    finally:
        # The caller frees the string whether the call succeeded or not (NULL is fine).
        api.co_task_mem_free(text)


def _apply_protected_dacl(path: Path, sddl: str, api: _SecurityApi) -> None:
    descriptor = ctypes.c_void_p()
    if not api.string_to_descriptor(sddl, SDDL_REVISION_1, ctypes.pointer(descriptor), None):
        raise _windows_error(path=path)
    try:
        present, defaulted = wintypes.BOOL(), wintypes.BOOL()
        dacl = ctypes.c_void_p()
        if not api.get_descriptor_dacl(
            descriptor, ctypes.pointer(present), ctypes.pointer(dacl), ctypes.pointer(defaulted)
        ):
            raise _windows_error(path=path)
        # A NULL DACL would mean "everyone, full control": never pass one on.
        if not present.value or not dacl.value:
            raise OSError(f"the security descriptor built for {path} has no DACL")
        status = api.set_named_security_info(
            str(path),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            None,
            None,
            dacl,
            None,
        )
        if status != 0:  # returns the error code itself rather than setting the last error
            raise _windows_error(status, path=path)
    finally:
        api.local_free(descriptor)


if sys.platform == "win32":

    @functools.cache
    def _shell_api() -> _ShellApi:
        shell32 = ctypes.WinDLL("shell32", use_last_error=True)
        ole32 = ctypes.WinDLL("ole32", use_last_error=True)
        get_path = shell32.SHGetKnownFolderPath
        get_path.argtypes = (
            ctypes.POINTER(GUID),
            wintypes.DWORD,
            wintypes.HANDLE,
            ctypes.POINTER(ctypes.c_void_p),
        )
        get_path.restype = ctypes.c_long
        free = ole32.CoTaskMemFree
        free.argtypes = (ctypes.c_void_p,)
        free.restype = None
        return _ShellApi(get_path, free)

    @functools.cache
    def _security_api() -> _SecurityApi:
        advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        convert = advapi32.ConvertStringSecurityDescriptorToSecurityDescriptorW
        convert.argtypes = (
            wintypes.LPCWSTR,
            wintypes.DWORD,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(wintypes.ULONG),
        )
        convert.restype = wintypes.BOOL
        get_dacl = advapi32.GetSecurityDescriptorDacl
        get_dacl.argtypes = (
            ctypes.c_void_p,
            ctypes.POINTER(wintypes.BOOL),
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(wintypes.BOOL),
        )
        get_dacl.restype = wintypes.BOOL
        set_named = advapi32.SetNamedSecurityInfoW
        set_named.argtypes = (
            wintypes.LPWSTR,
            ctypes.c_int,  # SE_OBJECT_TYPE
            wintypes.DWORD,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_void_p,
        )
        set_named.restype = wintypes.DWORD
        local_free = kernel32.LocalFree
        local_free.argtypes = (ctypes.c_void_p,)
        local_free.restype = ctypes.c_void_p
        return _SecurityApi(convert, get_dacl, set_named, local_free)

    def _windows_error(code: int | None = None, *, path: Path | None = None) -> OSError:
        error = ctypes.WinError(ctypes.get_last_error() if code is None else code)
        if path is not None:
            error.filename = str(path)
        return error

else:

    def _shell_api() -> _ShellApi:
        raise OSError("known folders exist on Windows only")

    def _security_api() -> _SecurityApi:
        raise OSError("Windows ACLs exist on Windows only")

    def _windows_error(code: int | None = None, *, path: Path | None = None) -> OSError:
        # Reached only by tests that drive the Windows code paths with fake DLL functions.
        return OSError(code, "Windows API call failed", None if path is None else str(path))
