"""What the agent asks of winget: the upgrade listing (a scan), the list of everything installed
(the inventory) and one package's upgrade.

Parsing is left to the pure functions of :mod:`lunaris_agent.winget.parse`,
:mod:`lunaris_agent.winget.installed` and :mod:`lunaris_agent.winget.outcome`, running winget
to :mod:`lunaris_agent.winget.run`; what is decided here is everything the text alone cannot
tell: whether winget could be found and started, whether it finished in time, and what its exit
code says.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Final

from lunaris_agent.winget.hresults import describe_hresult, format_hresult
from lunaris_agent.winget.installed import parse_list_output
from lunaris_agent.winget.outcome import InstallOutcome, classify_install_output
from lunaris_agent.winget.parse import parse_upgrade_output
from lunaris_agent.winget.results import InventoryResult, ScanFailure, ScanResult
from lunaris_agent.winget.run import (
    MAX_OUTPUT_BYTES,
    WingetRun,
    WingetRunner,
    WingetTimeoutError,
    find_winget,
    not_found_message,
    run_winget,
)
from lunaris_protocol.packages import is_targetable_id, is_targetable_version

log = logging.getLogger(__name__)

# `upgrade` without a package query lists the available upgrades instead of installing them.
# --include-unknown: also list packages whose installed version winget cannot determine.
# --source winget: the msstore source needs a per-account agreement and its REST endpoint has
# outages (0x8A150044); the agent reports the community repository only.
# --accept-source-agreements --disable-interactivity: a service has nobody to answer a prompt.
UPGRADE_SCAN_ARGS: Final = (
    "upgrade",
    "--include-unknown",
    "--source",
    "winget",
    "--accept-source-agreements",
    "--disable-interactivity",
)

# `list` without a query lists everything installed: winget packages, ARP and MSIX entries.
# No --source: with one, winget lists only the packages that source knows (no ARP entries).
# No --include-unknown: `list` shows unknown versions anyway (it takes the flag only with
# --upgrade-available). --accept-source-agreements --disable-interactivity: as for the scan.
LIST_INSTALLED_ARGS: Final = ("list", "--accept-source-agreements", "--disable-interactivity")

# In a user's session: winget's installed-package filter (InstallScope, "user or machine"):
# with "user" it opens the installed source InstalledUser (the user's ARP entries under HKCU,
# their MSIX packages, their fonts) instead of everything, so a package installed for the
# machine is not listed twice; for an upgrade it also asks for a user-scope installer.
USER_SCOPE_ARGS: Final = ("--scope", "user")

_NO_APPLICATIONS_FOUND: Final = 0x8A150014


def UPGRADE_PACKAGE_ARGS(
    package_id: str, version: str | None = None, *, user_scope: bool = False
) -> tuple[str, ...]:
    """Arguments that upgrade exactly one package, silently and without any prompt: to
    ``version`` when one is given (``--version``), else to the newest.

    Named like :data:`UPGRADE_SCAN_ARGS`, whose role it shares: the fixed command line.
    ``--include-unknown``: the scan lists packages whose installed version winget cannot
    determine, and without the flag ``upgrade --id`` refuses exactly those ("This package's
    version number cannot be determined..."); with it, winget installs the newest version.
    It changes nothing for a package whose version is known. ``user_scope``: the package in
    the profile of the user whose session winget runs in (:data:`USER_SCOPE_ARGS`).
    """
    if not is_targetable_id(package_id):
        raise ValueError(f"not a package id winget can be asked to upgrade: {package_id!r}")
    if version is not None and not is_targetable_version(version):
        raise ValueError(f"not a version winget can be asked to install: {version!r}")
    return (
        "upgrade",
        "--id",
        package_id,
        "--exact",
        *(("--version", version) if version is not None else ()),
        "--include-unknown",
        "--silent",
        "--accept-package-agreements",
        "--accept-source-agreements",
        "--disable-interactivity",
        *(USER_SCOPE_ARGS if user_scope else ()),
    )


async def scan(
    winget_path: Path | None, *, timeout_s: float = 600.0, in_session: WingetRunner | None = None
) -> ScanResult:
    """Ask winget which upgrades are available.

    A winget that fails always gives a result with ``error`` set and no updates, never an
    empty list: the server must not read "winget is broken" as "nothing to update".
    ``in_session`` runs winget in a user's session instead, for that user's packages only
    (:data:`USER_SCOPE_ARGS`); so do :func:`list_installed` and :func:`install_package`.
    """
    run = await _run(winget_path, UPGRADE_SCAN_ARGS, timeout_s=timeout_s, in_session=in_session)
    result = scan_result_from_run(run) if isinstance(run, WingetRun) else _scan_failure(run)
    if result.error is not None:
        log.warning("winget scan failed: %s %s", result.error.code, result.error.message)
    return result


async def list_installed(
    winget_path: Path | None, *, timeout_s: float = 600.0, in_session: WingetRunner | None = None
) -> InventoryResult:
    """Ask winget what is installed: the software inventory (``winget list``).

    Bounded and judged as a scan is; a winget that fails gives ``error`` and no list, never an
    empty or a shortened one: the server keeps the last list it had.
    """
    run = await _run(winget_path, LIST_INSTALLED_ARGS, timeout_s=timeout_s, in_session=in_session)
    result = inventory_result_from_run(run) if isinstance(run, WingetRun) else _list_failure(run)
    if result.error is not None:
        log.warning("winget list failed: %s %s", result.error.code, result.error.message)
    return result


async def _run(
    winget_path: Path | None,
    args: tuple[str, ...],
    *,
    timeout_s: float,
    in_session: WingetRunner | None,
) -> WingetRun | ScanFailure:
    """A finished winget run, or why there is none."""
    winget = find_winget(winget_path)
    if winget is None:
        return ScanFailure(code="winget_not_found", message=not_found_message(winget_path))
    runner, scope = (run_winget, ()) if in_session is None else (in_session, USER_SCOPE_ARGS)
    try:
        return await runner(winget, (*args, *scope), timeout_s=timeout_s)
    except WingetTimeoutError as exc:
        return ScanFailure(code="timeout", message=str(exc))
    except OSError as exc:
        return ScanFailure(code="winget_start_failed", message=f"could not start {winget}: {exc}")


def scan_result_from_run(run: WingetRun) -> ScanResult:
    """The scan result of a finished ``winget upgrade`` listing: its output and exit code."""
    if run.output_truncated:
        return _scan_failure(_too_large())
    parsed = parse_upgrade_output(run.output)
    nothing_found = parsed.error is None and not parsed.updates
    failure = _exit_failure(run, parsed.error, nothing_found=nothing_found)
    return parsed if failure is None else _scan_failure(failure)


def inventory_result_from_run(run: WingetRun) -> InventoryResult:
    """The inventory of a finished ``winget list``: its output and exit code."""
    if run.output_truncated:
        return _list_failure(_too_large())
    parsed = parse_list_output(run.output)
    nothing_found = parsed.error is None and not parsed.software
    failure = _exit_failure(run, parsed.error, nothing_found=nothing_found)
    return parsed if failure is None else _list_failure(failure)


def _exit_failure(
    run: WingetRun, parsed: ScanFailure | None, *, nothing_found: bool
) -> ScanFailure | None:
    """The failure winget's exit code tells, or None when the parse stands as it is."""
    if parsed is not None and parsed.code is not None:
        return None  # winget printed its own HRESULT line: the most precise account
    if run.exit_code == 0:
        return None
    if run.exit_code < 0 and -run.exit_code in signal.valid_signals():
        # POSIX reports a process killed by a signal as -signal (Windows codes are unsigned).
        return ScanFailure(
            code=None, message=f"winget was killed by {_signal_name(-run.exit_code)}"
        )
    # The listing exits 0 whether or not it found upgrades (ReportListResult in winget-cli's
    # WorkflowBase.cpp prints "No installed package found matching input criteria." and goes
    # on). It exits with NO_APPLICATIONS_FOUND, after the same message, only when no installed
    # package correlates with the source at all (EnsureMatchesFromSearchResult): also nothing
    # to upgrade (or, for `list`, nothing installed), not a failure.
    if run.exit_code & 0xFFFFFFFF == _NO_APPLICATIONS_FOUND and nothing_found:
        return None
    message = f"winget exited with {describe_hresult(run.exit_code)}"
    if parsed is not None:
        message += f"; its output: {parsed.message}"
    return ScanFailure(code=format_hresult(run.exit_code), message=message)


def _too_large() -> ScanFailure:
    return ScanFailure(
        code="output_too_large",
        message=f"winget printed more than {MAX_OUTPUT_BYTES // (1024 * 1024)} MB; not parsed",
    )


def _scan_failure(failure: ScanFailure) -> ScanResult:
    return ScanResult(updates=(), error=failure)


def _list_failure(failure: ScanFailure) -> InventoryResult:
    return InventoryResult(software=(), error=failure)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


async def install_package(
    winget_path: Path | None,
    package_id: str,
    *,
    version: str | None = None,
    timeout_s: float = 3600.0,
    in_session: WingetRunner | None = None,
) -> InstallOutcome:
    """Upgrade one package with ``winget upgrade --id`` (to exactly ``version`` when one is
    given) and classify what happened; ``in_session``: the package in a user's profile, run
    in that user's session."""
    if not is_targetable_id(package_id):
        return InstallOutcome.not_run(package_id, "refused: not a package id winget can target")
    if version is not None and not is_targetable_version(version):
        return InstallOutcome.not_run(
            package_id, f"refused: {version[:40]!r} is not a version winget can install"
        )
    winget = find_winget(winget_path)
    if winget is None:
        return InstallOutcome.not_run(package_id, not_found_message(winget_path))
    try:
        args = UPGRADE_PACKAGE_ARGS(package_id, version, user_scope=in_session is not None)
        runner = run_winget if in_session is None else in_session
        run = await runner(winget, args, timeout_s=timeout_s)
    except WingetTimeoutError as exc:
        return InstallOutcome.not_run(package_id, str(exc), outcome="timeout")
    except (OSError, ValueError) as exc:  # ValueError: an argument a process cannot take
        return InstallOutcome.not_run(package_id, f"could not start {winget}: {exc}")
    outcome = classify_install_output(run.output, run.exit_code, package_id, version=version)
    log.info("winget upgrade %s %s: %s", package_id, version or "", outcome.install_outcome)
    return outcome
