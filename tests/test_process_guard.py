"""tests/process_guard.py at work: a test not marked e2e cannot start a process, and fails
even when it catches the refusal; a test marked e2e can."""

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.process_guard import GUARD, ProcessGuard, ProcessStartedOutsideE2E

ROOT = Path(__file__).resolve().parents[1]
PYTHON = [sys.executable, "-c", "pass"]


class MarkedE2E:
    nodeid = "test_elsewhere.py::test_marked"

    def get_closest_marker(self, name: str) -> object | None:
        return object() if name == "e2e" else None


def test_the_guard_refuses_a_process_to_a_test_not_marked_e2e(request) -> None:
    guard = ProcessGuard()
    guard.item = request.node
    guard.audit("open", ("/etc/hostname", "r", 0))  # not a process: nothing to say
    with pytest.raises(ProcessStartedOutsideE2E, match="is not marked e2e and started"):
        guard.audit("subprocess.Popen", (sys.executable, PYTHON, None, None))
    failure = guard.failure()
    assert failure is not None
    assert request.node.nodeid in failure
    assert f"subprocess.Popen: {' '.join(PYTHON)}" in failure
    assert guard.failure() is None  # told once


def test_the_guard_lets_a_test_marked_e2e_start_processes() -> None:
    guard = ProcessGuard()
    guard.item = MarkedE2E()  # type: ignore[assignment]
    guard.audit("subprocess.Popen", (sys.executable, PYTHON, None, None))
    guard.audit("os.system", (b"true",))
    assert guard.failure() is None


async def test_this_test_is_refused_every_way_of_starting_a_process() -> None:
    """The guard is installed for the whole suite: each attempt is refused before any process
    starts (then forgotten, so that this test passes)."""
    attempts = {
        "subprocess": lambda: subprocess.run(PYTHON, check=False),
        "os.system": lambda: os.system("true"),  # noqa: S605
        "os.fork": os.fork,
    }
    for what, attempt in attempts.items():
        with pytest.raises(ProcessStartedOutsideE2E):
            attempt()
        assert GUARD.started, what
        GUARD.started.clear()
    with pytest.raises(ProcessStartedOutsideE2E):
        await asyncio.create_subprocess_exec(*PYTHON)
    assert [line.split(":")[0] for line in GUARD.started] == ["subprocess.Popen"]
    GUARD.started.clear()


@pytest.mark.e2e
def test_a_run_fails_each_test_that_started_a_process_unmarked(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nmarkers = e2e: starts a process\nasyncio_default_fixture_loop_scope = function\n"
    )
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            f"""
            import subprocess

            import pytest

            PYTHON = {PYTHON!r}


            @pytest.fixture
            def process():
                return subprocess.run(PYTHON, check=True)


            def test_starts_a_process():
                subprocess.run(PYTHON, check=True)


            def test_catches_the_refusal():
                try:
                    subprocess.run(PYTHON, check=True)
                except Exception:
                    pass


            def test_a_fixture_starts_one(process):
                pass


            def test_starts_none():
                pass


            @pytest.mark.e2e
            def test_marked_e2e(process):
                subprocess.run(PYTHON, check=True)
            """
        )
    )
    run = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-rfEp", "--rootdir", str(tmp_path)),
            *("-p", "tests.process_guard", "-p", "no:cacheprovider", "-p", "no:xdist"),
            str(tmp_path),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    summary = sorted(
        line.split(" - ")[0]
        for line in run.stdout.splitlines()
        if line.startswith(("PASSED", "FAILED", "ERROR"))
    )
    assert summary == [
        "ERROR test_inner.py::test_a_fixture_starts_one",
        "ERROR test_inner.py::test_a_fixture_starts_one",
        "ERROR test_inner.py::test_catches_the_refusal",
        "ERROR test_inner.py::test_starts_a_process",
        "FAILED test_inner.py::test_starts_a_process",
        "PASSED test_inner.py::test_catches_the_refusal",  # its call; its teardown fails
        "PASSED test_inner.py::test_marked_e2e",
        "PASSED test_inner.py::test_starts_none",
    ], run.stdout
    assert "test_inner.py::test_catches_the_refusal started a process but is not marked e2e" in (
        run.stdout
    )
    assert run.returncode == 1
