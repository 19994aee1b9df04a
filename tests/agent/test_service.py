"""lunaris_agent.windows.service and service_control off Windows: fake pywin32 modules stand in
for the SCM and the Event Log. They record what the service asks of Windows, answer like
pywin32 does (its ServiceFramework reporting statuses, SvcRun calling SvcDoRun; the SCM's error
codes), and fake agent modules stand in for config, logs and runtime."""

import importlib
import sys
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

import lunaris_agent

NAME = "LunarisAgentService"
STOPPED, START_PENDING, STOP_PENDING, RUNNING = 1, 2, 3, 4
ACCEPT_STOP, ACCEPT_SHUTDOWN = 1, 4
AUTO_START = 2
EVENTLOG_ERROR, EVENTLOG_INFO = 1, 4
PYS_STARTED, PYS_STOPPED = 0x40001002, 0x40001004
FAILURE_ACTIONS, FAILURE_ACTIONS_FLAG = 2, 4
SC_ACTION_RESTART = 1


class WinError(Exception):
    """pywintypes.error: (winerror, funcname, strerror)."""

    def __init__(self, winerror: int, funcname: str, strerror: str) -> None:
        super().__init__(winerror, funcname, strerror)
        self.winerror = winerror
        self.funcname = funcname
        self.strerror = strerror


ACCESS_DENIED = WinError(5, "OpenSCManager", "Access is denied.")


@dataclass
class FakeWindows:
    installed: bool = False
    state: int = STOPPED
    after_start: list[int] = field(default_factory=lambda: [RUNNING])
    after_stop: list[int] = field(default_factory=lambda: [STOPPED])
    failures: dict[str, Exception] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    statuses: list[tuple[int, int]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    _queued: deque[int] = field(default_factory=deque)

    def record(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((name, args, kwargs))
        if name in self.failures:
            raise self.failures[name]

    def called(self, name: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        return [(args, kwargs) for call, args, kwargs in self.calls if call == name]

    def names(self) -> list[str]:
        return [call for call, _, _ in self.calls]

    # --- win32serviceutil -------------------------------------------------------------------

    def install_service(self, class_string: Any, name: str, display: str, **kw: Any) -> None:
        self.record("InstallService", class_string, name, display, **kw)
        if self.installed:
            raise WinError(1073, "CreateService", "The specified service already exists.")
        self.installed = True

    def change_service_config(self, class_string: Any, name: str, **kw: Any) -> None:
        self.record("ChangeServiceConfig", class_string, name, **kw)

    def remove_service(self, name: str) -> None:
        self.record("RemoveService", name)
        self._require_installed()
        self.installed = False

    def start_service(self, name: str, args: Any = None) -> None:
        self.record("StartService", name)
        self._require_installed()
        if self.state != STOPPED:
            raise WinError(1056, "StartService", "An instance of the service is already running.")
        self.state = START_PENDING
        self._queued.extend(self.after_start)

    def stop_service(self, name: str) -> None:
        self.record("StopService", name)
        self._require_installed()
        if self.state == STOPPED:
            raise WinError(1062, "ControlService", "The service has not been started.")
        self.state = STOP_PENDING
        self._queued.extend(self.after_stop)

    def query_service_status(self, name: str) -> tuple[int, ...]:
        self._require_installed()
        if self._queued:
            self.state = self._queued.popleft()
        return (16, self.state, 0, 0, 0, 0, 0)

    def get_option(self, name: str, option: str, default: Any = None) -> Any:
        return self.options.get(option, default)

    def set_option(self, name: str, option: str, value: str) -> None:
        self.record("SetServiceCustomOption", name, option, value)
        self.options[option] = value

    # --- win32service -------------------------------------------------------------------------

    def open_manager(self, *args: Any) -> str:
        self.record("OpenSCManager", *args)
        return "scm"

    def open_service(self, *args: Any) -> str:
        self.record("OpenService", *args)
        return "svc"

    def _require_installed(self) -> None:
        if not self.installed:
            raise WinError(1060, "OpenService", "The specified service does not exist.")

    # --- the modules --------------------------------------------------------------------------

    def modules(self) -> dict[str, ModuleType]:
        fake = self

        class ServiceFramework:
            """pywin32's base class, as far as the service relies on it."""

            def __init__(self, args: Any) -> None:
                fake.record("ServiceFramework", tuple(args))

            def ReportServiceStatus(
                self, serviceStatus: int, waitHint: int = 5000, win32ExitCode: int = 0
            ) -> None:
                fake.statuses.append((serviceStatus, waitHint))

            def SvcRun(self) -> None:
                self.ReportServiceStatus(RUNNING)
                self.SvcDoRun()  # type: ignore[attr-defined]
                self.ReportServiceStatus(STOP_PENDING)

        pywintypes = _module("pywintypes", error=WinError)
        win32service = _module(
            "win32service",
            error=WinError,
            SERVICE_STOPPED=STOPPED,
            SERVICE_START_PENDING=START_PENDING,
            SERVICE_STOP_PENDING=STOP_PENDING,
            SERVICE_RUNNING=RUNNING,
            SERVICE_ACCEPT_STOP=ACCEPT_STOP,
            SERVICE_ACCEPT_SHUTDOWN=ACCEPT_SHUTDOWN,
            SERVICE_AUTO_START=AUTO_START,
            SERVICE_CONFIG_FAILURE_ACTIONS=FAILURE_ACTIONS,
            SERVICE_CONFIG_FAILURE_ACTIONS_FLAG=FAILURE_ACTIONS_FLAG,
            SC_ACTION_RESTART=SC_ACTION_RESTART,
            SC_MANAGER_CONNECT=0x1,
            SERVICE_CHANGE_CONFIG=0x2,
            SERVICE_START=0x10,
            OpenSCManager=self.open_manager,
            OpenService=self.open_service,
            ChangeServiceConfig2=lambda *a: self.record("ChangeServiceConfig2", *a),
            CloseServiceHandle=lambda *a: self.record("CloseServiceHandle", *a),
        )
        win32serviceutil = _module(
            "win32serviceutil",
            ServiceFramework=ServiceFramework,
            InstallService=self.install_service,
            ChangeServiceConfig=self.change_service_config,
            RemoveService=self.remove_service,
            StartService=self.start_service,
            StopService=self.stop_service,
            QueryServiceStatus=self.query_service_status,
            GetServiceCustomOption=self.get_option,
            SetServiceCustomOption=self.set_option,
        )
        servicemanager = _module(
            "servicemanager",
            __file__="C:\\Python\\Lib\\site-packages\\win32\\servicemanager.pyd",
            EVENTLOG_ERROR_TYPE=EVENTLOG_ERROR,
            EVENTLOG_INFORMATION_TYPE=EVENTLOG_INFO,
            PYS_SERVICE_STARTED=PYS_STARTED,
            PYS_SERVICE_STOPPED=PYS_STOPPED,
            LogMsg=self.log_msg,
            LogErrorMsg=self.log_error,
            Initialize=lambda *a: self.record("Initialize", *a),
            PrepareToHostSingle=lambda *a: self.record("PrepareToHostSingle", *a),
            StartServiceCtrlDispatcher=lambda: self.record("StartServiceCtrlDispatcher"),
        )
        return {
            "pywintypes": pywintypes,
            "win32service": win32service,
            "win32serviceutil": win32serviceutil,
            "servicemanager": servicemanager,
        }

    def log_msg(self, kind: int, message_id: int, inserts: Any = None) -> None:
        self.record("LogMsg")
        self.events.append((kind, message_id, tuple(inserts)))

    def log_error(self, message: str) -> None:
        self.record("LogErrorMsg")
        self.events.append((EVENTLOG_ERROR, message))

    def error_events(self) -> list[str]:
        return [event[1] for event in self.events if event[0] == EVENTLOG_ERROR]


def _module(name: str, **attributes: Any) -> ModuleType:
    module = ModuleType(name)
    module.__dict__.update(attributes)
    return module


@dataclass
class FakeAgent:
    """lunaris_agent.config, .installer_values, .logs and .runtime, as far as the service uses
    them."""

    data_dir: Path
    exit_code: int = 0
    error: Exception | None = None
    config_error: str | None = None
    installer_error: str | None = None
    wait_for_stop: bool = False
    running: threading.Event = field(default_factory=threading.Event)
    runs: list[tuple[threading.Event, Path]] = field(default_factory=list)
    configured: list[tuple[Path, bool]] = field(default_factory=list)

    def run(
        self,
        stop_event: threading.Event,
        *,
        config_path: Path | None = None,
        self_update: bool,
        per_user: bool,
    ) -> int:
        assert config_path is not None  # the service always says which file
        assert self_update  # the installed service is the agent an MSI upgrade restarts
        assert per_user  # SYSTEM may run winget in the logged-on users' sessions
        self.runs.append((stop_event, config_path))
        self.running.set()
        if self.error is not None:
            raise self.error
        if self.wait_for_stop:
            stop_event.wait(10)
        return self.exit_code

    def take(self, path: Path) -> bool:
        if self.installer_error is not None:
            raise self.ConfigError(self.installer_error)
        return False

    def load(self, path: Path) -> Any:
        if self.config_error is not None:
            raise self.ConfigError(self.config_error)
        return SimpleNamespace(log_dir=path.parent / "logs")

    def configure(self, log_dir: Path, *, foreground: bool) -> None:
        self.configured.append((log_dir, foreground))

    class ConfigError(Exception):
        pass

    def modules(self) -> dict[str, ModuleType]:
        return {
            "config": _module(
                "lunaris_agent.config",
                ConfigError=self.ConfigError,
                default_config_path=lambda: self.data_dir / "config.json",
                load=self.load,
            ),
            "installer_values": _module("lunaris_agent.installer_values", take=self.take),
            "logs": _module("lunaris_agent.logs", configure=self.configure),
            "runtime": _module(
                "lunaris_agent.runtime",
                run=self.run,
                ExitCode=SimpleNamespace(OK=0, CONFIG=2, REJECTED=3),
            ),
        }


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeWindows:
    windows = FakeWindows()
    for name, module in windows.modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    return windows


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeAgent:
    fake_agent = FakeAgent(data_dir=tmp_path / "LunarisAgent")
    for name, module in fake_agent.modules().items():
        # Both: `from lunaris_agent import x` finds a loaded submodule as a package attribute.
        monkeypatch.setitem(sys.modules, f"lunaris_agent.{name}", module)
        monkeypatch.setattr(lunaris_agent, name, module, raising=False)
    return fake_agent


SERVICE_MODULES = ("lunaris_agent.windows.service", "lunaris_agent.windows.service_control")


@pytest.fixture
def service(fake: FakeWindows, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """lunaris_agent.windows.service imported against this test's fakes."""
    for name in SERVICE_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield importlib.import_module(SERVICE_MODULES[0])
    for name in SERVICE_MODULES:
        sys.modules.pop(name, None)


@pytest.fixture
def service_control(service: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """lunaris_agent.windows.service_control, over the service module of this test."""
    module = importlib.import_module(SERVICE_MODULES[1])
    monkeypatch.setattr(module, "POLL_INTERVAL_S", 0.0)
    return module


@pytest.fixture
def not_a_venv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "base_prefix", sys.prefix)


# --- the service class --------------------------------------------------------------------------


def test_service_identity_and_controls(service: Any, fake: FakeWindows) -> None:
    cls = service.LunarisAgentService
    assert (cls._svc_name_, cls._svc_display_name_) == (NAME, "Lunaris Agent")
    assert "winget" in cls._svc_description_
    instance = cls([NAME])
    assert fake.called("ServiceFramework") == [(((NAME,),), {})]
    assert instance.GetAcceptedControls() == ACCEPT_STOP | ACCEPT_SHUTDOWN


@pytest.mark.parametrize("control", ["SvcStop", "SvcShutdown"])
def test_stop_and_shutdown_report_stop_pending_and_set_the_event(
    service: Any, fake: FakeWindows, control: str
) -> None:
    instance = service.LunarisAgentService([NAME])
    getattr(instance, control)()
    assert fake.statuses == [(STOP_PENDING, service.STOP_WAIT_HINT_MS)]
    assert instance.stop_event.is_set()


def test_runs_the_agent_until_stopped_and_logs_start_and_stop(
    service: Any, fake: FakeWindows, agent: FakeAgent
) -> None:
    agent.wait_for_stop = True
    instance = service.LunarisAgentService([NAME])
    thread = threading.Thread(target=instance.SvcRun)  # what pywin32 calls in its own thread
    thread.start()
    assert agent.running.wait(5)
    instance.SvcStop()  # the SCM's control handler runs on another thread
    thread.join(5)
    assert not thread.is_alive(), "the service did not stop within 5 s"

    config_path = agent.data_dir / "config.json"
    assert agent.runs == [(instance.stop_event, config_path)]
    assert agent.configured == [(agent.data_dir / "logs", False)]
    assert fake.events == [
        (EVENTLOG_INFO, PYS_STARTED, (NAME, "")),
        (EVENTLOG_INFO, PYS_STOPPED, (NAME, "")),
    ]
    assert fake.statuses[0] == (RUNNING, 5000)
    assert (STOP_PENDING, service.STOP_WAIT_HINT_MS) in fake.statuses


def test_an_exception_from_the_agent_reaches_the_event_log_and_pywin32(
    service: Any, fake: FakeWindows, agent: FakeAgent
) -> None:
    agent.error = RuntimeError("winget exploded")
    instance = service.LunarisAgentService([NAME])
    # Raised on so that pywin32 reports SERVICE_STOPPED with an error code (recovery restarts).
    with pytest.raises(RuntimeError, match="winget exploded"):
        instance.SvcDoRun()
    [error] = fake.error_events()
    assert "unexpected error" in error
    assert "RuntimeError: winget exploded" in error
    assert (EVENTLOG_INFO, PYS_STOPPED, (NAME, "")) not in fake.events


def test_an_agent_that_gives_up_is_an_error_in_the_event_log(
    service: Any, fake: FakeWindows, agent: FakeAgent
) -> None:
    agent.exit_code = 3
    service.LunarisAgentService([NAME]).SvcDoRun()  # a clean stop: a restart cannot help
    [error] = fake.error_events()
    assert "gave up (exit code 3)" in error
    assert str(agent.data_dir / "logs") in error
    assert (EVENTLOG_INFO, PYS_STOPPED, (NAME, "")) not in fake.events


@pytest.mark.parametrize(
    ("config_error", "installer_error", "in_agent_log"),
    [
        # No config, so no log directory: the Event Log is the only place to say why.
        ("C:\\ProgramData\\LunarisAgent\\config.json does not exist", None, False),
        ("config.json does not exist", "the installer was given TAGS but no API_URL", False),
        # Values given to an upgrade refused; the config there names a log directory.
        (None, "the installer's TAGS is not valid: 'a b' is not a tag", True),
    ],
)
def test_a_bad_config_or_refused_installer_values_are_explained_in_the_event_log(
    service: Any,
    fake: FakeWindows,
    agent: FakeAgent,
    caplog: pytest.LogCaptureFixture,
    config_error: str | None,
    installer_error: str | None,
    in_agent_log: bool,
) -> None:
    agent.config_error = config_error
    agent.installer_error = installer_error
    service.LunarisAgentService([NAME]).SvcDoRun()
    [error] = fake.error_events()
    reason = installer_error or config_error
    assert reason is not None
    assert "exit code 2" in error
    assert reason in error
    assert agent.runs == []
    assert agent.configured == ([(agent.data_dir / "logs", False)] if in_agent_log else [])
    assert (reason in caplog.text) is in_agent_log


def test_the_config_path_recorded_at_install_is_used(
    service: Any, fake: FakeWindows, agent: FakeAgent, tmp_path: Path
) -> None:
    fake.options["ConfigPath"] = str(tmp_path / "elsewhere" / "agent.json")
    service.LunarisAgentService([NAME]).SvcDoRun()
    assert [path for _, path in agent.runs] == [tmp_path / "elsewhere" / "agent.json"]
    assert agent.configured == [(tmp_path / "elsewhere" / "logs", False)]


def test_a_broken_event_log_does_not_stop_the_agent(
    service: Any, fake: FakeWindows, agent: FakeAgent
) -> None:
    fake.failures["LogMsg"] = WinError(1502, "ReportEvent", "The event log file is full.")
    service.LunarisAgentService([NAME]).SvcDoRun()
    assert len(agent.runs) == 1


# --- hosting ------------------------------------------------------------------------------------


def test_command_line_quotes_the_interpreter_path(service: Any) -> None:
    python_exe = PureWindowsPath("C:/Program Files/LunarisAgent/python/python.exe")
    assert service.service_command_line(python_exe) == (
        '"C:\\Program Files\\LunarisAgent\\python\\python.exe" -B -m lunaris_agent service host'
    )
    assert service.SERVICE_ARGUMENTS == "-B -m lunaris_agent service host"
    with pytest.raises(ValueError, match="absolute"):
        service.service_command_line(PureWindowsPath("python.exe"))


def test_host_hands_the_class_to_the_dispatcher(service: Any, fake: FakeWindows) -> None:
    assert service.host() == 0
    servicemanager = sys.modules["servicemanager"]
    assert fake.calls == [
        ("Initialize", (NAME, servicemanager.__file__), {}),
        ("PrepareToHostSingle", (service.LunarisAgentService,), {}),
        ("StartServiceCtrlDispatcher", (), {}),
    ]


def test_host_started_by_hand_says_how_to_start_the_service(
    service: Any, fake: FakeWindows, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.failures["StartServiceCtrlDispatcher"] = WinError(
        1063, "StartServiceCtrlDispatcher", "The service process could not connect."
    )
    assert service.host() == 2
    assert "lunaris-agent service start" in capsys.readouterr().err


# --- control ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("not_a_venv")
def test_install_registers_an_automatic_localsystem_service_that_restarts(
    service_control: Any, fake: FakeWindows, capsys: pytest.CaptureFixture[str]
) -> None:
    assert service_control.control("install") == 0
    settings = {
        "startType": AUTO_START,
        "exeName": sys.executable,
        "exeArgs": "-B -m lunaris_agent service host",
        "description": service_control.DESCRIPTION,
    }
    # No class string (python.exe hosts the class) and no user name (LocalSystem).
    assert fake.called("InstallService") == [((None, NAME, "Lunaris Agent"), settings)]
    assert fake.options == {"ConfigPath": ""}
    recovery = fake.called("ChangeServiceConfig2")
    assert recovery == [
        (
            (
                "svc",
                FAILURE_ACTIONS,
                {
                    "ResetPeriod": 86400,
                    "RebootMsg": None,
                    "Command": None,
                    "Actions": (
                        (SC_ACTION_RESTART, 10_000),
                        (SC_ACTION_RESTART, 60_000),
                        (SC_ACTION_RESTART, 300_000),
                    ),
                },
            ),
            {},
        ),
        (("svc", FAILURE_ACTIONS_FLAG, True), {}),
    ]
    assert [args for args, _ in fake.called("CloseServiceHandle")] == [("svc",), ("scm",)]
    assert f'"{sys.executable}" -B -m lunaris_agent service host' in capsys.readouterr().out


@pytest.mark.usefixtures("not_a_venv")
def test_install_records_a_config_path(
    service_control: Any, fake: FakeWindows, tmp_path: Path
) -> None:
    assert service_control.control("install", config_path=tmp_path / "agent.json") == 0
    assert fake.options == {"ConfigPath": str(tmp_path / "agent.json")}


@pytest.mark.usefixtures("not_a_venv")
def test_install_over_an_existing_service_updates_it(
    service_control: Any, fake: FakeWindows, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.installed = True
    assert service_control.control("install") == 0
    [(args, settings)] = fake.called("ChangeServiceConfig")
    assert args == (None, NAME)
    assert settings["exeArgs"] == "-B -m lunaris_agent service host"
    assert settings["startType"] == AUTO_START
    assert "updated" in capsys.readouterr().out


@pytest.mark.usefixtures("not_a_venv")
def test_a_refused_recovery_policy_is_only_a_warning(
    service_control: Any, fake: FakeWindows, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.failures["ChangeServiceConfig2"] = WinError(50, "ChangeServiceConfig2", "Not supported.")
    assert service_control.control("install") == 0
    assert "warning" in capsys.readouterr().err
    assert fake.names().count("CloseServiceHandle") == 2  # handles closed all the same


def test_install_from_a_virtual_environment_is_refused(
    service_control: Any, fake: FakeWindows, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "base_prefix", "C:\\Python311")
    assert service_control.control("install") == 1
    assert fake.called("InstallService") == []


@pytest.mark.usefixtures("not_a_venv")
@pytest.mark.parametrize(
    ("action", "first_call"),
    [
        ("install", "InstallService"),
        ("remove", "StopService"),
        ("start", "StartService"),
        ("stop", "StopService"),
    ],
)
def test_access_denied_says_to_elevate(
    service_control: Any,
    fake: FakeWindows,
    capsys: pytest.CaptureFixture[str],
    action: str,
    first_call: str,
) -> None:
    fake.installed = action != "install"
    fake.state = RUNNING
    fake.failures[first_call] = ACCESS_DENIED
    assert service_control.control(action) == 1
    err = capsys.readouterr().err
    assert f"cannot {action} the {NAME} service: access denied" in err
    assert "Run as administrator" in err


@pytest.mark.parametrize("action", ["remove", "start", "stop"])
def test_a_missing_service_is_a_clear_error(
    service_control: Any, capsys: pytest.CaptureFixture[str], action: str
) -> None:
    assert service_control.control(action) == 1
    assert f"the {NAME} service is not installed" in capsys.readouterr().err


def test_remove_stops_the_service_first(service_control: Any, fake: FakeWindows) -> None:
    fake.installed, fake.state = True, RUNNING
    assert service_control.control("remove") == 0
    assert [n for n in fake.names() if n in ("StopService", "RemoveService")] == [
        "StopService",
        "RemoveService",
    ]
    assert not fake.installed


def test_remove_a_stopped_service(service_control: Any, fake: FakeWindows) -> None:
    fake.installed = True
    assert service_control.control("remove") == 0
    assert not fake.installed


def test_remove_keeps_a_service_that_will_not_stop(
    service_control: Any, fake: FakeWindows, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_control, "CONTROL_TIMEOUT_S", 0.0)
    fake.installed, fake.state, fake.after_stop = True, RUNNING, [STOP_PENDING]
    assert service_control.control("remove") == 1
    assert fake.installed


def test_start_waits_until_running(
    service_control: Any, fake: FakeWindows, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.installed, fake.after_start = True, [START_PENDING, START_PENDING, RUNNING]
    assert service_control.control("start") == 0
    assert fake.state == RUNNING
    assert "started" in capsys.readouterr().out


def test_start_reports_a_service_that_stops_at_once(
    service_control: Any, fake: FakeWindows, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.installed, fake.after_start = True, [START_PENDING, STOPPED]
    assert service_control.control("start") == 1
    assert "stopped right after it started" in capsys.readouterr().err


def test_start_when_running_already_is_fine(service_control: Any, fake: FakeWindows) -> None:
    fake.installed, fake.state = True, RUNNING
    assert service_control.control("start") == 0


def test_stop_waits_until_stopped(service_control: Any, fake: FakeWindows) -> None:
    fake.installed, fake.state, fake.after_stop = True, RUNNING, [STOP_PENDING, STOPPED]
    assert service_control.control("stop") == 0
    assert fake.state == STOPPED


def test_stop_when_not_running_is_fine(
    service_control: Any, fake: FakeWindows, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.installed = True
    assert service_control.control("stop") == 0
    assert "not running" in capsys.readouterr().out


def test_unknown_action(service_control: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert service_control.control("restart") == 2
    assert "install, remove, start, stop" in capsys.readouterr().err
