"""``scripts/dev.py`` on a machine without the system packages the suite uses: it installs
them with apt-get when run as root, and otherwise stops before the tests with one line
saying what to install. PATH points at a folder of our own, so nothing real is installed."""

import os
import runpy
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

DEV = Path(__file__).resolve().parents[2] / "scripts" / "dev.py"
MISSING_CHROMIUM = (
    "missing: chromium, for the browser tests (Debian/Ubuntu: sudo apt-get install chromium)"
)
as_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="dev.py installs only as root"
)


def dev(path: Path, *args: str, install: bool = False) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "LUNARIS_NO_SYSTEM_INSTALL"}
    env["PATH"] = str(path)
    if not install:
        env["LUNARIS_NO_SYSTEM_INSTALL"] = "1"
    return subprocess.run(
        [sys.executable, str(DEV), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def executable(path: Path, text: str = "#!/bin/sh\n") -> None:
    path.write_text(text)
    path.chmod(0o755)


def test_the_test_command_stops_before_the_tests_saying_what_to_install(tmp_path):
    result = dev(tmp_path, "test")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [MISSING_CHROMIUM]
    assert result.stdout == ""  # neither set-up nor pytest ran


def test_packages_whose_tests_skip_only_get_a_note(tmp_path):
    executable(tmp_path / "chromium")
    result = dev(tmp_path, "system")
    assert result.returncode == 0, result.stderr
    [note] = result.stderr.splitlines()
    assert note.startswith("note: the agent MSI tests and the compose file check will skip")
    assert note.endswith(
        "(Debian/Ubuntu: sudo apt-get install wixl msitools osslsigncode docker-compose)"
    )


def test_ci_needs_every_package(tmp_path):
    executable(tmp_path / "chromium")
    result = dev(tmp_path, "system", "--ci")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("missing: wixl msitools osslsigncode docker-compose wine ")
    assert "gcc-mingw-w64-x86-64-win32" in line


def fake_apt(folder: Path, *, known: bool) -> Path:
    """apt-get and apt-cache stand-ins: ``install`` puts a program named after each package
    into ``folder``; every call is written to the returned log."""
    calls = folder / "apt-calls"
    candidate = "1.0" if known else "(none)"
    executable(
        folder / "apt-cache",
        f"#!{sys.executable}\nprint('  Installed: (none)\\n  Candidate: {candidate}')\n",
    )
    executable(
        folder / "apt-get",
        f"#!{sys.executable}\n"
        + textwrap.dedent(f"""
            import os, sys
            from pathlib import Path
            args = [a for a in sys.argv[1:] if a != "-qq"]
            with open({str(calls)!r}, "a") as log:
                log.write(" ".join(args) + "\\n")
            assert os.environ["DEBIAN_FRONTEND"] == "noninteractive"
            if args[0] == "install":
                for package in args[1:]:
                    if not package.startswith("-"):
                        path = Path({str(folder)!r}) / package
                        path.write_text("")
                        path.chmod(0o755)
            """),
    )
    return calls


@as_root
def test_as_root_it_installs_what_is_missing_with_apt(tmp_path):
    calls = fake_apt(tmp_path, known=True)
    result = dev(tmp_path, "system", install=True)
    assert result.returncode == 0, result.stderr
    packages = "chromium wixl msitools osslsigncode docker-compose"
    assert calls.read_text().splitlines() == [
        f"install -y --no-install-recommends --reinstall {packages}"
    ]
    assert (tmp_path / "chromium").exists()
    # msitools' programs are msibuild and msiinfo, which the stand-in does not make.
    assert "missing msitools (" in result.stderr


@as_root
def test_it_updates_the_package_lists_first_when_they_lack_a_package(tmp_path):
    calls = fake_apt(tmp_path, known=False)
    assert dev(tmp_path, "system", install=True).returncode == 0
    assert [call.split()[0] for call in calls.read_text().splitlines()] == ["update", "install"]


@as_root
def test_when_the_install_fails_it_says_what_to_install(tmp_path):
    executable(tmp_path / "apt-cache", "#!/bin/sh\necho '  Candidate: 1.0'\n")
    executable(tmp_path / "apt-get", "#!/bin/sh\necho 'E: no network' >&2\nexit 100\n")
    result = dev(tmp_path, "test", install=True)
    assert result.returncode == 1
    assert "E: no network" in result.stderr
    assert result.stderr.splitlines()[-1] == MISSING_CHROMIUM


def test_the_tests_run_in_parallel_unless_the_caller_chooses(monkeypatch):
    script = runpy.run_path(str(DEV), run_name="dev_script")
    parallel = script["_parallel"]
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert parallel(["-q"]) == ["-n", "2", "--dist", "worksteal", "-q"]
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert parallel([])[:2] == ["-n", str(script["MAX_TEST_WORKERS"])]
    for chosen in (["-n", "0"], ["-n0"], ["--numprocesses=3"], ["-p", "no:xdist"]):
        assert parallel(["-q", *chosen]) == ["-q", *chosen]
