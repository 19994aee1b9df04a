"""Installs the agent MSI the way an administrator would and checks what a PC then does.

    infra/installer/test-wine MSI [--newer MSI]            # Linux, under Wine, fresh prefix
    python infra/installer/install_test.py --windows MSI --newer MSI   # a real Windows

Against a real ``lunaris-server`` on a free loopback port (fresh database, fresh enrollment
secret that may be used once), it shows, in order:

1. a first install without ``API_URL`` is refused and leaves nothing;
   ``msiexec /i MSI /qn API_URL=... ENROLLMENT_SECRET=... TAGS=...`` succeeds;
2. the service is RUNNING, the agent registered and heartbeats (the device is in the API and
   its last contact moves), the installer's values were taken and deleted from the registry,
   no enrollment secret is left in config.json, which holds the tags given as ``TAGS``
   (normalised), and the server shows them as the device's agent tags; on a real Windows also
   the secret kept out of the install log, the quoted service path, the recovery policy and
   the data folder's ACL (Wine lacks these; they are reported, not required, under Wine);
3. a scan ran: without winget (Wine has none) the server shows the scan error
   ``winget_not_found``; then, configured with ``lunaris-agent.cmd configure --winget-path`` to
   use a stand-in that prints recorded winget output, the server shows those updates;
4. an upgrade to a newer build (built here unless ``--newer`` is given) keeps the device id and
   token (the one-use secret could not register the device again), and, without ``TAGS``, the
   tags: in config.json and on the server after the new version's first report;
5. the server offers the next version (built here, uploaded through the API): a download
   whose bytes do not match what the server announced is refused (``hash_mismatch``) and the
   old agent keeps running; then the agent updates itself (UPDATE_AGENT: download, msiexec
   detached, the major upgrade restarts the service) and heartbeats as the new version with
   the same device id and token (install_self_update.py);
6. ``msiexec /x`` removes the service and the files, and leaves ProgramData\\LunarisAgent
   (config.json with the device id and token) as docs/agent-install.md says.

Wine workarounds live in ``install_machine.py`` and only there (``Wine``), for Debian's
Wine 8:

- a ``bcryptprimitives.dll`` shim: Wine 8 lacks ``ProcessPrng``, which pydantic-core needs;
- a pipe, never a file, as the standard output of every Wine process that may start the
  service: Wine 8's python.exe cannot start with a regular file as stdout, and services.exe
  hands its own down to the service;
- before ``msiexec /x``, the service is stopped and its process awaited: Wine's StopServices
  does not wait for the service to stop (Windows Installer does, ``Wait="yes"``), so Wine
  cannot delete the python.exe that is still running;
- WMI (``wbemprox``) disabled: CPython 3.13's ``platform.machine()`` asks WMI first, and Wine
  8's WMI calls ``propsys.VariantToString``, which it does not implement, and the process dies;
  without WMI, Python falls back to ``PROCESSOR_ARCHITECTURE``.

This module is the command line. The steps are ``install_steps.py``; the machine (Wine or
Windows) ``install_machine.py``; the server ``install_server.py``; what is read back from the
machine (service, registry, files, configuration, install logs) ``install_checks.py``; the
failure and the wait for a check to hold ``install_wait.py``.

Progress goes to stdout; the last line is one summary, PASS or FAIL.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from install_machine import Machine, Wine
from install_server import Server
from install_steps import InstallTest
from install_wait import Failed
from installer_common import ROOT


def _limit_total_time(seconds: int) -> None:
    """Turns SIGTERM (a CI job's timeout) and an overall deadline into a failure, so the
    cleanup runs: no wineserver, service or server process outlives the test."""
    if sys.platform == "win32":
        return

    def stop(signal_number: int, _frame: object) -> None:
        signal.alarm(0)
        raise Failed(
            f"gave up after {seconds} s" if signal_number == signal.SIGALRM else "terminated"
        )

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("msi", type=Path)
    parser.add_argument("--newer", type=Path, help="the build to upgrade to (default: built here)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--wine", action="store_true", help="a fresh Wine prefix")
    where.add_argument("--windows", action="store_true", help="this Windows (an admin shell)")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "build" / "install-test")
    parser.add_argument(
        "--server",
        type=Path,
        default=ROOT
        / ".venv"
        / ("Scripts/lunaris-server.exe" if os.name == "nt" else "bin/lunaris-server"),
        help="the lunaris-server executable",
    )
    parser.add_argument(
        "--timeout", type=int, default=900, help="for the whole test, in seconds (default 900)"
    )
    args = parser.parse_args(argv)
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    label = "test-wine" if args.wine else "install-test"
    machine: Machine = Wine(work) if args.wine else Machine()
    test = InstallTest(
        machine=machine,
        server=Server(work=work, executable=args.server),
        msi=args.msi.resolve(),
        newer=args.newer.resolve() if args.newer else None,
        work=work,
    )
    started = time.monotonic()
    _limit_total_time(args.timeout)
    try:
        summary = test.run()
    except Exception as error:
        if not isinstance(error, Failed):
            traceback.print_exc(file=sys.stdout)  # a bug here, or a surprise: show where
        print(f"    FAILED: {error}\n{test.diagnostics()}", flush=True)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        elapsed = time.monotonic() - started
        print(f"{label}: FAIL at {test.current_step!r} after {elapsed:.0f} s: {reason}")
        return 1
    finally:
        machine.stop()
        test.server.stop()
    print(f"{label}: PASS in {time.monotonic() - started:.0f} s: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
