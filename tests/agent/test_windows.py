"""lunaris_agent.windows.data_dir: the SDDL and GUID it builds, and its ctypes calls driven by
fake DLL functions that behave like the documented Windows ones (write through the
out-pointers, return HRESULT / BOOL / error codes)."""

import ctypes
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lunaris_agent.windows import data_dir
from lunaris_agent.windows.data_dir import (
    ADMINISTRATORS_ONLY,
    DACL_SECURITY_INFORMATION,
    FOLDERID_PROGRAM_DATA,
    GUID,
    PROTECTED_DACL_SECURITY_INFORMATION,
    SE_FILE_OBJECT,
    protected_dacl_sddl,
)

E_INVALIDARG = -0x7FF8FFA9  # 0x80070057 as the signed HRESULT a c_long restype returns
ERROR_ACCESS_DENIED = 5
DESCRIPTOR_ADDRESS = 0x5D00
DACL_ADDRESS = 0x5D14


def test_admin_only_sddl_is_protected_and_inherited_by_children() -> None:
    assert protected_dacl_sddl(ADMINISTRATORS_ONLY) == "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
    assert protected_dacl_sddl(["S-1-5-18"]) == "D:P(A;OICI;FA;;;S-1-5-18)"


@pytest.mark.parametrize("trustees", [[], ["SY)(A;OICI;FA;;;WD"], ["ba"], ["S-1"]])
def test_sddl_refuses_what_would_not_be_one_admin_ace(trustees: list[str]) -> None:
    with pytest.raises(ValueError, match=r"SDDL|lock everyone out"):
        protected_dacl_sddl(trustees)


def test_guid_has_the_windows_memory_layout() -> None:
    guid = GUID.from_uuid(FOLDERID_PROGRAM_DATA)
    assert ctypes.sizeof(GUID) == 16
    assert (guid.Data1, guid.Data2, guid.Data3) == (0x62AB5D82, 0xFDC1, 0x4DC3)
    assert bytes(guid.Data4) == bytes.fromhex("A9DD070D1D495D97")


@dataclass
class FakeShell:
    """SHGetKnownFolderPath + CoTaskMemFree: hands out a string the caller must free."""

    hresult: int = 0
    path: str | None = "C:\\ProgramData"
    folders: list[bytes] = field(default_factory=list)
    freed: list[int | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._buffer = ctypes.create_unicode_buffer(self.path or "")

    def get_known_folder_path(self, folder: Any, flags: int, token: None, out: Any) -> int:
        self.folders.append(bytes(folder._obj))  # byref() of the GUID
        if self.path is not None:
            out.contents.value = ctypes.addressof(self._buffer)
        return self.hresult

    def co_task_mem_free(self, pointer: ctypes.c_void_p) -> None:
        self.freed.append(pointer.value)

    def api(self) -> data_dir._ShellApi:
        return data_dir._ShellApi(self.get_known_folder_path, self.co_task_mem_free)


def test_known_folder_path_reads_the_string_and_frees_it() -> None:
    shell = FakeShell()
    assert data_dir._known_folder_path(FOLDERID_PROGRAM_DATA, shell.api()) == Path(
        "C:\\ProgramData"
    )
    assert shell.folders == [FOLDERID_PROGRAM_DATA.bytes_le]
    assert shell.freed == [ctypes.addressof(shell._buffer)]


def test_failed_hresult_raises_and_still_frees() -> None:
    shell = FakeShell(hresult=E_INVALIDARG, path=None)
    with pytest.raises(OSError):  # noqa: PT011 - any OSError; the code is Windows' wording
        data_dir._known_folder_path(FOLDERID_PROGRAM_DATA, shell.api())
    assert shell.freed == [None]


@dataclass
class FakeSecurity:
    """ConvertStringSecurityDescriptorToSecurityDescriptorW, GetSecurityDescriptorDacl,
    SetNamedSecurityInfoW and LocalFree, recording what they were given."""

    convert_ok: bool = True
    dacl_present: bool = True
    set_status: int = 0
    converted: list[str] = field(default_factory=list)
    dacl_lookups: list[int | None] = field(default_factory=list)
    applied: list[tuple[Any, ...]] = field(default_factory=list)
    freed: list[int | None] = field(default_factory=list)

    def string_to_descriptor(self, sddl: str, revision: int, out: Any, size: None) -> int:
        self.converted.append(sddl)
        if not self.convert_ok:
            return 0
        out.contents.value = DESCRIPTOR_ADDRESS
        return 1

    def get_descriptor_dacl(self, descriptor: Any, present: Any, dacl: Any, defaulted: Any) -> int:
        self.dacl_lookups.append(descriptor.value)
        present.contents.value = int(self.dacl_present)
        dacl.contents.value = DACL_ADDRESS if self.dacl_present else None
        return 1

    def set_named_security_info(
        self, name: str, kind: int, info: int, owner: Any, group: Any, dacl: Any, sacl: Any
    ) -> int:
        self.applied.append((name, kind, info, owner, group, dacl.value, sacl))
        return self.set_status

    def local_free(self, pointer: ctypes.c_void_p) -> None:
        self.freed.append(pointer.value)

    def api(self) -> data_dir._SecurityApi:
        return data_dir._SecurityApi(
            self.string_to_descriptor,
            self.get_descriptor_dacl,
            self.set_named_security_info,
            self.local_free,
        )


SDDL = protected_dacl_sddl(ADMINISTRATORS_ONLY)
TARGET = Path("C:/ProgramData/LunarisAgent")


def test_protected_dacl_is_applied_by_name_and_the_descriptor_freed() -> None:
    security = FakeSecurity()
    data_dir._apply_protected_dacl(TARGET, SDDL, security.api())
    assert security.converted == [SDDL]
    assert security.dacl_lookups == [DESCRIPTOR_ADDRESS]
    assert security.applied == [
        (
            str(TARGET),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            None,
            None,
            DACL_ADDRESS,
            None,
        )
    ]
    assert security.freed == [DESCRIPTOR_ADDRESS]


def test_refused_dacl_raises_and_frees_the_descriptor() -> None:
    security = FakeSecurity(set_status=ERROR_ACCESS_DENIED)
    with pytest.raises(OSError) as raised:  # noqa: PT011 - checked below
        data_dir._apply_protected_dacl(TARGET, SDDL, security.api())
    assert raised.value.filename == str(TARGET)
    assert security.freed == [DESCRIPTOR_ADDRESS]


def test_a_missing_dacl_is_never_applied() -> None:
    security = FakeSecurity(dacl_present=False)
    with pytest.raises(OSError, match="no DACL"):
        data_dir._apply_protected_dacl(TARGET, SDDL, security.api())
    assert security.applied == []
    assert security.freed == [DESCRIPTOR_ADDRESS]


def test_bad_sddl_raises_before_anything_is_applied() -> None:
    security = FakeSecurity(convert_ok=False)
    with pytest.raises(OSError):  # noqa: PT011 - the code is whatever Windows reported
        data_dir._apply_protected_dacl(TARGET, SDDL, security.api())
    assert security.applied == []
    assert security.freed == []  # nothing was allocated


@pytest.mark.skipif(sys.platform == "win32", reason="checks the behaviour off Windows")
def test_off_windows_the_public_functions_raise() -> None:
    with pytest.raises(OSError, match="Windows only"):
        data_dir.program_data_dir()
    with pytest.raises(OSError, match="Windows only"):
        data_dir.restrict_to_administrators(Path("anything"))
