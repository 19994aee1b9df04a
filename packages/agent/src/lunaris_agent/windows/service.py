"""The Windows service: a thin pywin32 shell around :func:`lunaris_agent.runtime.run`, and the
definition of the service that ``lunaris-agent service install`` and the MSI both register.

With :mod:`lunaris_agent.windows.service_control`, the only modules of the agent that import
pywin32. They are imported on Windows only (by ``lunaris-agent service ...``), or by tests that
put fake pywin32 modules in ``sys.modules``.

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

import contextlib
import logging
import sys
import threading
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

ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: Final = 1063
"""Win32 error (winerror.h): the process was not started by the SCM."""


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
        except config.ConfigError as error:
            # Values an upgrade was given (TAGS that are not tags, say) refused, and the
            # config there already kept: its log says why too, where the agent's story is.
            with contextlib.suppress(config.ConfigError):
                logs.configure(config.load(path).log_dir, foreground=False)
                log.error("%s", error)
            return int(runtime.ExitCode.CONFIG), str(error)
        try:
            log_dir = config.load(path).log_dir
        except config.ConfigError as error:
            # No log directory without a config: the Event Log is the only place to say why.
            return int(runtime.ExitCode.CONFIG), str(error)
        logs.configure(log_dir, foreground=False)
        if took_installer_values:
            log.info("took the values given to the installer into %s", path)
        code = runtime.run(self.stop_event, config_path=path, self_update=True, per_user=True)
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
            print(
                "`service host` is how Windows runs the service, not a command to type: use "
                "`lunaris-agent service start`, or `lunaris-agent run` to run in this console.",
                file=sys.stderr,
            )
            return 2
        print(
            f"cannot run the service: {error.strerror} (Windows error {error.winerror})",
            file=sys.stderr,
        )
        return 1
    return 0


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
