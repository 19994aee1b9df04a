"""The logged-on users' sessions, and running a program in one as that user.

The agent's service runs as SYSTEM, and winget running as SYSTEM does not see the apps
installed into a user's profile. So the agent runs winget a second time in each active user
session, as that user (:mod:`lunaris_agent.per_user`). This module is the small interface it
does that through, :class:`UserSessions`, and a stand-in for development and tests,
:class:`ProfileSessions`. The Windows implementation is
:class:`lunaris_agent.windows.user_sessions.WtsUserSessions` (imported on Windows only).

The rule that keeps this safe: nothing from a user's profile or environment ever runs as
SYSTEM. A per-user winget runs only through :meth:`UserSessions.run`, with the user's token;
the program it starts is the one the agent found for the machine, never a path read from the
user's profile or environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple, Protocol

OUTPUT_LIMIT: Final = 4 * 1024 * 1024
"""Bytes kept of each stream of a run; what comes after is read and dropped, so a run that
printed this much is taken as cut (the caller does not parse it)."""
READ_CHUNK: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class UserSession:
    """An active session a user is logged on to."""

    session_id: int
    account: str
    """``DOMAIN\\name`` (``AzureAD\\ada``, ``PC-01\\kiosk``), as the protocol's ``user``."""


class SessionRun(NamedTuple):
    """A finished process started in a user's session."""

    returncode: int
    """Unsigned on Windows; negative (-signal) when killed on POSIX."""
    stdout: bytes
    stderr: bytes


class UserSessions(Protocol):
    """Where per-user scans and installs run."""

    def active(self) -> list[UserSession]:
        """The active sessions with a user logged on (not disconnected ones, not the
        services' session 0); may raise :class:`OSError`."""
        ...

    async def run(
        self, session: UserSession, argv: Sequence[str], *, timeout_s: float
    ) -> SessionRun:
        """Runs ``argv`` as the session's user (their token and environment), without a
        window and without a console to answer prompts. Raises :class:`TimeoutError` after
        ``timeout_s``, once the process and every process it started were killed, and
        :class:`OSError` when it cannot be started (the user logged off meanwhile). A
        cancelled run kills the process too."""
        ...


def same_account(one: str, other: str) -> bool:
    """Windows account names compare without regard to case."""
    return one.casefold() == other.casefold()


class ProfileSessions:
    """A stand-in for Linux and macOS development and for tests: the sessions a JSON file
    lists, each with a profile directory::

        [{"session_id": 2, "account": "PC-01\\\\ada", "profile": "/tmp/profiles/ada"}]

    The file is read on every call, so rewriting it logs users on and off; a missing file
    means nobody is logged on. **It runs every program as the current OS user**, not as the
    session's user: it only sets that profile's environment (``HOME``, ``USERPROFILE``,
    ``LOCALAPPDATA``, ``APPDATA``, ``USERNAME``, ``USERDOMAIN``) on a real subprocess. What it
    shows is the agent's flow; what running as another user means is Windows' to show."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def active(self) -> list[UserSession]:
        return [session for session, _ in self._entries()]

    async def run(
        self, session: UserSession, argv: Sequence[str], *, timeout_s: float
    ) -> SessionRun:
        profile = next((found for listed, found in self._entries() if listed == session), None)
        if profile is None:
            raise OSError(f"session {session.session_id} of {session.account} is not active")
        domain, _, name = session.account.rpartition("\\")
        environment = {
            **os.environ,
            **dict.fromkeys(("HOME", "USERPROFILE"), str(profile)),
            "LOCALAPPDATA": str(profile / "AppData" / "Local"),
            "APPDATA": str(profile / "AppData" / "Roaming"),
            "USERNAME": name,
            "USERDOMAIN": domain,
            "PYTHONUTF8": "1",
            "PYTHONIOENCODING": "utf-8",
        }
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            cwd=profile,
            start_new_session=True,  # its own process group: a timeout kills all it started
        )
        assert process.stdout is not None
        assert process.stderr is not None
        try:
            async with asyncio.timeout(timeout_s):
                stdout, stderr = await asyncio.gather(
                    read_bounded(process.stdout), read_bounded(process.stderr)
                )
                returncode = await process.wait()
        except BaseException:  # the timeout, or the agent stopping: nothing is left behind
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await process.wait()
            raise
        return SessionRun(returncode, stdout, stderr)

    def _entries(self) -> list[tuple[UserSession, Path]]:
        try:
            listed = json.loads(self.path.read_text(encoding="utf-8"))
            return [
                (
                    UserSession(int(entry["session_id"]), str(entry["account"])),
                    Path(entry["profile"]),
                )
                for entry in listed
            ]
        except FileNotFoundError:
            return []
        except (ValueError, TypeError, KeyError) as error:
            raise OSError(f"{self.path} does not list sessions: {error!r}") from error


async def read_bounded(stream: asyncio.StreamReader) -> bytes:
    """Everything ``stream`` gives until it closes, of which the first :data:`OUTPUT_LIMIT`
    bytes are kept."""
    kept = bytearray()
    while chunk := await stream.read(READ_CHUNK):
        kept += chunk[: OUTPUT_LIMIT - len(kept)]
    return bytes(kept)
