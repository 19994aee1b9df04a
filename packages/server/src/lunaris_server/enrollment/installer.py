"""The agent installer (MSI) the server offers for download, if one has been built.

``infra/installer/build`` names its output ``lunaris-agent-<version>-x64.msi``; dropped into
the downloads folder, the newest one is offered under a name that never changes,
``/downloads/lunaris-agent.msi`` (what the console's msiexec line installs), and under its own.
"""

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

MSI_NAME = re.compile(r"lunaris-agent-[A-Za-z0-9._-]{1,64}\.msi")
LATEST_NAME: Final = "lunaris-agent.msi"
_VERSION = re.compile(r"lunaris-agent-(\d+(?:\.\d+){1,3})(?:-[A-Za-z0-9_]+)?\.msi")


@dataclass(frozen=True, slots=True)
class AgentInstaller:
    name: str
    size_bytes: int
    version: str | None
    """From the file name; None when the name does not carry one."""
    sha256: str


def latest_installer(downloads_dir: Path) -> AgentInstaller | None:
    """The most recently built ``lunaris-agent-*.msi`` in the downloads directory."""
    path = _latest_path(downloads_dir)
    if path is None:
        return None
    stat = path.stat()
    match = _VERSION.fullmatch(path.name)
    return AgentInstaller(
        name=path.name,
        size_bytes=stat.st_size,
        version=match.group(1) if match else None,
        sha256=_sha256(path, stat.st_size, stat.st_mtime_ns),
    )


def installer_path(downloads_dir: Path, name: str) -> Path | None:
    """The file for a download name: the stable name for the newest installer, or an
    installer's own name; nothing else, so no path can escape the dir."""
    if name == LATEST_NAME:
        return _latest_path(downloads_dir)
    if not MSI_NAME.fullmatch(name):
        return None
    path = downloads_dir / name
    return path if path.is_file() else None


def _latest_path(downloads_dir: Path) -> Path | None:
    if not downloads_dir.is_dir():
        return None
    candidates = [p for p in downloads_dir.iterdir() if MSI_NAME.fullmatch(p.name) and p.is_file()]
    if not candidates:
        return None
    return max(candidates, key=lambda p: (p.stat().st_mtime, p.name))


@functools.lru_cache(maxsize=8)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    """Hashed once per file version (size and mtime are part of the key), not per page view:
    an MSI is tens of megabytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
