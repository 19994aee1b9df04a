"""The Windows the install test installs the MSI on: a fresh Wine prefix, or the real one.

Wine workarounds live here and only here (:class:`Wine`); install_test.py's doc lists them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from install_wait import Failed, wait_for
from installer_common import HERE

if TYPE_CHECKING:
    from install_checks import InstalledAgent

COMMAND_TIMEOUT_S: Final = 180.0


class Machine:
    """A Windows to run commands on: a Wine prefix, or the real one."""

    name = "windows"
    real_windows = True
    """Checks of what only Windows does (ACLs, quoting, recovery policy, hidden properties)
    fail the test here, and are only reported under Wine."""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def before_uninstall(self, agent: InstalledAgent) -> None:
        """What this machine needs before ``msiexec /x`` beyond what Windows Installer does."""

    def command(self, args: Sequence[str]) -> list[str]:
        return list(args)

    def exit_status(self, code: int) -> int:
        """How a Windows exit code reaches this process."""
        return code

    def windows_path(self, path: Path) -> str:
        return str(path)

    @property
    def program_files(self) -> Path:
        return Path(os.environ.get("PROGRAMFILES", r"C:\Program Files")) / "LunarisAgent"

    @property
    def program_data(self) -> Path:
        return Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData")) / "LunarisAgent"

    def run(
        self, *args: str, console: bool = False, timeout: float = COMMAND_TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        """Runs a Windows command; its output is returned, or, with ``console``, sent to the
        machine's console log (for commands that may start the service)."""
        output: dict[str, Any] = {"capture_output": True}
        if console:
            output = {"stdout": self.console_fd(), "stderr": subprocess.STDOUT}
        try:
            return subprocess.run(
                self.command(args),
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                text=True,
                timeout=timeout,
                check=False,
                **output,
            )
        except subprocess.TimeoutExpired:
            raise Failed(f"`{' '.join(args)}` did not finish within {timeout:.0f} s") from None

    def console_fd(self) -> int | None:
        return None

    def environment(self) -> dict[str, str] | None:
        return None

    def console_log(self) -> str:
        return ""


class Wine(Machine):
    name = "wine"
    real_windows = False

    def __init__(self, work: Path) -> None:
        self.work = work
        self.prefix = work / "prefix"
        self._env = {
            **os.environ,
            "WINEPREFIX": str(self.prefix),
            "WINEARCH": "win64",
            "WINEDEBUG": "-all",
            # No Mono or Gecko installer prompts; no WMI (see the module's doc).
            "WINEDLLOVERRIDES": "mscoree,mshtml,wbemprox=",
            "DISPLAY": "",
        }
        self._log_path = work / "wine-console.log"
        self._pipe: tuple[int, int] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        for tool in ("wine", "wineboot", "wineserver", "x86_64-w64-mingw32-gcc"):
            if shutil.which(tool) is None:
                raise Failed(
                    f"{tool} is missing: apt-get install -y wine wine64 gcc-mingw-w64-x86-64-win32"
                )
        if self.prefix.exists():
            # A run that was killed may have left this prefix's wineserver and service behind.
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                subprocess.run(["wineserver", "--kill"], env=self._env, timeout=30, check=False)
            shutil.rmtree(self.prefix)
        shim = self._build_prng_shim()
        # Workaround 2: every Wine process that may start services gets a pipe as stdout.
        read_fd, write_fd = os.pipe()
        self._pipe = (read_fd, write_fd)
        self._reader = threading.Thread(target=self._copy_console, daemon=True)
        self._reader.start()
        self._wine("wineboot", "--init", timeout=180)
        self._wine("wineserver", "--wait", timeout=60)
        # A persistent wineserver keeps services.exe, and so the service, alive between the
        # separate `wine` commands below.
        self._wine("wineserver", "--persistent", timeout=30)
        # Workaround 1: ProcessPrng for pydantic-core; the prefix's, never the MSI's.
        shutil.copy(shim, self.prefix / "drive_c" / "windows" / "system32" / shim.name)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            subprocess.run(["wineserver", "--kill"], env=self._env, timeout=30, check=False)
            subprocess.run(["wineserver", "--wait"], env=self._env, timeout=30, check=False)
        if self._pipe is not None:
            os.close(self._pipe[1])
            if self._reader is not None:
                self._reader.join(timeout=10)
            self._pipe = None

    def before_uninstall(self, agent: InstalledAgent) -> None:
        agent.service("stop")
        agent.wait_for_state("STOPPED")
        wait_for("the service's python.exe to exit", lambda: None if self._agents() else True)

    def _agents(self) -> list[int]:
        """The agent processes of this prefix."""
        marker = f"WINEPREFIX={self.prefix}\0".encode()
        found = []
        for process in Path("/proc").iterdir():
            if not process.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                command_line = (process / "cmdline").read_bytes()
                if (
                    b"lunaris_agent" in command_line
                    and marker in (process / "environ").read_bytes()
                ):
                    found.append(int(process.name))
        return found

    def command(self, args: Sequence[str]) -> list[str]:
        return ["wine", *args]

    def exit_status(self, code: int) -> int:
        return code & 0xFF  # a Linux exit status has 8 bits: 1603 arrives as 67

    def windows_path(self, path: Path) -> str:
        return "Z:" + str(path.resolve()).replace("/", "\\")  # Wine maps Z: to /

    @property
    def program_files(self) -> Path:
        return self.prefix / "drive_c" / "Program Files" / "LunarisAgent"

    @property
    def program_data(self) -> Path:
        return self.prefix / "drive_c" / "ProgramData" / "LunarisAgent"

    def console_fd(self) -> int | None:
        return None if self._pipe is None else self._pipe[1]

    def environment(self) -> dict[str, str] | None:
        return self._env

    def console_log(self) -> str:
        return self._log_path.read_text(errors="replace") if self._log_path.exists() else ""

    def _wine(self, *args: str, timeout: float) -> None:
        result = subprocess.run(
            list(args),
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=self.console_fd(),
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise Failed(f"`{' '.join(args)}` failed with exit code {result.returncode}")

    def _copy_console(self) -> None:
        assert self._pipe is not None
        with os.fdopen(self._pipe[0], "rb") as source, self._log_path.open("wb") as log:
            while chunk := source.read1(65536):
                log.write(chunk)
                log.flush()

    def _build_prng_shim(self) -> Path:
        dll = self.work / "bcryptprimitives.dll"
        subprocess.run(
            [
                "x86_64-w64-mingw32-gcc",
                "-O2",
                "-shared",
                "-o",
                str(dll),
                str(HERE / "wine" / "bcryptprimitives.c"),
                "-ladvapi32",
                "-Wl,--kill-at",
            ],
            check=True,
            timeout=120,
        )
        return dll
