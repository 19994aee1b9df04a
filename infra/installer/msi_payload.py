"""The bundle the MSI installs, laid out as it will be in ``C:\\Program Files\\LunarisAgent``::

    python\\              python.exe, python3XY.dll, the stdlib zip, ...
    python\\Lib\\site-packages\\   lunaris_agent, lunaris_protocol, pywin32, httpx, pydantic ...
    lunaris-agent.cmd    the agent's command line with its own Python

The runtime is the verified one of :mod:`embedded_python`; the agent and the protocol are
built as wheels from this tree, their dependencies are ``win_amd64`` wheels at the versions
and hashes in ``uv.lock``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import embedded_python
from embedded_python import Runtime, Trust
from installer_common import HERE, ROOT
from msi_tools import BuildError, Tools, run

WINDOWS_X64: Final = "x86_64-pc-windows-msvc"
"""uv's name for the win_amd64 platform."""

TRIMMED: Final = (
    # Linux entry-point scripts and the lock file that uv writes for the host.
    "bin",
    ".lock",
    # pywin32's GUI (Pythonwin), help file, ADO/ISAPI/COM-server packages, C headers and
    # import libraries, tests and demos: none of it is used, and all of it is attack surface.
    "PyWin32.chm",
    "pythonwin",
    "adodbapi",
    "isapi",
    "win32/Demos",
    "win32/test",
    "win32/include",
    "win32/libs",
    "win32/pythonservice.exe",  # python.exe hosts the service itself
    "win32com/demos",
    "win32com/test",
    "win32com/HTML",
    "win32com/include",
    "win32com/libs",
    "win32comext/*/demos",
    "win32comext/*/test",
)

COMMAND_SCRIPT: Final = (
    "@echo off\r\n"
    "rem The agent's command line, run by the agent's own Python: lunaris-agent.cmd status\r\n"
    '"%~dp0python\\python.exe" -B -m lunaris_agent %*\r\n'
)
"""``-B``: commands run by an administrator must not leave ``__pycache__`` in Program Files,
where the MSI does not own it and would leave it behind at uninstall."""


def python_runtime(
    pins: Mapping[str, Any],
    directory: Path,
    *,
    cache_dir: Path,
    python_zip: str | None,
    python_zip_sha256: str | None,
) -> Runtime:
    """The verified runtime, unpacked into ``directory``: python.org's embed zip when one is
    given with its hash, else the pinned distribution."""
    trust = Trust.from_pins(pins, HERE)
    if python_zip is not None and python_zip_sha256 is not None:
        files = embedded_python.zip_distribution(python_zip, python_zip_sha256, cache_dir)
        source = python_zip
    else:
        files = embedded_python.pinned_distribution(pins, cache_dir)
        source = f"pinned CPython {pins['python']['release']}"
    return embedded_python.unpack_verified(files, directory, trust, source=source)


def add_runtime(runtime: Runtime, bundle: Path) -> None:
    """The runtime into the bundle's ``python`` folder, with the ``._pth`` file it starts with."""
    shutil.copytree(runtime.directory, bundle / "python")
    # Where the embeddable Python looks for modules: its own folder and site-packages,
    # never the working directory or PYTHONPATH; `import site` runs pywin32.pth.
    (bundle / "python" / runtime.pth_name).write_bytes(
        b"\r\n".join(
            [
                f"python3{runtime.minor}.zip".encode(),
                b".",
                b"Lib\\site-packages",
                b"import site",
                b"",
            ]
        )
    )


def add_packages(
    tools: Tools, bundle: Path, python_version: str, work: Path, *, version: str
) -> None:
    """The agent, the protocol and their dependencies into the runtime's site-packages, less
    what is not used, the agent stamped with the MSI's version; then the agent's command
    script."""
    site_packages = bundle / "python" / "Lib" / "site-packages"
    install_packages(tools, site_packages, python_version, work)
    stamp_version(site_packages / "lunaris_agent" / "__init__.py", version)
    trim(site_packages)
    (bundle / "lunaris-agent.cmd").write_bytes(COMMAND_SCRIPT.encode("ascii"))
    check_names(bundle)


def install_packages(tools: Tools, site_packages: Path, python_version: str, work: Path) -> None:
    requirements = work / "requirements.txt"
    # --locked: refuse a uv.lock that no longer matches the pyproject files.
    run(
        [
            tools.uv,
            "export",
            "--package",
            "lunaris-agent",
            "--no-dev",
            "--no-emit-workspace",
            "--locked",
            "--no-header",
            "--quiet",
            "--output-file",
            str(requirements),
        ],
        cwd=ROOT,
    )
    target = [
        "--target",
        str(site_packages),
        "--python-platform",
        WINDOWS_X64,
        "--python-version",
        python_version,
        "--no-deps",
        "--quiet",
    ]
    # Binary wheels only, and only those whose hashes uv.lock records.
    run(
        [
            *(tools.uv, "pip", "install", *target),
            *("--only-binary", ":all:", "--require-hashes", "--requirement", str(requirements)),
        ],
        cwd=ROOT,
    )
    wheels = work / "wheels"
    for package in ("lunaris-protocol", "lunaris-agent"):
        run(
            [tools.uv, "build", "--package", package, "--wheel", "--out-dir", str(wheels), "-q"],
            cwd=ROOT,
        )
    run([tools.uv, "pip", "install", *target, *map(str, sorted(wheels.glob("*.whl")))], cwd=ROOT)


_VERSION_LINE: Final = re.compile(r'^__version__ = "[^"\n]*"$', re.MULTILINE)


def stamp_version(module: Path, version: str) -> None:
    """The agent reports the version of the MSI it came in (a self-update checks the agent
    that comes back runs the version it installed): ``__version__`` in the packaged
    ``lunaris_agent/__init__.py`` becomes the MSI's, whatever the tree's is."""
    source = module.read_text(encoding="utf-8")
    stamped, count = _VERSION_LINE.subn(f'__version__ = "{version}"', source, count=1)
    if count != 1:
        raise BuildError(f"no __version__ line in {module} to stamp the MSI's version on")
    module.write_text(stamped, encoding="utf-8")


def trim(site_packages: Path) -> None:
    for pattern in TRIMMED:
        for path in site_packages.glob(pattern):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def check_names(bundle: Path) -> None:
    """Windows folds case: two names that differ only in case would be one file there."""
    seen: dict[str, Path] = {}
    for path in bundle.rglob("*"):
        key = path.relative_to(bundle).as_posix().casefold()
        if key in seen:
            raise BuildError(f"{path} and {seen[key]} would be the same file on Windows")
        seen[key] = path
