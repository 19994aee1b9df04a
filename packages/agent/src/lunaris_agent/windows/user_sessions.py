"""The logged-on users' sessions on Windows, and running winget in one as that user: the
Windows side of :class:`lunaris_agent.sessions.UserSessions`, through pywin32.

Imported on Windows only (by the runtime, when it runs as the service): it imports pywin32 at
its top. It needs SYSTEM's privileges (``WTSQueryUserToken`` requires SeTcbPrivilege), so the
agent uses it in the service only.

How a run goes: ``WTSQueryUserToken`` gives the session's user token, ``CreateEnvironmentBlock``
that user's environment (their profile's ``USERPROFILE``, ``LOCALAPPDATA``, ``TEMP``...), and
``CreateProcessAsUser`` starts the program with them, on the user's desktop
(``winsta0\\default``: a process on the service's window station fails to initialise), with
``CREATE_NO_WINDOW`` and its stdout and stderr on pipes. It starts suspended and is put into a
job object that kills every process in it when the job is closed, so a timeout, a cancelled
run or the agent's own end leaves no winget (nor an installer it started) behind. The program
is the one the agent passes, never a path from the user's profile or environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, Final

import pywintypes
import win32api
import win32con
import win32event
import win32file
import win32job
import win32pipe
import win32process
import win32profile
import win32ts

from lunaris_agent.sessions import OUTPUT_LIMIT, READ_CHUNK, SessionRun, UserSession

_POLL_S: Final = 0.25
_READER_GRACE_S: Final = 5.0
_DESKTOP: Final = "winsta0\\default"


class WtsUserSessions:
    """:class:`lunaris_agent.sessions.UserSessions` through the Terminal Services API."""

    def active(self) -> list[UserSession]:
        try:
            listed = win32ts.WTSEnumerateSessions(win32ts.WTS_CURRENT_SERVER_HANDLE, 1, 0)
            sessions = []
            for entry in listed:
                if entry["State"] != win32ts.WTSActive:
                    continue  # disconnected, listening (RDP), or the services' session 0
                account = _account(int(entry["SessionId"]))
                if account:
                    sessions.append(UserSession(int(entry["SessionId"]), account))
            return sessions
        except pywintypes.error as error:
            raise _os_error(error) from error

    async def run(
        self, session: UserSession, argv: Sequence[str], *, timeout_s: float
    ) -> SessionRun:
        with _started(session, subprocess.list2cmdline(list(argv))) as (process, job, pipes):
            readers = [_Reader(pipe) for pipe in pipes]
            deadline = time.monotonic() + timeout_s
            try:
                while win32event.WaitForSingleObject(process, 0) == win32event.WAIT_TIMEOUT:
                    if time.monotonic() >= deadline:
                        raise TimeoutError(f"did not finish within {timeout_s:g} s")
                    await asyncio.sleep(_POLL_S)
            except BaseException:  # the timeout, or the agent stopping
                win32job.TerminateJobObject(job, 1)
                raise
            returncode = int(win32process.GetExitCodeProcess(process)) & 0xFFFFFFFF
            stdout, stderr = [await reader.result() for reader in readers]
        return SessionRun(returncode, stdout, stderr)


def _account(session_id: int) -> str:
    """``DOMAIN\\name`` of the session's user; empty when nobody is logged on there."""
    name = win32ts.WTSQuerySessionInformation(
        win32ts.WTS_CURRENT_SERVER_HANDLE, session_id, win32ts.WTSUserName
    )
    if not name:
        return ""
    domain = win32ts.WTSQuerySessionInformation(
        win32ts.WTS_CURRENT_SERVER_HANDLE, session_id, win32ts.WTSDomainName
    )
    return f"{domain}\\{name}" if domain else str(name)


@contextlib.contextmanager
def _started(session: UserSession, command_line: str) -> Iterator[tuple[Any, Any, list[Any]]]:
    """The process (running, in its job), the job, and the read ends of its stdout and
    stderr; every handle is closed on the way out, and closing the job kills what is left."""
    handles: list[Any] = []
    try:
        token = win32ts.WTSQueryUserToken(session.session_id)
        handles.append(token)
        environment = win32profile.CreateEnvironmentBlock(token, False)
        environment.update(PYTHONUTF8="1", PYTHONIOENCODING="utf-8")  # for a .py stand-in
        inherit = pywintypes.SECURITY_ATTRIBUTES()
        inherit.bInheritHandle = True
        pipes, child_ends = [], []
        for _ in range(2):
            read_end, write_end = win32pipe.CreatePipe(inherit, 0)
            win32api.SetHandleInformation(read_end, win32con.HANDLE_FLAG_INHERIT, 0)
            handles.append(read_end)
            pipes.append(read_end)
            child_ends.append(write_end)
        nul = win32file.CreateFile(
            "NUL", win32con.GENERIC_READ, 0, inherit, win32con.OPEN_EXISTING, 0, None
        )
        child_ends.append(nul)
        startup = win32process.STARTUPINFO()
        startup.dwFlags = win32con.STARTF_USESTDHANDLES
        startup.hStdOutput, startup.hStdError, startup.hStdInput = child_ends
        startup.lpDesktop = _DESKTOP
        flags = (
            win32con.CREATE_NO_WINDOW
            | win32con.CREATE_UNICODE_ENVIRONMENT
            | win32con.CREATE_SUSPENDED  # resumed once it is in the job
        )
        try:
            process, thread, _, _ = win32process.CreateProcessAsUser(
                token, None, command_line, None, None, True, flags, environment, None, startup
            )
        finally:
            for end in child_ends:  # the child holds its own copies: EOF when it ends
                end.Close()
        handles.extend((process, thread))
        job = _kill_on_close_job()
        handles.append(job)
        try:
            win32job.AssignProcessToJobObject(job, process)
        except pywintypes.error:
            win32process.TerminateProcess(process, 1)
            raise
        win32process.ResumeThread(thread)
        yield process, job, pipes
    except pywintypes.error as error:
        raise _os_error(error) from error
    finally:
        for handle in reversed(handles):
            with contextlib.suppress(pywintypes.error):
                handle.Close()


def _kill_on_close_job() -> Any:
    job = win32job.CreateJobObject(None, "")
    limits = win32job.QueryInformationJobObject(job, win32job.JobObjectExtendedLimitInformation)
    limits["BasicLimitInformation"]["LimitFlags"] |= win32job.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    win32job.SetInformationJobObject(job, win32job.JobObjectExtendedLimitInformation, limits)
    return job


class _Reader:
    """Drains one pipe on a daemon thread (a blocking ReadFile), keeping the first
    :data:`OUTPUT_LIMIT` bytes; a daemon, so a pipe a stray process holds never blocks the
    agent's exit."""

    def __init__(self, pipe: Any) -> None:
        self._pipe = pipe
        self._kept = bytearray()
        self._thread = threading.Thread(target=self._drain, name="lunaris-session-pipe")
        self._thread.daemon = True
        self._thread.start()

    def _drain(self) -> None:
        with contextlib.suppress(pywintypes.error):  # ERROR_BROKEN_PIPE: the writer ended
            while True:
                _, chunk = win32file.ReadFile(self._pipe, READ_CHUNK)
                if not chunk:
                    return
                self._kept += chunk[: OUTPUT_LIMIT - len(self._kept)]

    async def result(self) -> bytes:
        """What was kept, once the pipe closed (or after a grace, if a stray process that
        inherited it still holds it open)."""
        await asyncio.to_thread(self._thread.join, _READER_GRACE_S)
        return bytes(self._kept)


def _os_error(error: Any) -> OSError:
    """pywin32's error as the :class:`OSError` the interface promises."""
    return OSError(error.winerror, f"{error.funcname}: {error.strerror}")
