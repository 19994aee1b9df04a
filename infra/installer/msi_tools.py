"""The tools the MSI build runs (uv, wixl, msibuild, msiinfo, osslsigncode): where they are,
how one is run, and the build's progress, which goes to stderr."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from installer_common import ROOT, progress_step

MSI_TOOLS: Final = ("wixl", "msibuild", "msiinfo", "osslsigncode")


class BuildError(Exception):
    """A step failed; the message says which and why."""


@dataclass(frozen=True)
class Tools:
    uv: str
    wixl: str
    msibuild: str
    msiinfo: str
    osslsigncode: str

    @classmethod
    def find(cls) -> Tools:
        pinned_uv = ROOT / ".tools" / "bin" / "uv"
        found = {
            "uv": str(pinned_uv) if pinned_uv.exists() else shutil.which("uv"),
            **{name: shutil.which(name) for name in MSI_TOOLS},
        }
        missing = sorted(name for name, path in found.items() if path is None)
        if missing:
            raise BuildError(
                f"missing {', '.join(missing)}: `apt-get install -y wixl msitools osslsigncode` "
                "and `python3 scripts/dev.py setup` (the pinned uv)"
            )
        return cls(**{name: str(path) for name, path in found.items()})


def run(command: Sequence[str], *, cwd: Path | None = None, capture: bool = False) -> str:
    """Runs a tool; its output goes to stderr (or is returned); a failure stops the build."""
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    result = subprocess.run(
        list(command),
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE if capture else sys.stderr,
        stderr=subprocess.PIPE if capture else sys.stderr,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        details = f"\n{result.stderr.strip()}" if capture and result.stderr else ""
        raise BuildError(f"{Path(command[0]).name} failed (exit {result.returncode}){details}")
    return result.stdout if capture else ""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def step(title: str) -> AbstractContextManager[None]:
    return progress_step(title, out=sys.stderr, done="    done in {:.1f} s")
