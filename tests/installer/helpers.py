"""Helpers for the installer tests: where infra/installer is (put on ``sys.path``, for the
tests of the build's parts), the tools the build needs, and what a build made."""

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALLER = ROOT / "infra" / "installer"
TOOLS = ("wixl", "msibuild", "msiinfo", "osslsigncode")
VERSION = "0.9.7"
"""Not the agent's own version: the build must use the one it is given."""

sys.path.insert(0, str(INSTALLER))  # the build's modules, for the tests of its parts


def require_msi_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed: apt-get install -y wixl msitools "
            "osslsigncode (scripts/dev.py test installs them when run as root)"
        )


@dataclass(frozen=True)
class Built:
    msi: Path
    work: Path
    output: str

    @property
    def bundle(self) -> Path:
        return self.work / "bundle"
