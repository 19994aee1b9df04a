"""The Windows service: a thin pywin32 shell around :func:`lunaris_agent.runtime.run`.

The only module of the agent that imports pywin32. It is imported on Windows only (by
``lunaris-agent service ...``), or by tests that put fake pywin32 modules in ``sys.modules``.

**How the service is hosted.** The Service Control Manager (SCM) runs::

    "C:\\Program Files\\LunarisAgent\\python\\python.exe" -B -m lunaris_agent service host

(:func:`service_command_line`; the MSI's ``ServiceInstall`` gets :data:`SERVICE_ARGUMENTS`).

- The installed ``python.exe`` hosts the service itself (:func:`host`: ``PrepareToHostSingle``
  then ``StartServiceCtrlDispatcher``). pythonservice.exe is not used, so nothing has to be
  copied beside the interpreter or registered (pywintypes DLL, ``PythonClass`` registry key).
- ``-m lunaris_agent`` runs the same CLI as every other command. The explicit ``service host``
  means a python.exe started by hand never tries to talk to the SCM.
- ``-B``: the service runs as SYSTEM and would otherwise write ``__pycache__`` into Program
  Files; the MSI does not own those files and would leave them behind at uninstall.
- No ``-I``: the embeddable CPython's ``._pth`` file already keeps the working directory and
  ``PYTHON*`` variables out of ``sys.path``.
- The executable path is quoted: an unquoted path with spaces lets Windows try
  ``C:\\Program.exe`` first (CWE-428).

**Stopping.** Stop and shutdown report STOP_PENDING and set the :class:`threading.Event` that
``runtime.run`` watches; ``runtime.run`` then returns and the service reports STOPPED.

**Failures.** An unexpected exception is written to the Event Log and raised again, so pywin32
logs its traceback and reports STOPPED with an error code. The recovery policy that
``service install`` sets (restart after 10 s, 1 min, then 5 min, also for this kind of
failure) then restarts the service. A non-zero exit code means the agent gave up on purpose (a
bad config, a revoked device). It is logged as an error, and the service stops cleanly without
a restart, because a restart cannot fix it.

**Config.** The service reads ``config.default_config_path()`` unless ``lunaris-agent --config
PATH service install`` recorded another path. That path is the ``ConfigPath`` value of the
service's ``Parameters`` registry key.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import Final

import pywintypes
import servicemanager
import win32service
import win32serviceutil

log = logging.getLogger(__name__)

SERVICE_NAME: Final = "LunarisAgentService"
DISPLAY_NAME: Final = "Lunaris Agent"
DESCRIPTION: Final = (
    "Reports the application updates winget can install on this PC to the Lunaris server, "
    "and installs them when an administrator asks."
)
SERVICE_ARGUMENTS: Final = "-B -m lunaris_agent service host"
"""What follows the quoted python.exe path; the MSI's ServiceInstall ``Arguments``."""

CONFIG_PATH_OPTION: Final = "ConfigPath"
STOP_WAIT_HINT_MS: Final = 10_000
"""How long we tell the SCM a stop may take; ``runtime.run`` normally returns in well under."""
RESTART_DELAYS_MS: Final = (10_000, 60_000, 300_000)
"""Recovery after a failure: 1st, 2nd, then every later one (the SCM repeats the last)."""
FAILURE_COUNT_RESET_S: Final = 24 * 3600
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
ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: Final = 1063
ERROR_SERVICE_MARKED_FOR_DELETE: Final = 1072
ERROR_SERVICE_EXISTS: Final = 1073

ACTIONS: Final = ("install", "remove", "start", "stop")


class LunarisAgentService(win32serviceutil.ServiceFramework):  # type: ignore[misc]
    _svc_name_ = SERVICE_NAME
    _svc_display_name_ = DISPLAY_NAME
    _svc_description_ = DESCRIPTION

    def __init__(self, args: Sequence[str]) -> None:
        super().__init__(args)
        self.stop_event = threading.Event()

    def GetAcceptedControls(self) -> int:
        # Stop, and shutdown so the agent closes its files before power-off; no pause.
        return int(win32service.SERVICE_ACCEPT_STOP | win32service.SERVICE_ACCEPT_SHUTDOWN)

    def SvcStop(self) -> None:
        self._request_stop("stop")

    def SvcShutdown(self) -> None:
        self._request_stop("shutdown")

    def _request_stop(self, why: str) -> None:
        log.info("service %s requested", why)
        self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING, waitHint=STOP_WAIT_HINT_MS)
        self.stop_event.set()

    def SvcDoRun(self) -> None:
        # pywin32's SvcRun has reported RUNNING already; repeat it unless a stop came first.
        if not self.stop_event.is_set():
            self.ReportServiceStatus(win32service.SERVICE_RUNNING)
        _event_log(servicemanager.PYS_SERVICE_STARTED)
        try:
            code, detail = self._run_agent()
        except Exception as error:
            log.exception("the service stopped after an unexpected error")
            _event_log_error(
                f"{DISPLAY_NAME} stopped after an unexpected error: "
                f"{''.join(traceback.format_exception_only(error)).strip()}\n"
                "Windows restarts it as the service's recovery settings say; the next event "
                "has the traceback."
            )
            raise  # pywin32 logs the traceback and reports STOPPED with an error code
        if code == 0:
            _event_log(servicemanager.PYS_SERVICE_STOPPED)
        else:
            _event_log_error(
                f"{DISPLAY_NAME} stopped: the agent gave up (exit code {code}). {detail}\n"
                "Fix the cause, then start the service again (lunaris-agent service start)."
            )

    def _run_agent(self) -> tuple[int, str]:
        """Runs the agent until stopped: its exit code, and where to read why it ended."""
        # Imported when the service runs rather than at import: tests replace these modules.
        from lunaris_agent import config, installer_values, logs, runtime

        path = _configured_config_path() or config.default_config_path()
        try:
            # Before the config is read: after an MSI install, the values given to msiexec
            # are all there is of it until they are taken into config.json.
            took_installer_values = installer_values.take(path)
            log_dir = config.load(path).log_dir
        except config.ConfigError as error:
            # No log directory without a config: the Event Log is the only place to say why.
            return int(runtime.ExitCode.CONFIG), str(error)
        logs.configure(log_dir, foreground=False)
        if took_installer_values:
            log.info("took the values given to the installer into %s", path)
        code = runtime.run(self.stop_event, config_path=path)
        return code, f"The agent's log in {log_dir} says why."


def service_command_line(python_exe: PurePath) -> str:
    """The service's command line (ImagePath): ``python_exe`` quoted, then the arguments."""
    if not python_exe.is_absolute():
        raise ValueError(f"the service needs an absolute path to python.exe, not {python_exe}")
    return f'"{python_exe}" {SERVICE_ARGUMENTS}'


def host() -> int:
    """Runs the service in this process; returns when the SCM has stopped it.

    Only the SCM can start it: run by hand it prints how to start the service and returns 2."""
    servicemanager.Initialize(SERVICE_NAME, servicemanager.__file__)
    servicemanager.PrepareToHostSingle(LunarisAgentService)
    try:
        servicemanager.StartServiceCtrlDispatcher()
    except pywintypes.error as error:
        if error.winerror == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT:
            _print_error(
                "`service host` is how Windows runs the service, not a command to type: use "
                "`lunaris-agent service start`, or `lunaris-agent run` to run in this console."
            )
            return 2
        _print_error(f"cannot run the service: {error.strerror} (Windows error {error.winerror})")
        return 1
    return 0


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


def _configured_config_path() -> Path | None:
    value = win32serviceutil.GetServiceCustomOption(SERVICE_NAME, CONFIG_PATH_OPTION, "")
    return Path(value) if value else None


def _event_log(message_id: int) -> None:
    """One of pywin32's standard service messages ("... has started"), with our name."""
    try:
        servicemanager.LogMsg(
            servicemanager.EVENTLOG_INFORMATION_TYPE, message_id, (SERVICE_NAME, "")
        )
    except pywintypes.error:
        log.warning("could not write to the Event Log", exc_info=True)


def _event_log_error(message: str) -> None:
    try:
        servicemanager.LogErrorMsg(message)
    except pywintypes.error:
        # A broken Event Log must not hide the message: the agent's own log gets it instead.
        log.error("%s", message)
        log.warning("could not write to the Event Log", exc_info=True)


def _print_error(message: str) -> None:
    print(message, file=sys.stderr)
