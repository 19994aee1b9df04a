"""Find winget and run it: the agent's only code that starts winget.

A run is bounded: its output is kept up to :data:`MAX_OUTPUT_BYTES` (and the end of what came
after), a timeout kills winget with every process it started, and a cancelled run does not
leave winget behind. What the run's output and exit code mean is
:mod:`lunaris_agent.winget.upgrade`'s to decide.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

log = logging.getLogger(__name__)

MAX_OUTPUT_BYTES: Final = 4 * 1024 * 1024
"""Output kept from the start of a run; a real scan of thousands of packages is well below."""
_TAIL_BYTES: Final = 256 * 1024
"""Output kept from the end of a run that printed more: where winget prints its result."""
_READ_CHUNK: Final = 64 * 1024
_REAP_GRACE_S: Final = 5.0


# The App Installer package that ships winget.exe, e.g.
# Microsoft.DesktopAppInstaller_1.21.3482.0_x64__8wekyb3d8bbwe (its version is App Installer's,
# not winget's: App Installer 1.21 ships winget 1.6).
_APP_INSTALLER_DIR_RE: Final = re.compile(
    r"Microsoft\.DesktopAppInstaller_(?P<version>\d+(?:\.\d+){0,3})_(?P<arch>[a-z0-9]+)"
    r"__8wekyb3d8bbwe",
    re.IGNORECASE,
)


def find_winget(
    configured: Path | None = None,
    *,
    program_files: Path | None = None,
    path_lookup: Callable[[str], str | None] = shutil.which,
    architecture: str | None = None,
) -> Path | None:
    """The winget to run, or None.

    In order: ``configured`` (the config key ``winget_path``: a stand-in for tests and other
    OSes; it wins, and if it is missing nothing else is tried), then ``winget`` on PATH, then,
    on Windows, the newest App Installer package under ``Program Files\\WindowsApps``: the
    service runs as SYSTEM, whose PATH has no ``winget`` alias. ``program_files`` and
    ``architecture`` (``x64``, ``arm64``) default to this machine's.
    """
    if configured is not None:
        return configured if configured.is_file() else None
    on_path = path_lookup("winget")
    if on_path is not None:
        return Path(on_path)
    program_files = program_files or _windows_program_files()
    if program_files is None:
        return None
    return newest_app_installer_winget(
        program_files / "WindowsApps", architecture or _machine_architecture()
    )


def newest_app_installer_winget(windows_apps: Path, architecture: str) -> Path | None:
    """``winget.exe`` of the newest App Installer for ``architecture`` in ``windows_apps``.

    Versions compare as numbers (1.21.3482.0 is newer than 1.9.25200.0). Folders of another
    architecture, with a malformed name, or without winget.exe are skipped; a folder that
    cannot be read (WindowsApps is locked down for anyone but SYSTEM) counts as not found.
    """
    candidates: list[tuple[tuple[int, ...], Path]] = []
    try:
        entries = list(windows_apps.iterdir())
    except OSError as exc:
        log.debug("cannot list %s: %s", windows_apps, exc)
        return None
    for entry in entries:
        match = _APP_INSTALLER_DIR_RE.fullmatch(entry.name)
        if match is None or match["arch"].casefold() != architecture.casefold():
            continue
        executable = entry / "winget.exe"
        with contextlib.suppress(OSError):
            if executable.is_file():
                version = tuple(int(part) for part in match["version"].split("."))
                candidates.append((version, executable))
    return max(candidates)[1] if candidates else None


def _windows_program_files() -> Path | None:
    if sys.platform == "win32":
        # ProgramW6432 is the 64-bit folder even when this Python is a 32-bit process.
        root = os.environ.get("PROGRAMW6432") or os.environ.get("PROGRAMFILES")
        return Path(root) if root else None
    return None


def _machine_architecture() -> str:
    machine = platform.machine().casefold()
    return "arm64" if machine in ("arm64", "aarch64") else "x64"


def not_found_message(configured: Path | None) -> str:
    """Why :func:`find_winget` found nothing, and what to do about it."""
    if configured is not None:
        return f"winget_path in the agent's config names no file: {configured}"
    return (
        "winget was not found: not on PATH and no App Installer (Microsoft.DesktopAppInstaller)"
        " under Program Files\\WindowsApps; install App Installer for all users, or set"
        " winget_path in the agent's config"
    )


@dataclass(frozen=True, slots=True)
class WingetRun:
    """One finished winget process."""

    exit_code: int
    """As the OS reports it: unsigned on Windows, negative (-signal) when killed on POSIX."""
    output: str
    """stdout and stderr, merged, decoded as UTF-8 with every ``\\r`` kept."""
    duration_s: float
    output_truncated: bool = False
    """The run printed more than :data:`MAX_OUTPUT_BYTES`; the middle of it was dropped."""


class WingetTimeoutError(TimeoutError):
    """winget did not finish in time; it was killed, with every process it started."""

    def __init__(self, timeout_s: float, output: str) -> None:
        super().__init__(f"winget did not finish within {timeout_s:g} s")
        self.timeout_s = timeout_s
        self.output = output  # what it printed until it was killed


async def run_winget(winget: Path, args: Sequence[str], *, timeout_s: float) -> WingetRun:
    """Run ``winget args`` and capture its output.

    Raises :class:`WingetTimeoutError` after ``timeout_s`` (the process tree is killed and
    reaped first) and :class:`OSError` when the process cannot be started.
    """
    started = time.monotonic()
    process = await _start(winget_command(winget, args))
    assert process.stdout is not None
    capture = _BoundedCapture()
    try:
        async with asyncio.timeout(timeout_s):
            await capture.read_to_end(process.stdout)
            exit_code = await process.wait()
    except TimeoutError:
        await _kill_and_reap(process, capture)
        raise WingetTimeoutError(timeout_s, capture.text()) from None
    except BaseException:
        # Cancelled (the agent is stopping): winget must not outlive the request.
        await _kill_and_reap(process, capture)
        raise
    return WingetRun(
        exit_code=exit_code,
        output=capture.text(),
        duration_s=time.monotonic() - started,
        output_truncated=capture.truncated,
    )


class WingetRunner(Protocol):
    """Runs winget and captures its output as :func:`run_winget` does: on the machine, or
    (:mod:`lunaris_agent.per_user`) in a logged-on user's session."""

    async def __call__(
        self, winget: Path, args: Sequence[str], *, timeout_s: float
    ) -> WingetRun: ...


def winget_command(winget: Path, args: Sequence[str]) -> list[str]:
    """The command line that runs ``winget args``."""
    # A Python stand-in runs under this interpreter, so tests (and Wine) need no file association.
    if winget.suffix.casefold() == ".py":
        return [sys.executable, str(winget), *args]
    return [str(winget), *args]


async def _start(command: Sequence[str]) -> asyncio.subprocess.Process:
    # winget writes UTF-8 whatever the code page; a Python stand-in must be told to.
    environment = {**os.environ, "PYTHONUTF8": "1", "PYTHONIOENCODING": "utf-8"}
    if sys.platform == "win32":
        # No console window: the service has no desktop, and a user must not see one flash.
        return await asyncio.create_subprocess_exec(
            *command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=environment,
            creationflags=subprocess.CREATE_NO_WINDOW,
        )
    # A session (and process group) of its own, so a timeout can kill everything it started.
    return await asyncio.create_subprocess_exec(
        *command,
        stdin=subprocess.DEVNULL,  # a prompt must fail at once, not wait for an answer
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=environment,
        start_new_session=True,
    )


async def _kill_and_reap(process: asyncio.subprocess.Process, capture: _BoundedCapture) -> None:
    """Kill the process tree, then collect the exit status so no zombie is left behind."""
    if process.returncode is None:
        await _kill_tree(process)
    # wait() returns only once the output pipe is closed too: keep draining it.
    assert process.stdout is not None
    try:
        async with asyncio.timeout(_REAP_GRACE_S):
            await capture.read_to_end(process.stdout)
            await process.wait()
    except TimeoutError:
        # A grandchild that left the process group still holds the pipe; the child itself
        # has been reaped (asyncio's child watcher collects it), so only the pipe lingers.
        log.warning("winget (pid %s) was killed, but its output pipe is still open", process.pid)


async def _kill_tree(process: asyncio.subprocess.Process) -> None:
    if sys.platform == "win32":
        # winget starts installers (msiexec, setup.exe) as children: end the whole tree.
        with contextlib.suppress(OSError):
            taskkill = await asyncio.create_subprocess_exec(
                "taskkill",
                "/T",
                "/F",
                "/PID",
                str(process.pid),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                creationflags=subprocess.CREATE_NO_WINDOW,
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_REAP_GRACE_S):
                    await taskkill.wait()
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


class _BoundedCapture:
    """Keeps the first :data:`MAX_OUTPUT_BYTES` and the last :data:`_TAIL_BYTES` of output.

    A runaway child cannot exhaust memory, and the end of a long install (its result) is kept.
    """

    def __init__(self) -> None:
        self._head = bytearray()
        self._tail = bytearray()
        self.truncated = False

    async def read_to_end(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(_READ_CHUNK):
            self._add(chunk)

    def _add(self, chunk: bytes) -> None:
        room = MAX_OUTPUT_BYTES - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.truncated = True
            self._tail += chunk
            if len(self._tail) > 2 * _TAIL_BYTES:  # trim in batches, not on every chunk
                del self._tail[: len(self._tail) - _TAIL_BYTES]

    def text(self) -> str:
        # Decoded from bytes by hand: universal newlines would split the spinner's bare "\r"
        # redraws into lines of their own.
        head = self._head.decode("utf-8", errors="replace")
        if not self.truncated:
            return head
        tail = bytes(self._tail[-_TAIL_BYTES:])
        # Resume at a line start, so that no half line is glued to the head's last line.
        tail = tail[tail.find(b"\n") + 1 :]
        return head + "\n" + tail.decode("utf-8", errors="replace")
