"""UPDATE_AGENT's download against an HTTP server on a real socket: streamed to the data
directory, resumed with ``Range`` after a cut, and kept only when its size and SHA-256 are
the command's."""

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lunaris_agent.selfupdate.download import Download, download
from lunaris_agent.selfupdate.files import UpdateFiles, UpdateRefused
from tests.agent.self_update_support import TARGET, TOKEN, Served, installer_server

BODY = os.urandom(300_000)


def job(api_url: str, body: bytes = BODY, **changes: object) -> Download:
    fields: dict[str, object] = {
        "url": f"{api_url}/agent/installers/{TARGET}",
        "token": lambda: TOKEN,
        "verify": True,
        "size_bytes": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "expires_at": datetime.now(UTC) + timedelta(minutes=5),
        "clock": lambda: datetime.now(UTC),
        "first_retry_s": 0.05,
        "timeout_s": 10.0,
    }
    return Download(**(fields | changes))  # type: ignore[arg-type]


async def test_a_download_cut_off_goes_on_where_it_stopped(tmp_path: Path) -> None:
    served = Served(BODY, cut_first_at=100_000)
    files = UpdateFiles(tmp_path, TARGET)
    with installer_server(served) as api_url:
        msi = await download(job(api_url), files)
    assert msi == files.msi
    assert msi.read_bytes() == BODY
    assert not files.part.exists()
    assert served.ranges == [None, "bytes=100000-"]
    assert served.authorizations == [f"Bearer {TOKEN}"] * 2
    assert served.paths == [f"/api/agent/installers/{TARGET}"] * 2


async def test_a_part_left_by_an_earlier_agent_is_resumed(tmp_path: Path) -> None:
    files = UpdateFiles(tmp_path, TARGET)
    files.updates.mkdir()
    files.part.write_bytes(BODY[:123_456])
    served = Served(BODY)
    with installer_server(served) as api_url:
        await download(job(api_url), files)
    assert served.ranges == ["bytes=123456-"]
    assert files.msi.read_bytes() == BODY


async def test_a_part_longer_than_what_the_server_has_starts_again(tmp_path: Path) -> None:
    """The server says 416 to a range beyond its file: the part is dropped and fetched anew."""
    files = UpdateFiles(tmp_path, TARGET)
    files.updates.mkdir()
    files.part.write_bytes(os.urandom(len(BODY) - 10))
    shorter = Served(BODY[: len(BODY) - 20])
    with installer_server(shorter) as api_url, pytest.raises(UpdateRefused) as refused:
        await download(job(api_url), files)
    assert shorter.ranges == [f"bytes={len(BODY) - 10}-", None]
    assert refused.value.outcome == "size_mismatch"


async def test_a_wrong_size_is_refused_and_the_file_removed(tmp_path: Path) -> None:
    files = UpdateFiles(tmp_path, TARGET)
    with installer_server(Served(BODY)) as api_url, pytest.raises(UpdateRefused) as refused:
        await download(job(api_url, size_bytes=len(BODY) + 1), files)
    assert refused.value.outcome == "size_mismatch"
    assert f"expected {len(BODY) + 1} bytes, got {len(BODY)}" in refused.value.message
    assert list(files.updates.iterdir()) == []


async def test_more_bytes_than_announced_are_not_all_taken(tmp_path: Path) -> None:
    files = UpdateFiles(tmp_path, TARGET)
    with installer_server(Served(BODY)) as api_url, pytest.raises(UpdateRefused) as refused:
        await download(job(api_url, size_bytes=1000), files)
    assert refused.value.outcome == "size_mismatch"
    assert "expected 1000 bytes" in refused.value.message
    assert list(files.updates.iterdir()) == []


async def test_a_wrong_hash_is_refused_and_the_file_removed(tmp_path: Path) -> None:
    files = UpdateFiles(tmp_path, TARGET)
    other = hashlib.sha256(b"other").hexdigest()
    with installer_server(Served(BODY)) as api_url, pytest.raises(UpdateRefused) as refused:
        await download(job(api_url, sha256=other), files)
    assert refused.value.outcome == "hash_mismatch"
    assert f"expected SHA-256 {other}, got {hashlib.sha256(BODY).hexdigest()}" in (
        refused.value.message
    )
    assert list(files.updates.iterdir()) == []


async def test_an_unknown_version_fails_at_once(tmp_path: Path) -> None:
    served = Served(BODY, status=404)
    with installer_server(served) as api_url, pytest.raises(UpdateRefused) as refused:
        await download(job(api_url), UpdateFiles(tmp_path, TARGET))
    assert refused.value.outcome == "download_failed"
    assert len(served.paths) == 1


async def test_a_failing_server_is_retried_until_the_command_expires(tmp_path: Path) -> None:
    served = Served(BODY, status=503)
    expires = datetime.now(UTC) + timedelta(seconds=1)
    with installer_server(served) as api_url, pytest.raises(UpdateRefused) as refused:
        await download(job(api_url, expires_at=expires), UpdateFiles(tmp_path, TARGET))
    assert refused.value.outcome == "download_failed"
    assert "HTTP 503" in refused.value.message
    assert len(served.paths) >= 2


async def test_an_unreachable_server_is_a_failed_download(tmp_path: Path) -> None:
    from tests.support import free_port

    api_url = f"http://127.0.0.1:{free_port()}/api"
    expires = datetime.now(UTC) + timedelta(seconds=0.5)
    with pytest.raises(UpdateRefused) as refused:
        await download(job(api_url, expires_at=expires), UpdateFiles(tmp_path, TARGET))
    assert refused.value.outcome == "download_failed"
