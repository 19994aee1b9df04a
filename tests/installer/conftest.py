"""One MSI build for the session, with Debian's wixl/msitools and osslsigncode; the tests skip,
saying why, where those are not installed (CI installs them). The build signs it, as
``LUNARIS_SIGN_PKCS12`` asks, with a throwaway certificate (signing adds the signature streams
and changes no table). Helpers: tests/installer/helpers.py."""

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.installer.helpers import (
    INSTALLER,
    VERSION,
    Built,
    CodeSigning,
    code_signing_certificate,
    require_msi_tools,
)


@pytest.fixture(scope="session")
def code_signing(tmp_path_factory: pytest.TempPathFactory) -> CodeSigning:
    return code_signing_certificate(tmp_path_factory.mktemp("codesign"))


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, code_signing: CodeSigning) -> Built:
    require_msi_tools()
    base = tmp_path_factory.mktemp("installer")
    env = {
        **os.environ,
        "LUNARIS_SIGN_PKCS12": str(code_signing.pkcs12),
        "LUNARIS_SIGN_PASSWORD_FILE": str(code_signing.password_file),
    }
    result = subprocess.run(
        [
            str(INSTALLER / "build"),
            "--version",
            VERSION,
            "--output-dir",
            str(base / "dist"),
            "--work-dir",
            str(base / "work"),
            # Self-signed: its own root.
            "--sign-ca",
            str(code_signing.cert),
        ],
        env=env,
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
