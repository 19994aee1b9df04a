"""One MSI build for the session, with Debian's wixl/msitools and osslsigncode; the tests skip,
saying why, where those are not installed (CI installs them)."""

import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

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


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    require_msi_tools()
    base = tmp_path_factory.mktemp("installer")
    result = subprocess.run(
        [
            str(INSTALLER / "build"),
            "--version",
            VERSION,
            "--output-dir",
            str(base / "dist"),
            "--work-dir",
            str(base / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return Built(Path(result.stdout.splitlines()[-1]), base / "work", result.stderr)


@pytest.fixture(scope="module")
def service_module() -> Iterator[ModuleType]:
    """lunaris_agent.windows.service, imported off Windows with empty pywin32 stand-ins: only its
    constants are read."""
    stubs = {
        name: ModuleType(name)
        for name in ("pywintypes", "servicemanager", "win32service", "win32serviceutil")
    }
    stubs["win32serviceutil"].ServiceFramework = object  # type: ignore[attr-defined]
    saved = {name: sys.modules.get(name) for name in [*stubs, "lunaris_agent.windows.service"]}
    sys.modules.update(stubs)
    sys.modules.pop("lunaris_agent.windows.service", None)
    try:
        yield importlib.import_module("lunaris_agent.windows.service")
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
