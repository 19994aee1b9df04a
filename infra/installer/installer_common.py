"""What the MSI's build (``build_msi.py``) and its install test (``install_test.py``) both
know: where this folder and the repository are, the service's name, how a build's file is
named for its version, how msiinfo exports a table, and how a step of the progress is shown.

Only the standard library: the install test imports it on a real Windows too.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, TextIO

HERE: Final = Path(__file__).resolve().parent
"""infra/installer"""
ROOT: Final = HERE.parent.parent
SERVICE_NAME: Final = "LunarisAgentService"
"""The service lunaris-agent.wxs installs (lunaris_agent.windows.service.SERVICE_NAME)."""
_FILE_NAME: Final = re.compile(r"lunaris-agent-(\d+\.\d+\.\d+)-x64\.msi")


def msi_file_name(version: str) -> str:
    """What the build names the MSI of a version."""
    return f"lunaris-agent-{version}-x64.msi"


def version_in_file_name(name: str) -> str | None:
    """The version in a name that :func:`msi_file_name` gave, else None."""
    match = _FILE_NAME.fullmatch(name)
    return match.group(1) if match else None


def table_rows(export: str) -> list[dict[str, str]]:
    """A table's rows from ``msiinfo export`` (Windows Installer's text archive): column
    names, column types, the table's name and keys, then one row a line."""
    lines = export.splitlines()
    columns = lines[0].split("\t")
    return [dict(zip(columns, line.split("\t"), strict=True)) for line in lines[3:] if line]


@contextmanager
def progress_step(title: str, *, out: TextIO, done: str) -> Iterator[None]:
    """``==> title``, then, once the step is over, ``done`` formatted with its seconds."""
    print(f"==> {title}", file=out, flush=True)
    started = time.monotonic()
    yield
    print(done.format(time.monotonic() - started), file=out, flush=True)
