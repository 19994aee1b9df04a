"""Starting the installer so that it outlives the agent: the MSI's major upgrade stops the
service, which ends this process, and msiexec must go on without it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

SUCCESS_CODES: Final = frozenset({0, 1641, 3010})
"""msiexec's success, and success with a restart started (1641) or needed (3010)."""
REBOOT_CODES: Final = frozenset({1641, 3010})
DETACHED_PROCESS: Final = 0x00000008
CREATE_NEW_PROCESS_GROUP: Final = 0x00000200
CREATE_BREAKAWAY_FROM_JOB: Final = 0x01000000
"""Process creation flags (``subprocess`` has them on Windows only)."""
_ACCESS_DENIED: Final = 5
_POLL_S: Final = 0.5


def msiexec() -> Path:
    return Path(os.environ.get("SYSTEMROOT", r"C:\Windows")) / "System32" / "msiexec.exe"


def msiexec_command_line(msi: Path, log: Path) -> list[str]:
    return [str(msiexec()), "/i", str(msi), "/qn", "/norestart", "/l*v", str(log)]


def start_detached(argv: Sequence[str]) -> subprocess.Popen[bytes]:
    """Starts ``argv`` outside the agent's console, process group and job, inheriting none
    of its handles."""
    if sys.platform == "win32":
        return _start_on_windows(argv)
    return _popen(argv, new_session=True)


def _start_on_windows(argv: Sequence[str]) -> subprocess.Popen[bytes]:
    flags = DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP
    try:
        return _popen(argv, flags | CREATE_BREAKAWAY_FROM_JOB)
    except OSError as error:
        if getattr(error, "winerror", None) != _ACCESS_DENIED:
            raise
        # A job that allows no breakaway (not the SCM's): started inside it, which a
        # service stop does not end.
        return _popen(argv, flags)


def _popen(
    argv: Sequence[str], creationflags: int = 0, *, new_session: bool = False
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        creationflags=creationflags,
        start_new_session=new_session,
    )


_LEFT_RUNNING: set[subprocess.Popen[bytes]] = set()
"""Installers this agent stopped waiting for (it is stopping): they run on, unwatched."""


async def wait_for_exit(process: subprocess.Popen[bytes]) -> int:
    """Polls, so that a stopping agent is not held up by a thread waiting on msiexec."""
    try:
        while (code := process.poll()) is None:  # noqa: ASYNC110 - a Popen has nothing to await
            await asyncio.sleep(_POLL_S)
    except asyncio.CancelledError:
        if process.poll() is None:
            _LEFT_RUNNING.add(process)  # not a child "leaked" by mistake: it must go on
        raise
    return code
