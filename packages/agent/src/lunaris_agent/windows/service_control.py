"""``lunaris-agent service install|remove|start|stop``: the service managed from an elevated
prompt, without the MSI.

``install`` registers :mod:`lunaris_agent.windows.service`'s definition (automatic start,
LocalSystem, the recovery policy that restarts it after a failure) and records the
``--config PATH`` it was given, if any, as the ``ConfigPath`` value of the service's
``Parameters`` registry key; ``remove`` stops the service first. Each action waits for the
state it asked for (at most :data:`CONTROL_TIMEOUT_S`) and prints what happened; a refusal by
Windows is explained in words (elevate, install first, try again) rather than as a code.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Final

import pywintypes
import win32service
import win32serviceutil

from lunaris_agent.windows.service import (
    CONFIG_PATH_OPTION,
    DESCRIPTION,
    DISPLAY_NAME,
    FAILURE_COUNT_RESET_S,
    RESTART_DELAYS_MS,
    SERVICE_ARGUMENTS,
    SERVICE_NAME,
    service_command_line,
)

CONTROL_TIMEOUT_S: Final = 30.0
POLL_INTERVAL_S = 0.25

# Win32 error codes (winerror.h), named here rather than importing pywin32's winerror module.
ERROR_ACCESS_DENIED: Final = 5
ERROR_SERVICE_REQUEST_TIMEOUT: Final = 1053
ERROR_SERVICE_ALREADY_RUNNING: Final = 1056
ERROR_SERVICE_DISABLED: Final = 1058
ERROR_SERVICE_DOES_NOT_EXIST: Final = 1060
ERROR_SERVICE_CANNOT_ACCEPT_CTRL: Final = 1061
ERROR_SERVICE_NOT_ACTIVE: Final = 1062
ERROR_SERVICE_MARKED_FOR_DELETE: Final = 1072
ERROR_SERVICE_EXISTS: Final = 1073

ACTIONS: Final = ("install", "remove", "start", "stop")


def control(action: str, *, config_path: Path | None = None) -> int:
    """``lunaris-agent service install|remove|start|stop``: 0 on success, else non-zero after
    printing why. ``config_path`` matters to ``install`` only (see the module doc)."""
    try:
        match action:
            case "install":
                return _install(config_path)
            case "remove":
                return _remove()
            case "start":
                return _start()
            case "stop":
                return _stop()
            case _:
                _print_error(f"unknown service action {action!r}: use {', '.join(ACTIONS)}")
                return 2
    except pywintypes.error as error:
        _print_error(_explain(action, error))
        return 1


def _install(config_path: Path | None) -> int:
    if sys.prefix != sys.base_prefix:
        _print_error(
            "cannot install the service from a virtual environment: its python.exe is a "
            "launcher that runs the interpreter as a child process, and the SCM only talks to "
            "the process it started. Use the agent's own python.exe (the MSI installs one)."
        )
        return 1
    python_exe = Path(sys.executable)
    if not python_exe.is_file():
        # pywin32 would go looking for pythonservice.exe instead.
        _print_error(f"cannot find this Python's executable ({sys.executable!r})")
        return 1
    command_line = service_command_line(python_exe)
    settings = {
        "startType": win32service.SERVICE_AUTO_START,
        "exeName": str(python_exe),
        "exeArgs": SERVICE_ARGUMENTS,
        "description": DESCRIPTION,
    }
    try:
        # No class string: python.exe hosts the class itself, no PythonClass registry key.
        # No user name: LocalSystem.
        win32serviceutil.InstallService(None, SERVICE_NAME, DISPLAY_NAME, **settings)
        done = "installed: it starts automatically, as LocalSystem"
    except pywintypes.error as error:
        if error.winerror != ERROR_SERVICE_EXISTS:
            raise
        win32serviceutil.ChangeServiceConfig(
            None, SERVICE_NAME, displayName=DISPLAY_NAME, **settings
        )
        done = "was installed already: updated, it starts automatically"
    # Always written, so a reinstall without --config drops a path an earlier one recorded.
    win32serviceutil.SetServiceCustomOption(
        SERVICE_NAME, CONFIG_PATH_OPTION, "" if config_path is None else str(config_path.absolute())
    )
    print(f"{DISPLAY_NAME} ({SERVICE_NAME}) {done}.")
    print(f"  command line: {command_line}")
    if config_path is not None:
        print(f"  config: {config_path.absolute()}")
    _set_recovery_policy()
    print("Start it with `lunaris-agent service start`.")
    return 0


def _set_recovery_policy() -> None:
    """Restart the service after a failure; a warning, not an error, when Windows refuses."""
    actions = tuple((win32service.SC_ACTION_RESTART, delay) for delay in RESTART_DELAYS_MS)
    try:
        manager = win32service.OpenSCManager(None, None, win32service.SC_MANAGER_CONNECT)
        try:
            handle = win32service.OpenService(
                manager,
                SERVICE_NAME,
                # A restart action needs SERVICE_START besides the right to change the config.
                win32service.SERVICE_CHANGE_CONFIG | win32service.SERVICE_START,
            )
            try:
                win32service.ChangeServiceConfig2(
                    handle,
                    win32service.SERVICE_CONFIG_FAILURE_ACTIONS,
                    {
                        "ResetPeriod": FAILURE_COUNT_RESET_S,
                        "RebootMsg": None,
                        "Command": None,
                        "Actions": actions,
                    },
                )
                # Also when the service stops itself with an error code, not only on a crash.
                win32service.ChangeServiceConfig2(
                    handle, win32service.SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, True
                )
            finally:
                win32service.CloseServiceHandle(handle)
        finally:
            win32service.CloseServiceHandle(manager)
    except (pywintypes.error, NotImplementedError) as error:
        _print_error(f"warning: could not set the service's recovery (restart) policy: {error}")
        return
    delays = ", ".join(f"{delay // 1000} s" for delay in RESTART_DELAYS_MS)
    print(f"  after a failure Windows restarts it (waiting {delays})")


def _remove() -> int:
    if _request_stop() and _wait_for(win32service.SERVICE_STOPPED) != win32service.SERVICE_STOPPED:
        _print_error(
            f"{SERVICE_NAME} did not stop within {CONTROL_TIMEOUT_S:.0f} s; not removed. "
            "Try again, or end its python.exe in Task Manager."
        )
        return 1
    win32serviceutil.RemoveService(SERVICE_NAME)
    print(f"{DISPLAY_NAME} ({SERVICE_NAME}) removed.")
    return 0


def _start() -> int:
    try:
        win32serviceutil.StartService(SERVICE_NAME)
    except pywintypes.error as error:
        if error.winerror != ERROR_SERVICE_ALREADY_RUNNING:
            raise
        print(f"{DISPLAY_NAME} is running already.")
        return 0
    state = _wait_for(win32service.SERVICE_RUNNING)
    if state == win32service.SERVICE_RUNNING:
        print(f"{DISPLAY_NAME} started.")
        return 0
    if state == win32service.SERVICE_STOPPED:
        _print_error(
            f"{DISPLAY_NAME} stopped right after it started. The Windows Application log "
            f"(source {SERVICE_NAME}) and the agent's log say why."
        )
        return 1
    _print_error(f"{DISPLAY_NAME} is still starting after {CONTROL_TIMEOUT_S:.0f} s.")
    return 1


def _stop() -> int:
    if not _request_stop():
        print(f"{DISPLAY_NAME} is not running.")
        return 0
    if _wait_for(win32service.SERVICE_STOPPED) == win32service.SERVICE_STOPPED:
        print(f"{DISPLAY_NAME} stopped.")
        return 0
    _print_error(f"{DISPLAY_NAME} did not stop within {CONTROL_TIMEOUT_S:.0f} s.")
    return 1


def _request_stop() -> bool:
    """Sends the stop control; False when the service was not running."""
    try:
        win32serviceutil.StopService(SERVICE_NAME)
    except pywintypes.error as error:
        if error.winerror == ERROR_SERVICE_NOT_ACTIVE:
            return False
        raise
    return True


def _wait_for(state: int) -> int:
    """Polls until the service is in ``state`` or stopped (a start that failed), or until
    :data:`CONTROL_TIMEOUT_S` has passed; returns the last state seen."""
    deadline = time.monotonic() + CONTROL_TIMEOUT_S
    while True:
        current = int(win32serviceutil.QueryServiceStatus(SERVICE_NAME)[1])
        if current in (state, win32service.SERVICE_STOPPED) or time.monotonic() >= deadline:
            return current
        time.sleep(POLL_INTERVAL_S)


def _explain(action: str, error: pywintypes.error) -> str:
    code = error.winerror
    if code == ERROR_ACCESS_DENIED:
        return (
            f"cannot {action} the {SERVICE_NAME} service: access denied. Run this from an "
            "elevated prompt (right-click, Run as administrator)."
        )
    if code == ERROR_SERVICE_DOES_NOT_EXIST:
        return (
            f"the {SERVICE_NAME} service is not installed: install the Lunaris Agent MSI, or "
            "run `lunaris-agent service install`."
        )
    if code == ERROR_SERVICE_MARKED_FOR_DELETE:
        return (
            f"the {SERVICE_NAME} service is being deleted: close the Services console and "
            "Event Viewer, then try again (or restart Windows)."
        )
    if code == ERROR_SERVICE_DISABLED:
        return f"the {SERVICE_NAME} service is disabled: set its startup type to Automatic."
    if code == ERROR_SERVICE_CANNOT_ACCEPT_CTRL:
        return f"the {SERVICE_NAME} service is starting or stopping: try again in a moment."
    if code == ERROR_SERVICE_REQUEST_TIMEOUT:
        return f"the {SERVICE_NAME} service did not answer in time; see the Application log."
    return f"cannot {action} the {SERVICE_NAME} service: {error.strerror} (Windows error {code})"


def _print_error(message: str) -> None:
    print(message, file=sys.stderr)
