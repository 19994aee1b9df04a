"""Apps installed per user: winget run again in each logged-on user's session, its rows merged
into the machine's report, and installs where the last scan found a package.

The service runs winget as SYSTEM, which does not see what is installed into a user's profile.
So after the machine's scan (or ``winget list``), :class:`UserScans` runs ``winget upgrade
--scope user`` (``winget list --scope user``) in every active user session, through
:class:`~lunaris_agent.sessions.UserSessions` (as that user, with their token), parses it with
the same parsers and judges it as the machine's run is, tags its rows ``scope="user",
user=<account>`` and appends them. A package installed both for the machine and for a user is
two rows. A user's run that fails or times out is logged and that user's rows are left out: the
machine's rows and the other users' are sent as usual. The server then sees that user's rows
gone until a later scan lists them again, as it does for a user who logged off.

Installs: :meth:`UserScans.locate` says where the last report found a package (the machine,
users' accounts); :meth:`UserScans.install` upgrades it in that user's session with the
machine's command line plus ``--scope user``, or says ``user_not_logged_on`` when the user is
not logged on now.

The program run in a user's session is the winget the agent found for the machine (its config's
``winget_path``, or winget under Program Files), never a path from the user's profile.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypedDict, TypeVar

from lunaris_agent.sessions import OUTPUT_LIMIT, UserSession, UserSessions, same_account
from lunaris_agent.winget import upgrade
from lunaris_agent.winget.outcome import InstallOutcome
from lunaris_agent.winget.report import inventory_from_list, report_from_scan
from lunaris_agent.winget.run import WingetRun, WingetRunner, WingetTimeoutError, winget_command
from lunaris_protocol import InventoryReport, ScanError, UpdateItem, UpdateReport, list_digest
from lunaris_protocol.inventory import MAX_SOFTWARE_PER_REPORT, InstalledItem
from lunaris_protocol.limits import MAX_UPDATES_PER_REPORT

log = logging.getLogger(__name__)

Scan = Callable[[], Awaitable[UpdateReport]]
List = Callable[[], Awaitable[InventoryReport]]
Row = TypeVar("Row", UpdateItem, InstalledItem)


class _Listing(TypedDict):
    winget_path: Path | None
    timeout_s: float
    in_session: WingetRunner


def in_session(sessions: UserSessions, session: UserSession) -> WingetRunner:
    """Runs winget in ``session`` as its user, as :func:`~lunaris_agent.winget.run.run_winget`
    runs it for the machine: stdout then stderr as one text, a timeout as
    :class:`~lunaris_agent.winget.run.WingetTimeoutError`."""

    async def run(winget: Path, args: Sequence[str], *, timeout_s: float) -> WingetRun:
        started = time.monotonic()
        try:
            done = await sessions.run(session, winget_command(winget, args), timeout_s=timeout_s)
        except TimeoutError:
            raise WingetTimeoutError(timeout_s, "") from None
        return WingetRun(
            exit_code=done.returncode,
            output=(done.stdout + done.stderr).decode("utf-8", errors="replace"),
            duration_s=time.monotonic() - started,
            output_truncated=max(len(done.stdout), len(done.stderr)) >= OUTPUT_LIMIT,
        )

    return run


USER_LOCATIONS_FILE = "user-installs.json"
"""Beside config.json: where the last report listed each package (the machine, accounts)."""
Locations = dict[str, tuple[str | None, ...]]


class UserScans:
    """Adds the logged-on users' rows to the machine's scans and inventories, and installs
    into their profiles. Not thread-safe: one event loop drives it."""

    def __init__(
        self,
        sessions: UserSessions,
        winget_path: Path | None,
        *,
        scan_timeout_s: float,
        install_timeout_s: float,
        remembered: Locations | None = None,
        keep: Callable[[Locations], None] | None = None,
    ) -> None:
        """``remembered``, ``keep``: where an earlier run's last report listed each package,
        and how to keep this run's (beside config.json), so that an agent that restarted (a
        service restart, a reboot) installs a command that arrives before its first scan
        where the last one found the package."""
        self._sessions = sessions
        self._winget_path = winget_path
        self._scan_timeout_s = scan_timeout_s
        self._install_timeout_s = install_timeout_s
        self._keep = keep
        self._found: Locations = dict(remembered or {})
        """Package id -> where the last report listed it: None for the machine, accounts."""

    def scanner(self, machine: Scan) -> Scan:
        """The machine's scan, then each user's; one report."""

        async def scan() -> UpdateReport:
            report = await machine()
            if report.scan_error is not None:
                return report  # the server keeps the last list: users' rows included
            updates = await self._add_users(
                list(report.updates), "updates", MAX_UPDATES_PER_REPORT, self._user_updates
            )
            merged = UpdateReport(updates=updates)
            self._remember(merged)
            return merged

        return scan

    def inventory(self, machine: List) -> List:
        """The machine's ``winget list``, then each user's; one inventory, one digest."""

        async def list_software() -> InventoryReport:
            report = await machine()
            if report.software is None:
                return report
            software = await self._add_users(
                list(report.software), "apps", MAX_SOFTWARE_PER_REPORT, self._user_software
            )
            return InventoryReport(digest=list_digest(software), software=software)

        return list_software

    async def _user_updates(
        self, session: UserSession
    ) -> tuple[list[UpdateItem], ScanError | None]:
        mine = report_from_scan(await upgrade.scan(**self._in(session)), user=session.account)
        return list(mine.updates), mine.scan_error

    async def _user_software(
        self, session: UserSession
    ) -> tuple[list[InstalledItem], ScanError | None]:
        result = await upgrade.list_installed(**self._in(session))
        mine = inventory_from_list(result, user=session.account)
        return list(mine.software or ()), mine.scan_error

    def _in(self, session: UserSession) -> _Listing:
        """How a user's listing runs: the machine's winget, in their session."""
        runner = in_session(self._sessions, session)
        return {
            "winget_path": self._winget_path,
            "timeout_s": self._scan_timeout_s,
            "in_session": runner,
        }

    async def _add_users(
        self,
        rows: list[Row],
        what: str,
        limit: int,
        listing: Callable[[UserSession], Awaitable[tuple[list[Row], ScanError | None]]],
    ) -> list[Row]:
        """``rows`` (the machine's) with each active user's appended; a user whose listing
        failed, or whose rows do not fit in the report, is left out."""
        for session in self.active():
            mine, error = await listing(session)
            if error is not None:
                _left_out(what, session, error.code, error.message)
            elif len(rows) + len(mine) > limit:
                _left_out(what, session, "report_invalid", "too many for one report")
            else:
                log.info("%d %s for %s", len(mine), what, session.account)
                rows.extend(mine)
        return rows

    def active(self) -> list[UserSession]:
        """The active users' sessions, each account once (a user may have two: the console
        and a remote desktop); none when they cannot be listed."""
        try:
            sessions = self._sessions.active()
        except OSError as error:
            log.warning("cannot list the users' sessions, scanning the machine only: %s", error)
            return []
        unique: list[UserSession] = []
        for session in sessions:
            if not any(same_account(session.account, seen.account) for seen in unique):
                unique.append(session)
        return unique

    def locate(self, package: str) -> tuple[str | None, ...]:
        """Where the last report listed ``package``: None for the machine (first), then the
        users' accounts; empty when it did not list it."""
        return self._found.get(package, ())

    async def install(self, package: str, version: str | None, account: str) -> InstallOutcome:
        """Upgrades ``package`` in ``account``'s profile, in their session."""
        session = next((s for s in self.active() if same_account(s.account, account)), None)
        if session is None:
            message = (
                f"not installed: {account} is not logged on now; it installs when {account} is "
                "logged on and the update is run again"
            )
            return InstallOutcome.not_run(package, message, outcome="user_not_logged_on")
        return await upgrade.install_package(
            self._winget_path,
            package,
            version=version,
            timeout_s=self._install_timeout_s,
            in_session=in_session(self._sessions, session),
        )

    def _remember(self, report: UpdateReport) -> None:
        found: dict[str, list[str | None]] = {}
        for item in report.updates:  # the machine's rows come first
            where = found.setdefault(item.package_identifier, [])
            if item.user not in where:
                where.append(item.user)
        self._found = {package: tuple(where) for package, where in found.items()}
        if self._keep is not None:
            self._keep(self._found)


def locations_to_bytes(locations: Locations) -> bytes:
    return json.dumps(locations, sort_keys=True).encode()


def locations_from_bytes(data: bytes) -> Locations:
    """What :func:`locations_to_bytes` wrote; ValueError for anything else."""
    loaded = json.loads(data)
    if not isinstance(loaded, dict):
        raise ValueError("not an object")
    return {
        str(package): tuple(None if a is None else str(a) for a in where)
        for package, where in loaded.items()
        if isinstance(where, list)
    }


def _left_out(what: str, session: UserSession, code: str | None, message: str | None) -> None:
    log.warning(
        "the %s of %s (session %d) are left out of this report: %s %s",
        what,
        session.account,
        session.session_id,
        code or "",
        message or "",
    )
