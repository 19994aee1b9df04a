#!/usr/bin/env python3
"""Set up the development environment and run Lunaris, from nothing but Python 3.11+.

    python3 scripts/dev.py demo    # set up, then serve with demo data on the embedded database
    python3 scripts/dev.py test    # set up, then run the whole test suite
    python3 scripts/dev.py setup   # only set up: .venv with every package, from uv.lock
    python3 scripts/dev.py system  # only the system packages the tests use (--ci: and CI's)

Set-up installs a pinned uv into .tools/ (with this Python's pip), then has uv build .venv
from the lock file with this same interpreter; it never downloads a Python. Arguments after
the command go to `lunaris-server demo` or to pytest; `test` runs the tests in parallel, one
worker a core (at most MAX_TEST_WORKERS), unless they choose (`-n 0`: one process).

`test` first makes sure of the Debian packages the suite uses (SYSTEM_PACKAGES): run as root
where apt-get exists, it installs those missing; elsewhere, or with LUNARIS_NO_SYSTEM_INSTALL=1,
it stops before set-up with one line saying what to install when one the suite cannot run
without is missing, and notes the others (whose tests then skip).

`demo` offers an agent MSI built from this tree on its Settings -> Agents page: it builds one
into the demo server's downloads folder when the agent's sources (or the build's) changed
since the last, with wixl, msitools and osslsigncode, installed the same way when they are
missing. Without them it says so in one line and serves without an MSI.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import venv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

UV_VERSION = "0.13.9"
MIN_PYTHON = (3, 11)
ROOT = Path(__file__).resolve().parent.parent
BIN = "Scripts" if os.name == "nt" else "bin"
EXE = ".exe" if os.name == "nt" else ""
PYTEST_NO_TESTS = 5
MAX_TEST_WORKERS = 4
"""`test` runs pytest with one pytest-xdist worker per core, up to this many: each test may
start server, agent and browser processes of its own, and the database shares the machine."""
NO_INSTALL_VARIABLE = "LUNARIS_NO_SYSTEM_INSTALL"
MSI_TESTS = "the agent MSI tests"
MSI_INPUTS = ("pyproject.toml", "uv.lock", "packages/agent", "packages/protocol", "infra/installer")
"""What the agent MSI is built from: a change to any of it means a new MSI for the demo."""
MSI_STAMP = ".demo-msi"
"""In the downloads folder: the inputs' digest and the name of the MSI built from them."""
GENERATED = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})


@dataclass(frozen=True)
class SystemPackage:
    package: str
    """The Debian (and Ubuntu) package."""
    commands: tuple[str, ...]
    """Installed when each of these is found on PATH (or in one of ``also_in``)."""
    used_by: str
    need: str
    """``required``: the suite errors without it; ``skips``: the tests using it skip without
    it; ``ci``: only .ci/run uses it (the MSI under Wine, the compose file)."""
    also_in: tuple[str, ...] = ()


SYSTEM_PACKAGES = (
    SystemPackage("chromium", ("chromium",), "the browser tests", "required"),
    SystemPackage("wixl", ("wixl",), MSI_TESTS, "skips"),
    SystemPackage("msitools", ("msibuild", "msiinfo"), MSI_TESTS, "skips"),
    SystemPackage("osslsigncode", ("osslsigncode",), MSI_TESTS, "skips"),
    SystemPackage("docker-compose", ("docker-compose",), "the compose file check", "skips"),
    SystemPackage("wine", ("wine",), "the MSI under Wine", "ci"),
    SystemPackage("wine64", ("wine64",), "the MSI under Wine", "ci", ("/usr/lib/wine",)),
    SystemPackage(
        "gcc-mingw-w64-x86-64-win32", ("x86_64-w64-mingw32-gcc",), "the MSI under Wine", "ci"
    ),
)


def _say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def _run(command: list[str | Path], **kwargs: object) -> None:
    subprocess.run([str(part) for part in command], check=True, **kwargs)  # type: ignore[call-overload]


def _uv() -> Path:
    tools = ROOT / ".tools"
    uv = tools / BIN / f"uv{EXE}"
    if uv.exists():
        version = subprocess.run([uv, "--version"], capture_output=True, text=True, check=False)
        if version.stdout.split()[1:2] == [UV_VERSION]:
            return uv
    _say(f"installing uv {UV_VERSION} into .tools/")
    venv.EnvBuilder(with_pip=True, clear=True).create(tools)
    _run(
        [tools / BIN / f"python{EXE}", "-m", "pip", "install", "--quiet", f"uv=={UV_VERSION}"],
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    return uv


def setup() -> Path:
    """Creates or updates .venv from uv.lock; returns its bin directory."""
    if sys.version_info < MIN_PYTHON:
        sys.exit(f"Lunaris needs Python {'.'.join(map(str, MIN_PYTHON))}+, this is {sys.version}")
    uv = _uv()
    _say("syncing .venv from uv.lock")
    env = {
        **os.environ,
        "UV_PYTHON_DOWNLOADS": "never",  # use this interpreter, never fetch one
        "UV_PROJECT_ENVIRONMENT": str(ROOT / ".venv"),
    }
    _run(
        [
            uv,
            "sync",
            "--all-packages",
            "--locked",
            "--compile-bytecode",
            "--quiet",
            "--python",
            sys.executable,
        ],
        cwd=ROOT,
        env=env,
    )
    return ROOT / ".venv" / BIN


def _installed(package: SystemPackage) -> bool:
    elsewhere = os.pathsep.join(package.also_in)
    return all(
        shutil.which(command) or (elsewhere and shutil.which(command, path=elsewhere))
        for command in package.commands
    )


def _can_install() -> bool:
    if os.environ.get(NO_INSTALL_VARIABLE, "") not in ("", "0"):
        return False
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get") is not None


def _apt_install(packages: list[str]) -> None:
    """apt-get install, after apt-get update when the package lists do not know a package
    or an install from them fails (stale lists). Says nothing unless it fails."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["apt-get", "-qq", *args], env=env, capture_output=True, text=True, check=False
        )

    def known(package: str) -> bool:
        policy = subprocess.run(
            ["apt-cache", "policy", package], capture_output=True, text=True, check=False
        )
        return "Candidate:" in policy.stdout and "Candidate: (none)" not in policy.stdout

    # --reinstall: a package can be installed with its program gone (deleted, moved away).
    install = ("install", "-y", "--no-install-recommends", "--reinstall", *packages)
    updated = not all(map(known, packages)) and apt("update").returncode == 0
    result = apt(*install)
    if result.returncode != 0 and not updated and apt("update").returncode == 0:
        result = apt(*install)
    if result.returncode != 0:
        print(result.stdout + result.stderr, file=sys.stderr, end="")


def system_packages(*, ci: bool) -> bool:
    """Makes sure of the system packages the suite (and with ``ci``, .ci/run) uses: installs
    the missing ones when it can. False, having said in one line what to install, when one
    that is needed is still missing; missing ones whose tests skip get a one-line note."""
    missing = _ensure([p for p in SYSTEM_PACKAGES if ci or p.need != "ci"])
    needed = [p for p in missing if ci or p.need == "required"]
    if needed:
        print(f"missing: {_names(needed)}, for {_uses(needed)} {_advice(needed)}", file=sys.stderr)
        return False
    if missing:
        print(
            f"note: {_uses(missing)} will skip, missing {_names(missing)} {_advice(missing)}",
            file=sys.stderr,
        )
    return True


def _ensure(packages: list[SystemPackage], purpose: str | None = None) -> list[SystemPackage]:
    """Installs those of ``packages`` that are missing, when it can; returns those still
    missing."""
    missing = [p for p in packages if not _installed(p)]
    if missing and _can_install():
        _say(f"installing {_names(missing)} with apt-get, for {purpose or _uses(missing)}")
        _apt_install([p.package for p in missing])
        missing = [p for p in missing if not _installed(p)]
    return missing


def demo_downloads_dir() -> Path:
    """Where ``lunaris-server demo``, started in ROOT, looks for MSIs to offer: its settings'
    LUNARIS_AGENT_DOWNLOADS_DIR, by default ``downloads`` in LUNARIS_DATA_DIR (``data``)."""
    configured = os.environ.get("LUNARIS_AGENT_DOWNLOADS_DIR")
    data_dir = Path(os.environ.get("LUNARIS_DATA_DIR") or "data")
    folder = Path(configured) if configured else data_dir / "downloads"
    return folder if folder.is_absolute() else ROOT / folder


def msi_inputs_digest(root: Path = ROOT) -> str:
    """SHA-256 over the paths and contents of the files the MSI is built from."""
    digest = hashlib.sha256()
    for top in MSI_INPUTS:
        path = root / top
        files = [path] if path.is_file() else sorted(path.rglob("*"))
        for file in files:
            generated = file.suffix == ".pyc" or any(
                part in GENERATED or part.endswith(".egg-info") for part in file.parts
            )
            if file.is_file() and not generated:
                digest.update(f"{file.relative_to(root).as_posix()}\0".encode())
                digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def demo_msi(downloads: Path, work: Path) -> Literal["current", "built", "no tools", "failed"]:
    """An MSI of this tree's agent in ``downloads``, built (in ``work``) unless the one built
    last is from the same sources; one line says what happened."""
    stamp = downloads / MSI_STAMP
    digest = msi_inputs_digest()
    recorded = stamp.read_text(encoding="ascii").split() if stamp.is_file() else []
    if len(recorded) == 2 and recorded[0] == digest and (downloads / recorded[1]).is_file():
        _say(f"agent MSI: {recorded[1]}, built from these sources")
        return "current"
    packages = [p for p in SYSTEM_PACKAGES if p.used_by == MSI_TESTS]
    missing = _ensure(packages, "the demo's agent MSI")
    if missing:
        print(
            f"note: the demo serves without an agent MSI, missing {_names(missing)} "
            f"{_advice(missing)}",
            file=sys.stderr,
        )
        return "no tools"
    log_path = work.with_name(f"{work.name}.log")
    _say(f"building the agent MSI for the demo (log: {log_path})")
    started = time.monotonic()
    work.parent.mkdir(parents=True, exist_ok=True)
    # As the server makes its data folder, which holds its secrets: for its owner only.
    for folder in reversed([p for p in (downloads, *downloads.parents) if not p.exists()]):
        folder.mkdir(mode=0o700)
    with log_path.open("w", encoding="utf-8") as log:
        build = [sys.executable, ROOT / "infra/installer/build_msi.py", "--output-dir", downloads]
        result = subprocess.run(
            [str(part) for part in [*build, "--work-dir", work]],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            check=False,
        )
    if result.returncode != 0 or not result.stdout.strip():
        print(f"note: the demo serves without a new agent MSI, see {log_path}", file=sys.stderr)
        return "failed"
    built = Path(result.stdout.splitlines()[-1])
    if len(recorded) == 2 and recorded[1] != built.name:
        (downloads / recorded[1]).unlink(missing_ok=True)  # the demo's own, of another version
    stamp.write_text(f"{digest} {built.name}\n", encoding="ascii")
    _say(f"agent MSI: {built.name} in {downloads} ({time.monotonic() - started:.0f} s)")
    return "built"


def _names(packages: list[SystemPackage]) -> str:
    return " ".join(p.package for p in packages)


def _uses(packages: list[SystemPackage]) -> str:
    uses = list(dict.fromkeys(p.used_by for p in packages))
    return " and ".join([", ".join(uses[:-1]), uses[-1]] if len(uses) > 1 else uses)


def _advice(packages: list[SystemPackage]) -> str:
    return f"(Debian/Ubuntu: sudo apt-get install {_names(packages)})"


def _replace_process(command: list[str | Path]) -> int:
    """Becomes the server process, so Ctrl+C and service managers' signals reach it."""
    args = [str(part) for part in command]
    if os.name == "nt":
        try:
            return subprocess.call(args)
        except KeyboardInterrupt:
            return 130
    os.execv(args[0], args)  # noqa: S606 - our own venv's executable
    raise AssertionError("unreachable: execv returns only by raising")


def _parallel(pytest_args: list[str]) -> list[str]:
    """pytest's arguments with workers (``-n``) added, unless they choose (``-n 0``: none)."""
    chosen = "no:xdist" in pytest_args or any(
        arg.startswith(("-n", "--numprocesses", "--dist")) for arg in pytest_args
    )
    if chosen:
        return pytest_args
    workers = min(os.cpu_count() or 1, MAX_TEST_WORKERS)
    return ["-n", str(workers), "--dist", "worksteal", *pytest_args]


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command not in ("setup", "demo", "test", "system") or (
        command == "system" and rest not in ([], ["--ci"])
    ):
        print(__doc__, file=sys.stderr)
        return 2
    if command in ("test", "system") and not system_packages(
        ci=command == "system" and rest == ["--ci"]
    ):
        return 1
    if command == "system":
        return 0
    bin_dir = setup()
    if command == "setup":
        return 0
    os.chdir(ROOT)
    if command == "demo":
        demo_msi(demo_downloads_dir(), ROOT / "build" / "demo-msi")
        return _replace_process([bin_dir / f"lunaris-server{EXE}", "demo", *rest])
    code = subprocess.call([bin_dir / f"pytest{EXE}", *_parallel(rest)])
    if code == PYTEST_NO_TESTS:
        print("error: pytest collected no tests", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
