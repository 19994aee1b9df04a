"""What the MSI left on a machine, read back: the service, the files in Program Files, the
registry's entries, the agent's configuration and log; and Windows Installer's logs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from install_machine import Machine
from install_wait import Failed, wait_for
from installer_common import SERVICE_NAME

INSTALLER_KEY: Final = r"HKLM\SOFTWARE\Lunaris\Agent\Installer"
UNINSTALL_KEY: Final = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall"
STAND_IN_CACHE: Final = re.compile(r"pywin32_bootstrap\.cpython-\d+\.pyc")


@dataclass
class InstalledAgent:
    """The agent as the MSI installed it on ``machine``; ``note`` reports what is seen."""

    machine: Machine
    note: Callable[[str], None]

    def service(self, action: str) -> None:
        result = self.machine.run("sc", action, SERVICE_NAME, console=True)
        if result.returncode != 0:
            raise Failed(f"sc {action} {SERVICE_NAME} exited with {result.returncode}")

    def service_query(self) -> str:
        return self.machine.run("sc", "query", SERVICE_NAME).stdout

    def wait_for_state(self, state: str) -> str:
        def current() -> str | None:
            output = self.service_query()
            match = re.search(r"STATE\s*:\s*(\d+\s+(\w+))", output)
            if match is None:
                return None
            if match.group(2) == "STOPPED" and state != "STOPPED":
                raise Failed(f"the service stopped:\n{self.log_tail()}")
            return match.group(1) if match.group(2) == state else None

        return wait_for(f"the service to be {state}", current)

    def installer_key_present(self) -> bool:
        return self.machine.run("reg", "query", INSTALLER_KEY).returncode == 0

    def installed_versions(self) -> list[str]:
        """DisplayVersion of every Uninstall entry named Lunaris Agent."""
        output = self.machine.run("reg", "query", UNINSTALL_KEY, "/s").stdout
        versions = []
        for block in re.split(r"\r?\n(?=HKEY_)", output):
            if re.search(r"DisplayName\s+REG_SZ\s+Lunaris Agent\s*$", block, re.MULTILINE):
                match = re.search(r"DisplayVersion\s+REG_SZ\s+(\S+)", block)
                versions.append(match.group(1) if match else "?")
        return versions

    def files_left(self) -> list[str]:
        left = []
        for path in sorted(self.machine.program_files.rglob("*")):
            if not path.is_file():
                continue
            if STAND_IN_CACHE.fullmatch(path.name):
                # Not the MSI's doing: the agent runs a .py winget stand-in with its Python,
                # without -B, and that Python's site start-up (pywin32.pth) caches this module.
                self.note(f"left by the winget stand-in's Python: {path.name}")
                continue
            left.append(str(path.relative_to(self.machine.program_files)))
        return left

    def config(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            (self.machine.program_data / "config.json").read_text("utf-8-sig")
        )
        return data

    def windows_only(self, holds: bool, what: str, seen: str) -> None:
        """A check of what Windows does and Wine does not: a failure on Windows, a note here."""
        if holds:
            self.note(f"{what}: yes")
        elif self.machine.real_windows:
            raise Failed(f"{what}: no ({seen})")
        else:
            self.note(f"{what}: not under Wine ({seen})")

    def check_windows_details(self, install_log: Path, secret: str) -> None:
        """What only a real Windows shows: the secret hidden from the log, a quoted service
        path, the recovery policy, and the data folder's ACL."""
        log = read_msi_log(install_log)
        self.windows_only(
            secret not in log,
            "MsiHiddenProperties keeps the secret out of the install log",
            "the secret is in install.log",
        )
        key = rf"HKLM\SYSTEM\CurrentControlSet\Services\{SERVICE_NAME}"
        image = self.machine.run("reg", "query", key, "/v", "ImagePath").stdout
        match = re.search(r"ImagePath\s+REG_\w+\s+(.+)", image)
        image_path = match.group(1).strip() if match else image.strip()
        self.windows_only(image_path.startswith('"'), "the service path is quoted", image_path)
        failure = self.machine.run("sc", "qfailure", SERVICE_NAME).stdout
        self.windows_only("RESTART" in failure.upper(), "restart on failure", failure.strip())
        if self.machine.real_windows:
            acl = self.machine.run("icacls", str(self.machine.program_data)).stdout
            # One line per ACE, then "Successfully processed 1 files; ...".
            others = [
                line
                for line in acl.splitlines()
                if ":(" in line
                and not re.search(r"NT AUTHORITY\\SYSTEM:|BUILTIN\\Administrators:", line)
            ]
            self.windows_only(
                not others, "ProgramData\\LunarisAgent: SYSTEM and Administrators only", acl
            )

    def log_tail(self, lines: int = 15) -> str:
        log = self.machine.program_data / "logs" / "agent.log"
        if not log.exists():
            return "(no agent log)"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def msi_log_errors(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return f"(no log at {path})"
    text = read_msi_log(path).splitlines()
    interesting = [
        line for line in text if re.search(r"error|Return value 3|failed|Note: 1:", line, re.I)
    ]
    return "\n".join((interesting or text)[-lines:])


def read_msi_log(path: Path) -> str:
    """Windows Installer writes UTF-16 with a byte-order mark, Wine's UTF-8."""
    data = path.read_bytes()
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8"
    return data.decode(encoding, errors="replace")
