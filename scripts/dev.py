#!/usr/bin/env python3
"""Set up the development environment and run Lunaris, from nothing but Python 3.11+.

    python3 scripts/dev.py demo    # set up, then serve with demo data on the embedded database
    python3 scripts/dev.py test    # set up, then run the whole test suite
    python3 scripts/dev.py setup   # only set up: .venv with every package, from uv.lock

Set-up installs a pinned uv into .tools/ (with this Python's pip), then has uv build .venv
from the lock file with this same interpreter; it never downloads a Python. Arguments after
the command go to `lunaris-server demo` or to pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

UV_VERSION = "0.13.9"
MIN_PYTHON = (3, 11)
ROOT = Path(__file__).resolve().parent.parent
BIN = "Scripts" if os.name == "nt" else "bin"
EXE = ".exe" if os.name == "nt" else ""
PYTEST_NO_TESTS = 5


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


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command not in ("setup", "demo", "test"):
        print(__doc__, file=sys.stderr)
        return 2
    bin_dir = setup()
    if command == "setup":
        return 0
    os.chdir(ROOT)
    if command == "demo":
        return _replace_process([bin_dir / f"lunaris-server{EXE}", "demo", *rest])
    code = subprocess.call([bin_dir / f"pytest{EXE}", *rest])
    if code == PYTEST_NO_TESTS:
        print("error: pytest collected no tests", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
