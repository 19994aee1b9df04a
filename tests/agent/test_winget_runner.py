"""The winget runner against real processes: a Python stand-in (fakes/fake_winget.py) that
prints recorded winget output, exits with a chosen code, hangs, or floods its pipe."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from lunaris_agent.winget.hresults import describe_hresult, format_hresult
from lunaris_agent.winget.parse import parse_upgrade_output
from lunaris_agent.winget.results import ScanFailure, ScanResult
from lunaris_agent.winget.run import (
    MAX_OUTPUT_BYTES,
    WingetRun,
    WingetTimeoutError,
    find_winget,
    newest_app_installer_winget,
    run_winget,
)
from lunaris_agent.winget.upgrade import (
    UPGRADE_PACKAGE_ARGS,
    UPGRADE_SCAN_ARGS,
    install_package,
    scan,
    scan_result_from_run,
)
from tests.protocol.test_packages import NOT_TARGETABLE

pytestmark = pytest.mark.e2e

FAKE_WINGET = Path(__file__).parent / "fakes" / "fake_winget.py"
SAMPLES = Path(__file__).parent / "winget_samples"
BASELINE = SAMPLES / "001-upgrade-basic.txt"
POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process semantics")


def sample_text(sample: Path) -> str:
    return sample.read_bytes().decode("utf-8")


def expected_rows(sample: Path) -> list[dict[str, object]]:
    expected = json.loads(sample.with_suffix(".expected.json").read_text(encoding="utf-8"))
    rows: list[dict[str, object]] = expected["updates"]
    return rows


class FakeWinget:
    """Configures fakes/fake_winget.py for one test (through the environment it inherits)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        self._monkeypatch = monkeypatch
        self._argv_log = tmp_path / "argv.json"
        monkeypatch.setenv("FAKE_WINGET_ARGV", str(self._argv_log))
        for name in list(os.environ):
            if name.startswith(("FAKE_WINGET_OUTPUT", "FAKE_WINGET_EXIT", "FAKE_WINGET_MODE")):
                monkeypatch.delenv(name)

    def prints(self, sample: Path, *, exit_code: int = 0) -> Path:
        self._monkeypatch.setenv("FAKE_WINGET_OUTPUT", str(sample))
        self._monkeypatch.setenv("FAKE_WINGET_EXIT", str(exit_code))
        return FAKE_WINGET

    def answers(self, command: str, sample: Path, *, exit_code: int = 0) -> Path:
        """``winget <command>`` prints ``sample`` and exits with ``exit_code``; other
        commands print what :meth:`prints` set (nothing by default)."""
        self._monkeypatch.setenv(f"FAKE_WINGET_OUTPUT_{command.upper()}", str(sample))
        self._monkeypatch.setenv(f"FAKE_WINGET_EXIT_{command.upper()}", str(exit_code))
        return FAKE_WINGET

    def hangs(self) -> Path:
        self._monkeypatch.setenv("FAKE_WINGET_MODE", "hang")
        return FAKE_WINGET

    def floods(self, filler_bytes: int, *, then: Path) -> Path:
        self._monkeypatch.setenv("FAKE_WINGET_MODE", "flood")
        self._monkeypatch.setenv("FAKE_WINGET_FLOOD_BYTES", str(filler_bytes))
        return self.prints(then)

    def received_args(self) -> list[str] | None:
        if not self._argv_log.exists():
            return None
        args: list[str] = json.loads(self._argv_log.read_text(encoding="utf-8"))
        return args


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeWinget:
    return FakeWinget(monkeypatch, tmp_path)


async def wait_until_gone(pid: int, *, zombie_is_gone: bool) -> bool:
    """Has the process ended (and, unless ``zombie_is_gone``, been reaped)?"""
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if zombie_is_gone and _is_zombie(pid):
            return True
        await asyncio.sleep(0.05)
    return False


def _is_zombie(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line.rsplit(")", 1)[1].split()[0] == "Z"


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


async def test_run_captures_output_bytes_exactly_and_the_exit_code(
    fake: FakeWinget, tmp_path: Path
) -> None:
    # winget up to v1.28 draws its spinner with bare "\r" even into a pipe, then clears it
    # with 120 spaces: every "\r" must reach the parser as it was written.
    spinner = b"\r   -\r   \\\r" + b" " * 120 + b"\r"
    recorded = spinner + BASELINE.read_bytes().replace(b"\n", b"\r\n")
    output = tmp_path / "spinner-crlf.txt"
    output.write_bytes(recorded)
    run = await run_winget(fake.prints(output, exit_code=7), ["upgrade"], timeout_s=30)
    assert run.output == recorded.decode("utf-8")
    assert run.exit_code == 7
    assert run.output_truncated is False
    assert 0 < run.duration_s < 30
    assert fake.received_args() == ["upgrade"]
    parsed = parse_upgrade_output(run.output)
    assert [row.to_json_dict() for row in parsed.updates] == expected_rows(BASELINE)


async def test_undecodable_bytes_are_replaced_not_fatal(fake: FakeWinget, tmp_path: Path) -> None:
    output = tmp_path / "latin1.txt"
    output.write_bytes("Caf\xe9 \u2026\n".encode("latin-1", errors="replace"))
    run = await run_winget(fake.prints(output), [], timeout_s=30)
    assert run.output == "Caf\ufffd ?\n"


@POSIX_ONLY
async def test_timeout_kills_the_process_and_its_children(fake: FakeWinget) -> None:
    with pytest.raises(WingetTimeoutError) as raised:
        await run_winget(fake.hangs(), UPGRADE_SCAN_ARGS, timeout_s=1.5)
    assert str(raised.value) == "winget did not finish within 1.5 s"
    words = raised.value.output.split()
    assert words[0] == "pids", raised.value.output
    winget_pid, child_pid = int(words[1]), int(words[2])
    # The stand-in itself is killed and reaped: no zombie of ours is left.
    assert await wait_until_gone(winget_pid, zombie_is_gone=False)
    # Its child was killed with it; once orphaned it is init's to reap.
    assert await wait_until_gone(child_pid, zombie_is_gone=True)


async def test_output_is_bounded_and_keeps_its_end(fake: FakeWinget) -> None:
    tail = SAMPLES / "028-upgrade-include-unknown-none-found.txt"
    run = await run_winget(fake.floods(3 * MAX_OUTPUT_BYTES, then=tail), [], timeout_s=60)
    assert run.output_truncated is True
    assert len(run.output.encode()) < MAX_OUTPUT_BYTES + 512 * 1024
    assert run.output.startswith("x" * 99 + "\n")
    assert run.output.endswith(sample_text(tail))
    assert scan_result_from_run(run).error == ScanFailure(
        code="output_too_large", message="winget printed more than 4 MB; not parsed"
    )


async def test_a_missing_file_cannot_be_started(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await run_winget(tmp_path / "absent.exe", [], timeout_s=30)


# --------------------------------------------------------------------------------------------
# Scanning
# --------------------------------------------------------------------------------------------


async def test_scan_of_a_successful_listing_gives_its_rows(fake: FakeWinget) -> None:
    result = await scan(fake.prints(BASELINE))
    assert fake.received_args() == list(UPGRADE_SCAN_ARGS)
    assert result.error is None
    assert [row.to_json_dict() for row in result.updates] == expected_rows(BASELINE)
    assert result == parse_upgrade_output(sample_text(BASELINE))


async def test_scan_with_nothing_to_upgrade_is_an_empty_list(fake: FakeWinget) -> None:
    result = await scan(fake.prints(SAMPLES / "028-upgrade-include-unknown-none-found.txt"))
    assert result == ScanResult(updates=(), error=None)


async def test_scan_exiting_non_zero_is_an_error_without_rows(fake: FakeWinget) -> None:
    result = await scan(fake.prints(BASELINE, exit_code=3))
    assert result == ScanResult(
        updates=(), error=ScanFailure(code="0x00000003", message="winget exited with 0x00000003")
    )


async def test_scan_keeps_the_hresult_winget_printed(fake: FakeWinget) -> None:
    sample = SAMPLES / "039-source-agreement-shown-then-0x8a15000f.txt"
    result = await scan(fake.prints(sample, exit_code=1))
    assert result == parse_upgrade_output(sample_text(sample))
    assert result.error is not None
    assert result.error.code == "0x8A15000F"
    assert result.updates == ()


async def test_scan_that_times_out_is_a_timeout_error(fake: FakeWinget) -> None:
    result = await scan(fake.hangs(), timeout_s=1)
    assert result == ScanResult(
        updates=(), error=ScanFailure(code="timeout", message="winget did not finish within 1 s")
    )


async def test_scan_without_winget_says_so(tmp_path: Path) -> None:
    result = await scan(tmp_path / "winget.exe")
    assert result.updates == ()
    assert result.error is not None
    assert result.error.code == "winget_not_found"
    assert str(tmp_path / "winget.exe") in result.error.message


@POSIX_ONLY
async def test_scan_that_cannot_start_winget_says_so(tmp_path: Path) -> None:
    not_executable = tmp_path / "winget"
    not_executable.write_text("not a program\n")
    result = await scan(not_executable)
    assert result.updates == ()
    assert result.error is not None
    assert result.error.code == "winget_start_failed"
    assert result.error.message.startswith(f"could not start {not_executable}: ")


@POSIX_ONLY
async def test_a_stand_in_that_is_not_python_is_executed_directly(tmp_path: Path) -> None:
    stand_in = tmp_path / "winget"
    stand_in.write_text("#!/bin/sh\necho 'No installed package found matching input criteria.'\n")
    stand_in.chmod(stand_in.stat().st_mode | stat.S_IXUSR)
    assert await scan(stand_in) == ScanResult(updates=(), error=None)


def run_of(sample: Path | str, exit_code: int) -> WingetRun:
    output = sample_text(sample) if isinstance(sample, Path) else sample
    return WingetRun(exit_code=exit_code, output=output, duration_s=1.0)


@pytest.mark.parametrize("exit_code", [-1978335212, 2316632084])  # as PowerShell, as Python
def test_no_applications_found_after_nothing_to_upgrade_is_not_an_error(exit_code: int) -> None:
    # winget exits with NO_APPLICATIONS_FOUND when no installed package correlates with the
    # source at all; the message is the usual "nothing to upgrade" one.
    run = run_of(SAMPLES / "028-upgrade-include-unknown-none-found.txt", exit_code)
    assert scan_result_from_run(run) == ScanResult(updates=(), error=None)


@pytest.mark.parametrize("exit_code", [-1978335217, 2316632079])
def test_exit_code_is_reported_as_an_hresult_with_its_name(exit_code: int) -> None:
    # Empty output: winget is broken (VCLibs missing under SYSTEM); the exit code says more.
    result = scan_result_from_run(run_of("", exit_code))
    assert result.updates == ()
    assert result.error == ScanFailure(
        code="0x8A15000F",
        message="winget exited with 0x8A15000F (APPINSTALLER_CLI_ERROR_SOURCE_DATA_MISSING: "
        "Data required by the source is missing (fix: winget source reset --force)); "
        "its output: empty output",
    )


def test_a_failing_exit_code_overrides_a_table() -> None:
    run = run_of(BASELINE, -1978335230)
    result = scan_result_from_run(run)
    assert result.updates == ()
    assert result.error is not None
    assert result.error.code == "0x8A150002"
    assert "INVALID_CL_ARGUMENTS" in result.error.message
    assert "--disable-interactivity" in result.error.message


def test_exit_code_zero_keeps_the_parse_even_when_it_refuses() -> None:
    run = run_of(SAMPLES / "022-list-rows-only-arp-ids-truncated.txt", 0)
    assert scan_result_from_run(run) == ScanResult(
        updates=(), error=ScanFailure(code=None, message="unparseable")
    )


@POSIX_ONLY
def test_a_killed_winget_is_named_by_its_signal() -> None:
    assert scan_result_from_run(run_of(BASELINE, -9)) == ScanResult(
        updates=(), error=ScanFailure(code=None, message="winget was killed by SIGKILL")
    )


def test_hresult_text() -> None:
    assert format_hresult(-1978335189) == format_hresult(2316632107) == "0x8A15002B"
    assert format_hresult(1618) == "0x00000652"
    assert describe_hresult(0x8A150102) == (
        "0x8A150102 (APPINSTALLER_CLI_ERROR_INSTALL_INSTALL_IN_PROGRESS: "
        "Another installation is already in progress. Try again later.)"
    )
    assert describe_hresult(0x80070005) == "0x80070005"


# --------------------------------------------------------------------------------------------
# Finding winget
# --------------------------------------------------------------------------------------------


def no_path(_: str) -> str | None:
    return None


def make_app_dirs(program_files: Path, *names: str, with_exe: bool = True) -> None:
    for name in names:
        folder = program_files / "WindowsApps" / name
        folder.mkdir(parents=True)
        if with_exe:
            (folder / "winget.exe").write_bytes(b"MZ")


@pytest.fixture
def program_files(tmp_path: Path) -> Path:
    root = tmp_path / "Program Files"
    make_app_dirs(
        root,
        "Microsoft.DesktopAppInstaller_1.9.25200.0_x64__8wekyb3d8bbwe",
        "Microsoft.DesktopAppInstaller_1.21.3482.0_x64__8wekyb3d8bbwe",
        "Microsoft.DesktopAppInstaller_1.22.10582.0_arm64__8wekyb3d8bbwe",
        "Microsoft.DesktopAppInstaller_1.22.10582.0_x86__8wekyb3d8bbwe",
        "Microsoft.DesktopAppInstaller_1.x.0.0_x64__8wekyb3d8bbwe",
        "Microsoft.DesktopAppInstaller_9.0.0.0_x64__8wekyb3d8bbwf",  # another publisher
        "Microsoft.DesktopAppInstaller_9.0.0.0_x64__8wekyb3d8bbwe.old",
        "Microsoft.WindowsTerminal_9.0.0.0_x64__8wekyb3d8bbwe",
    )
    make_app_dirs(
        root,
        "Microsoft.DesktopAppInstaller_1.99.0.0_x64__8wekyb3d8bbwe",  # winget.exe removed
        "Microsoft.DesktopAppInstaller_1.23.0.0_neutral_split.scale-100_8wekyb3d8bbwe",
        with_exe=False,
    )
    return root


def test_the_newest_x64_app_installer_is_chosen_numerically(program_files: Path) -> None:
    found = find_winget(program_files=program_files, path_lookup=no_path, architecture="x64")
    newest = "Microsoft.DesktopAppInstaller_1.21.3482.0_x64__8wekyb3d8bbwe"  # not 1.9 (string)
    assert found == program_files / "WindowsApps" / newest / "winget.exe"


def test_the_machine_architecture_selects_the_folder(program_files: Path) -> None:
    found = newest_app_installer_winget(program_files / "WindowsApps", "arm64")
    arm64 = "Microsoft.DesktopAppInstaller_1.22.10582.0_arm64__8wekyb3d8bbwe"
    assert found == program_files / "WindowsApps" / arm64 / "winget.exe"


def test_no_windows_apps_folder_is_not_found(tmp_path: Path) -> None:
    assert find_winget(program_files=tmp_path, path_lookup=no_path) is None


def test_a_windows_apps_that_is_no_folder_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "WindowsApps").write_text("")
    assert find_winget(program_files=tmp_path, path_lookup=no_path) is None


@POSIX_ONLY
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads anything")
def test_an_unreadable_windows_apps_folder_is_not_found(program_files: Path) -> None:
    windows_apps = program_files / "WindowsApps"
    windows_apps.chmod(0)
    try:
        assert find_winget(program_files=program_files, path_lookup=no_path) is None
    finally:
        windows_apps.chmod(stat.S_IRWXU)


def test_winget_on_path_comes_before_windows_apps(program_files: Path) -> None:
    on_path = str(program_files / "winget.exe")
    found = find_winget(program_files=program_files, path_lookup=lambda name: on_path)
    assert found == Path(on_path)


def test_a_configured_winget_wins_and_is_never_second_guessed(program_files: Path) -> None:
    def lookup(name: str) -> str:
        return "/usr/bin/winget"

    assert find_winget(FAKE_WINGET, program_files=program_files, path_lookup=lookup) == FAKE_WINGET
    missing = program_files / "missing.exe"
    assert find_winget(missing, program_files=program_files, path_lookup=lookup) is None


# --------------------------------------------------------------------------------------------
# Installing
# --------------------------------------------------------------------------------------------


async def test_install_package_success(fake: FakeWinget) -> None:
    winget = fake.prints(SAMPLES / "033-upgrade-id-success-progress.txt")
    outcome = await install_package(winget, "OpenWhisperSystems.Signal", timeout_s=30)
    assert fake.received_args() == list(UPGRADE_PACKAGE_ARGS("OpenWhisperSystems.Signal"))
    assert outcome.to_json_dict() == {
        "install_outcome": "success",
        "package_id": "OpenWhisperSystems.Signal",
        "installer_exit_code": None,
        "hresult": None,
        "message": None,
        "packages": [],
    }


async def test_install_package_asks_winget_for_exactly_the_version_given(fake: FakeWinget) -> None:
    winget = fake.prints(SAMPLES / "033-upgrade-id-success-progress.txt")
    outcome = await install_package(winget, "OpenWhisperSystems.Signal", version="7.1.0")
    args = fake.received_args()
    assert args is not None
    assert args == list(UPGRADE_PACKAGE_ARGS("OpenWhisperSystems.Signal", "7.1.0"))
    assert args[args.index("--version") + 1] == "7.1.0"
    assert args[args.index("--id") + 1] == "OpenWhisperSystems.Signal"
    assert outcome.install_outcome == "success"


async def test_a_version_no_longer_in_the_source_is_version_unavailable(
    fake: FakeWinget, tmp_path: Path
) -> None:
    # What winget prints and exits with (NO_MANIFEST_FOUND) for --version of a version the
    # source no longer has (GetManifestResultVersionNotFound, WorkflowBase.cpp).
    output = tmp_path / "no-version.txt"
    output.write_text("No version found matching: 7.0.0\n", encoding="utf-8")
    winget = fake.prints(output, exit_code=0x8A150017)
    outcome = await install_package(winget, "OpenWhisperSystems.Signal", version="7.0.0")
    assert outcome.install_outcome == "version_unavailable"
    assert outcome.message == "No version found matching: 7.0.0"
    assert not outcome.succeeded


@pytest.mark.parametrize("version", ["", "1.0 beta", "-1", "< 2.0", "Unknown", "1.2\x00", "9.…"])
async def test_a_version_winget_cannot_take_is_refused_without_running_winget(
    fake: FakeWinget, version: str
) -> None:
    winget = fake.prints(SAMPLES / "033-upgrade-id-success-progress.txt")
    outcome = await install_package(winget, "Vendor.App", version=version, timeout_s=30)
    assert outcome.install_outcome == "error"
    assert fake.received_args() is None
    with pytest.raises(ValueError, match="not a version"):
        UPGRADE_PACKAGE_ARGS("Vendor.App", version)


async def test_install_package_failure_carries_the_exit_code(fake: FakeWinget) -> None:
    winget = fake.prints(SAMPLES / "051-upgrade-one-row-then-id-failed-2008-b-upgrade.txt")
    outcome = await install_package(winget, "Microsoft.WindowsADK", timeout_s=30)
    assert outcome.install_outcome == "installer_failed"
    assert outcome.installer_exit_code == 2008
    assert outcome.hresult is None  # no exit code (0) and none printed


async def test_install_package_refuses_a_truncated_id_without_running_winget(
    fake: FakeWinget,
) -> None:
    winget = fake.prints(SAMPLES / "033-upgrade-id-success-progress.txt")
    outcome = await install_package(winget, "Microsoft.VisualStudio.2022.Co…", timeout_s=30)
    assert outcome.install_outcome == "error"
    assert outcome.package_id == "Microsoft.VisualStudio.2022.Co…"
    assert fake.received_args() is None


async def test_install_package_that_times_out_says_so(fake: FakeWinget) -> None:
    outcome = await install_package(fake.hangs(), "Vendor.App", timeout_s=1)
    assert outcome.install_outcome == "timeout"
    assert outcome.message == "winget did not finish within 1 s"


async def test_install_package_without_winget(tmp_path: Path) -> None:
    outcome = await install_package(tmp_path / "winget.exe", "Vendor.App", timeout_s=30)
    assert outcome.install_outcome == "error"
    assert outcome.message is not None
    assert "winget_path" in outcome.message


@pytest.mark.parametrize("package_id", NOT_TARGETABLE)
def test_ids_winget_cannot_target_are_refused(package_id: str) -> None:
    with pytest.raises(ValueError, match="not a package id"):
        UPGRADE_PACKAGE_ARGS(package_id)


def test_upgrade_package_args() -> None:
    assert UPGRADE_PACKAGE_ARGS("9NBLGGH4NNS1")  # a Microsoft Store id has no dot
    assert UPGRADE_PACKAGE_ARGS("Git.Git") == (
        "upgrade",
        "--id",
        "Git.Git",
        "--exact",
        "--include-unknown",  # else winget refuses an id whose installed version is Unknown
        "--silent",
        "--accept-package-agreements",
        "--accept-source-agreements",
        "--disable-interactivity",
    )
