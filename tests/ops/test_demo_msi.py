"""``scripts/dev.py demo`` offers an agent MSI built from this tree: built into the demo
server's downloads folder when the sources changed since the last build, not built again
when they did not, and skipped, in one line, where the tools are missing and cannot be
installed. The real build runs once here (some seconds)."""

import asyncio
import os
import runpy
from pathlib import Path
from typing import Any

import pytest

from lunaris_server.agents import service as agents
from lunaris_server.core.settings import Settings
from tests.installer.helpers import require_msi_tools

pytestmark = pytest.mark.e2e

DEV = Path(__file__).resolve().parents[2] / "scripts" / "dev.py"


@pytest.fixture(scope="module")
def dev() -> dict[str, Any]:
    return runpy.run_path(str(DEV), run_name="dev_script")


def without_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH without wixl, msitools or osslsigncode, and no installing them."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("LUNARIS_NO_SYSTEM_INSTALL", "1")


@pytest.fixture
def no_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    without_tools(tmp_path, monkeypatch)


def test_without_the_tools_the_demo_serves_without_an_msi_saying_so_in_one_line(
    dev: dict[str, Any], tmp_path: Path, no_tools: None, capsys: pytest.CaptureFixture[str]
) -> None:
    downloads = tmp_path / "data" / "downloads"
    assert dev["demo_msi"](downloads, tmp_path / "work") == "no tools"
    [line] = capsys.readouterr().err.splitlines()
    assert line == (
        "note: the demo serves without an agent MSI, missing wixl msitools osslsigncode "
        "(Debian/Ubuntu: sudo apt-get install wixl msitools osslsigncode)"
    )
    assert not downloads.exists()


def test_an_msi_is_built_once_for_the_same_sources(
    dev: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    require_msi_tools()
    downloads = tmp_path / "data" / "downloads"

    assert dev["demo_msi"](downloads, tmp_path / "work") == "built"

    # What the demo server's Settings -> Agents offers, and agents may update to.
    offered = asyncio.run(agents.latest(downloads))
    assert offered is not None
    assert offered.name == f"lunaris-agent-{offered.version}-x64.msi"
    assert (tmp_path / "data").stat().st_mode & 0o077 == 0  # as the server makes it
    msi = downloads / offered.name
    before = msi.stat().st_mtime_ns
    capsys.readouterr()

    # Again, now without the tools: nothing to build, so nothing is missing.
    without_tools(tmp_path, monkeypatch)
    assert dev["demo_msi"](downloads, tmp_path / "work") == "current"
    assert capsys.readouterr().err == f"==> agent MSI: {offered.name}, built from these sources\n"
    assert msi.stat().st_mtime_ns == before

    # Sources other than those it was built from: it would build again (and cannot here).
    stamp = downloads / dev["MSI_STAMP"]
    stamp.write_text(f"{'0' * 64} {offered.name}\n", encoding="ascii")
    assert dev["demo_msi"](downloads, tmp_path / "work") == "no tools"


def test_the_digest_follows_the_sources_and_not_what_python_generates(
    dev: dict[str, Any], tmp_path: Path
) -> None:
    for top in dev["MSI_INPUTS"]:
        path = tmp_path / top
        if "." in path.name:
            path.write_text("x")
        else:
            (path / "src").mkdir(parents=True)
            (path / "src" / "module.py").write_text("x = 1\n")
    digest = dev["msi_inputs_digest"]
    first = digest(tmp_path)
    cache = tmp_path / "packages" / "agent" / "src" / "__pycache__"
    cache.mkdir()
    (cache / "module.cpython-311.pyc").write_bytes(b"\0")
    assert digest(tmp_path) == first
    (tmp_path / "packages" / "agent" / "src" / "module.py").write_text("x = 2\n")
    assert digest(tmp_path) != first


@pytest.mark.parametrize(
    "environment",
    [
        {},
        {"LUNARIS_DATA_DIR": "elsewhere"},
        {"LUNARIS_DATA_DIR": "/srv/lunaris"},
        {"LUNARIS_DATA_DIR": "elsewhere", "LUNARIS_AGENT_DOWNLOADS_DIR": "/srv/msi"},
        {"LUNARIS_AGENT_DOWNLOADS_DIR": "msi"},
    ],
)
def test_the_msi_goes_where_the_demo_server_looks(
    dev: dict[str, Any], monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]
) -> None:
    for name in os.environ:
        if name.startswith("LUNARIS_"):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(dev["ROOT"])  # where dev.py starts the demo
    expected = Settings().resolved_agent_downloads_dir.absolute()
    assert dev["demo_downloads_dir"]() == expected
