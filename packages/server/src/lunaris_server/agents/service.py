"""Agent versions, as the downloads folder holds them: listing them (newest first, in
winget's version order), adding one (an admin's upload, audited) and removing one.

The folder is the record (``agents/files.py``): what a process lists, every process lists,
and an MSI built into the folder (the Docker image, ``scripts/dev.py demo``) is a version
like an uploaded one. File work runs in a thread, off the event loop."""

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import AGENT_VERSION_PATTERN, MAX_AGENT_VERSION, MAX_INSTALLER_BYTES
from lunaris_server.agents import files
from lunaris_server.audit import service as audit
from lunaris_server.core.errors import Conflict, InvalidInput, NotFound
from lunaris_server.core.versions import sort_key


def is_version(text: str) -> bool:
    """Whether ``text`` can be an agent version (it names a file and a URL)."""
    return len(text) <= MAX_AGENT_VERSION and re.fullmatch(AGENT_VERSION_PATTERN, text) is not None


@dataclass(frozen=True, slots=True)
class AgentVersion:
    version: str
    name: str
    size_bytes: int
    sha256: str
    added_at: datetime
    """When the file was written into the folder."""


def _read(folder: Path) -> list[AgentVersion]:
    found: list[AgentVersion] = []
    for path in files.found(folder):
        version = files.version_of(path.name)
        if version is None:
            continue
        stored = files.describe(path)
        modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        found.append(AgentVersion(version, path.name, stored.size_bytes, stored.sha256, modified))
    # Newest first; of two files of one version (an -x64 and a plain name), the newer file.
    found.sort(key=lambda v: (sort_key(v.version), v.added_at), reverse=True)
    unique: dict[str, AgentVersion] = {}
    for each in found:
        unique.setdefault(each.version, each)
    return list(unique.values())


async def list_versions(folder: Path) -> list[AgentVersion]:
    return await asyncio.to_thread(_read, folder)


async def latest(folder: Path) -> AgentVersion | None:
    found = await list_versions(folder)
    return found[0] if found else None


async def get_version(folder: Path, version: str) -> AgentVersion:
    for found in await list_versions(folder):
        if found.version == version:
            return found
    raise NotFound(f"no agent version {version} in the downloads folder")


async def add_version(
    session: AsyncSession,
    folder: Path,
    version: str,
    chunks: AsyncIterator[bytes],
    *,
    actor: audit.Actor,
    now: datetime,
) -> AgentVersion:
    """Stores an uploaded MSI as ``version``; a version that is there already is refused (a
    version never changes: a new build is a new version)."""
    if any(v.version == version for v in await list_versions(folder)):
        raise Conflict(f"agent version {version} is there already; remove it first")
    try:
        stored = await files.store(
            folder, files.file_name(version), chunks, max_bytes=MAX_INSTALLER_BYTES
        )
    except files.NotAnInstaller as refused:
        raise InvalidInput(f"refused: {refused}") from refused
    await audit.record(
        session,
        actor=actor,
        action="agent_version.add",
        target=f"agent_version:{version}",
        details={"file": stored.name, "size_bytes": stored.size_bytes, "sha256": stored.sha256},
        now=now,
    )
    return await get_version(folder, version)


async def remove_version(
    session: AsyncSession, folder: Path, version: str, *, actor: audit.Actor, now: datetime
) -> None:
    """Removes the version's file. Commands already queued with it fail their download."""
    found = await get_version(folder, version)
    await asyncio.to_thread(files.remove, folder, found.name)
    await audit.record(
        session,
        actor=actor,
        action="agent_version.remove",
        target=f"agent_version:{version}",
        details={"file": found.name, "sha256": found.sha256},
        now=now,
    )
