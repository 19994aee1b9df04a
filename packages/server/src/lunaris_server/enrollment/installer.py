"""The agent installer (MSI) the server offers for download, if one has been built."""

import re
from dataclasses import dataclass
from pathlib import Path

MSI_NAME = re.compile(r"lunaris-agent-[A-Za-z0-9._-]{1,64}\.msi")


@dataclass(frozen=True, slots=True)
class AgentInstaller:
    name: str
    size_bytes: int


def latest_installer(downloads_dir: Path) -> AgentInstaller | None:
    """The most recently built ``lunaris-agent-*.msi`` in the downloads directory."""
    if not downloads_dir.is_dir():
        return None
    candidates = [p for p in downloads_dir.iterdir() if MSI_NAME.fullmatch(p.name) and p.is_file()]
    if not candidates:
        return None
    newest = max(candidates, key=lambda p: (p.stat().st_mtime, p.name))
    return AgentInstaller(name=newest.name, size_bytes=newest.stat().st_size)


def installer_path(downloads_dir: Path, name: str) -> Path | None:
    """The file for a download name; only installer names, so no path can escape the dir."""
    if not MSI_NAME.fullmatch(name):
        return None
    path = downloads_dir / name
    return path if path.is_file() else None
