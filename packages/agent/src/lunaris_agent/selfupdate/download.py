"""Downloading an agent MSI from the server: streamed to disk in chunks, resumed where a cut
connection stopped (HTTP ``Range``), retried with back-off until the command expires, and
kept only when its size and SHA-256 are the command's."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import httpx

from lunaris_agent.client import USER_AGENT, retry_after
from lunaris_agent.selfupdate.files import UpdateFiles, UpdateRefused
from lunaris_protocol.backoff import Backoff

log = logging.getLogger(__name__)

RETRY_CAP_S: Final = 300.0
_CONTENT_RANGE: Final = re.compile(r"^bytes (\d+)-\d+/(?:\d+|\*)$")
_RETRY_STATUSES: Final = frozenset({401, 403, 408, 429})
"""Besides 5xx: a token refused now may be renewed by the heartbeat's registration."""


@dataclass(frozen=True)
class Download:
    url: str
    token: Callable[[], str | None]
    """Read at each attempt: a registration meanwhile may have replaced it."""
    verify: bool | str
    size_bytes: int
    sha256: str
    expires_at: datetime
    clock: Callable[[], datetime]
    timeout_s: float = 60.0
    first_retry_s: float = 2.0


class _Retry(Exception):
    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


async def download(job: Download, files: UpdateFiles) -> Path:
    """The checked MSI (``files.msi``); raises :class:`UpdateRefused` (the file removed)."""
    if files.msi.exists():  # a command before this one downloaded it already
        try:
            await _check(files.msi, job)
            return files.msi
        except UpdateRefused:
            files.discard_download()
    backoff = Backoff(RETRY_CAP_S, random.Random(), first_s=job.first_retry_s)  # noqa: S311
    timeout = httpx.Timeout(job.timeout_s, connect=min(job.timeout_s, 30.0))
    verify = (
        ssl.create_default_context(cafile=job.verify) if isinstance(job.verify, str) else job.verify
    )
    files.updates.mkdir(mode=0o700, parents=True, exist_ok=True)
    async with httpx.AsyncClient(
        verify=verify, timeout=timeout, headers={"User-Agent": USER_AGENT}
    ) as http:
        while True:
            try:
                await _fetch(http, job, files.part)
                break
            except _Retry as error:
                delay = backoff.next_delay(error.retry_after_s)
                if job.clock() + timedelta(seconds=delay) >= job.expires_at:
                    raise UpdateRefused(
                        "download_failed",
                        f"{job.url}: {error} (after {backoff.failures} attempts; the command "
                        f"expires at {job.expires_at.isoformat(timespec='minutes')})",
                    ) from error
                log.info("agent download: %s; retrying in %.0f s", error, delay)
                await asyncio.sleep(delay)
    await _check(files.part, job)
    files.part.replace(files.msi)
    return files.msi


async def _fetch(http: httpx.AsyncClient, job: Download, part: Path) -> None:
    """One attempt: goes on from what ``part`` holds; returns when the server sent it all."""
    have = _size(part)
    if have > job.size_bytes:
        _discard(part)
        have = 0
    if have == job.size_bytes:
        return  # complete already: the checks decide
    token = job.token()
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        async with http.stream("GET", job.url, headers=headers) as response:
            status = response.status_code
            if status == 416:  # what we hold is not the start of what it has: start again
                _discard(part)
                raise _Retry(f"the server cannot go on from byte {have} (HTTP 416)")
            if status == 404:
                raise UpdateRefused(
                    "download_failed", f"the server has no such installer: {job.url}"
                )
            if status in _RETRY_STATUSES or status >= 500:
                raise _Retry(f"HTTP {status}", retry_after(response))
            if status not in (200, 206):
                raise UpdateRefused("download_failed", f"{job.url}: HTTP {status}")
            if status == 206:
                start = _range_start(response.headers.get("content-range", ""))
                if start != have:
                    _discard(part)
                    raise _Retry(f"the server went on from byte {start}, not {have}")
            else:
                have = 0  # the whole file: what was there is replaced
            with part.open("ab" if have else "wb") as out:
                # As they come (a socket read each): a chunk size would make httpx hold back
                # the bytes of a chunk not yet full, and lose them when the connection drops.
                async for chunk in response.aiter_bytes():
                    out.write(chunk)
                    have += len(chunk)
                    if have > job.size_bytes:
                        break  # more than announced: the size check refuses it
                out.flush()
                os.fsync(out.fileno())
    except httpx.TransportError as error:  # cut off, timed out, unreachable: go on later
        raise _Retry(str(error) or type(error).__name__) from error


async def _check(path: Path, job: Download) -> None:
    size = _size(path)
    if size != job.size_bytes:
        _discard(path)
        more = " or more" if size > job.size_bytes else ""
        raise UpdateRefused(
            "size_mismatch", f"expected {job.size_bytes} bytes, got {size}{more}: file removed"
        )
    digest = await asyncio.to_thread(_sha256, path)
    if digest != job.sha256:
        _discard(path)
        raise UpdateRefused(
            "hash_mismatch", f"expected SHA-256 {job.sha256}, got {digest}: file removed"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _range_start(content_range: str) -> int | None:
    match = _CONTENT_RANGE.match(content_range.strip())
    return None if match is None else int(match.group(1))
