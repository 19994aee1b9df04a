"""A test that starts a process is marked ``e2e``, so ``pytest -m "not e2e"`` is the fast loop.

Not by convention: an audit hook (``sys.addaudithook``) sees every process this Python starts,
from whatever thread (``subprocess``, asyncio's subprocesses, Playwright's driver, ``os.system``,
``os.fork`` and the rest). While a test not marked ``e2e`` runs (its set-up, call and
teardown), starting one raises :class:`ProcessStartedOutsideE2E` in the code that tried, and
the test fails at its teardown even when that code caught the error. Registered by
tests/conftest.py (``pytest_plugins``); tests/test_process_guard.py shows it at work.
"""

from __future__ import annotations

import sys
from collections.abc import Generator, Sequence
from typing import Any

import pytest

MARK = "e2e"
EVENTS = frozenset(
    {
        "subprocess.Popen",
        "os.system",
        "os.posix_spawn",
        "os.spawn",
        "os.exec",
        "os.fork",
        "os.forkpty",
    }
)
"""The audit events of starting a process (see the table of audit events in Python's docs)."""


class ProcessStartedOutsideE2E(RuntimeError):
    pass


class ProcessGuard:
    """Refuses process starts while a test not marked ``e2e`` runs, and remembers them."""

    def __init__(self) -> None:
        self.item: pytest.Item | None = None
        self.started: list[str] = []

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        if event not in EVENTS:  # called for every audited event: keep this cheap
            return
        item = self.item
        if item is None or item.get_closest_marker(MARK) is not None:
            return
        started = f"{event}: {_command(event, args)}"
        self.started.append(started)
        raise ProcessStartedOutsideE2E(f"{item.nodeid} is not marked {MARK} and started {started}")

    def failure(self) -> str | None:
        """What to fail the test with, once it is over (None when it started no process)."""
        started, self.started = self.started, []
        if not started or self.item is None:
            return None
        return (
            f"{self.item.nodeid} started a process but is not marked {MARK}: mark its module "
            f"(pytestmark = pytest.mark.{MARK}), so that -m 'not {MARK}' stays fast.\n"
            + "\n".join(f"  {line}" for line in started)
        )


def _command(event: str, args: tuple[Any, ...]) -> str:
    if event in ("os.fork", "os.forkpty"):
        return "(fork)"
    # subprocess.Popen: (executable, args, cwd, env); os.system: (command,); the others:
    # (path, argv, ...).
    command = args[1] if event != "os.system" and len(args) > 1 else args[0]
    if isinstance(command, Sequence) and not isinstance(command, str | bytes):
        return " ".join(str(part) for part in command)
    return str(command)


GUARD = ProcessGuard()
_installed = False


def pytest_configure(config: pytest.Config) -> None:
    global _installed
    if not _installed:  # an audit hook cannot be removed: one per process
        sys.addaudithook(GUARD.audit)
        _installed = True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    GUARD.item, GUARD.started = item, []
    try:
        return (yield)
    finally:
        GUARD.item, GUARD.started = None, []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, object, object]:
    result = yield
    failure = GUARD.failure()
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    return result
