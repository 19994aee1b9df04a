"""The downloads folder, where agent MSIs live: ``lunaris-agent-<version>-x64.msi``, as
``infra/installer/build`` names them. Every server process reads the same folder (a shared
path when there are several), so whichever process answers serves the same bytes."""

import asyncio
import functools
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

MSI_NAME: Final = re.compile(r"lunaris-agent-[A-Za-z0-9._+-]{1,64}\.msi")
LATEST_NAME: Final = "lunaris-agent.msi"
"""The name that never changes, for the newest version (what the console's msiexec line
installs)."""
_VERSION: Final = re.compile(r"lunaris-agent-(\d[0-9A-Za-z.+_-]*?)(?:-x64|-x86|-arm64)?\.msi")
OLE_MAGIC: Final = bytes.fromhex("d0cf11e0a1b11ae1")
"""How every MSI (an OLE compound file) begins."""


class NotAnInstaller(ValueError):
    """The bytes are not an MSI, or too many of them."""


@dataclass(frozen=True, slots=True)
class StoredFile:
    name: str
    size_bytes: int
    sha256: str


def file_name(version: str) -> str:
    return f"lunaris-agent-{version}-x64.msi"


def version_of(name: str) -> str | None:
    """The version a file's name carries (None: it carries none)."""
    match = _VERSION.fullmatch(name)
    return match.group(1) if match else None


def path_of(folder: Path, name: str) -> Path | None:
    """The file of a download name, if it is there; only MSI names, so no path can leave
    the folder."""
    if not MSI_NAME.fullmatch(name):
        return None
    path = folder / name
    return path if path.is_file() else None


def found(folder: Path) -> list[Path]:
    """The MSIs in the folder that name their version."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if MSI_NAME.fullmatch(p.name) and version_of(p.name))


def describe(path: Path) -> StoredFile:
    stat = path.stat()
    return StoredFile(path.name, stat.st_size, _sha256(path, stat.st_size, stat.st_mtime_ns))


async def store(
    folder: Path, name: str, chunks: AsyncIterator[bytes], *, max_bytes: int
) -> StoredFile:
    """Writes the stream to ``folder/name`` as it arrives, hashing it: into a temporary file
    first, renamed into place only once complete and checked, so no process ever serves
    half a file. Refuses what is not an MSI or is larger than ``max_bytes``. The disk work
    runs in a thread, a megabyte at a time."""
    writer = await asyncio.to_thread(_Writer, folder, max_bytes)
    try:
        buffered: list[bytes] = []
        pending = 0
        async for chunk in chunks:
            buffered.append(chunk)
            pending += len(chunk)
            if pending >= 1 << 20:
                await asyncio.to_thread(writer.write, b"".join(buffered))
                buffered, pending = [], 0
        await asyncio.to_thread(writer.write, b"".join(buffered))
        return await asyncio.to_thread(writer.finish, name)
    except BaseException:
        await asyncio.to_thread(writer.discard)
        raise


class _Writer:
    def __init__(self, folder: Path, max_bytes: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._folder = folder
        self._max_bytes = max_bytes
        handle, name = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")
        self._temporary = Path(name)
        self._out = os.fdopen(handle, "wb")
        self._digest = hashlib.sha256()
        self._size = 0
        self._head = b""

    def write(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._max_bytes:
            raise NotAnInstaller(f"larger than {self._max_bytes} bytes")
        if len(self._head) < len(OLE_MAGIC):
            self._head += data[: len(OLE_MAGIC) - len(self._head)]
        self._digest.update(data)
        self._out.write(data)

    def finish(self, name: str) -> StoredFile:
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        if not self._head.startswith(OLE_MAGIC):
            raise NotAnInstaller("not an MSI (an MSI is an OLE compound file)")
        self._temporary.replace(self._folder / name)
        return StoredFile(name, self._size, self._digest.hexdigest())

    def discard(self) -> None:
        self._out.close()
        self._temporary.unlink(missing_ok=True)


def remove(folder: Path, name: str) -> None:
    path = path_of(folder, name)
    if path is not None:
        path.unlink(missing_ok=True)


@functools.lru_cache(maxsize=32)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    """Hashed once per file version (size and mtime are part of the key): an MSI is tens of
    megabytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
