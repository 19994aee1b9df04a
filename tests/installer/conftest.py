"""One MSI build for the session, with Debian's wixl/msitools and osslsigncode; the tests skip,
saying why, where those are not installed (CI installs them). Helpers:
tests/installer/helpers.py."""

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.installer.helpers import INSTALLER, VERSION, Built, require_msi_tools


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
