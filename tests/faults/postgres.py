"""A PostgreSQL server of the test's own, made with ``initdb`` in a temporary directory, so a
test can stop and restart it without touching the database other tests share."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support import free_port

BINARIES = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))


def binaries_dir() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian's layout), if any."""
    return BINARIES[-1].parent if BINARIES else None


def server_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as the ``postgres`` account."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return None
    return "postgres"


@dataclass
class PrivatePostgres:
    bin_dir: Path
    root: Path
    port: int
    user: str | None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def log(self) -> str:
        path = self.root / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @classmethod
    def create(cls, bin_dir: Path) -> PrivatePostgres:
        user = server_user()
        root = Path(tempfile.mkdtemp(prefix="lunaris-faults-pg-"))
        if user is not None:
            shutil.chown(root, user)
        server = cls(bin_dir, root, free_port(), user)
        server._run(
            "initdb",
            "--pgdata",
            str(server.data_dir),
            "--username",
            "postgres",
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--no-sync",
        )
        return server

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            # Durability against a power cut is not what these tests are about.
            "-c fsync=off -c max_connections=100"
        )
        self._run(
            "pg_ctl",
            "start",
            "--wait",
            "--pgdata",
            str(self.data_dir),
            "--log",
            str(self.root / "postgres.log"),
            "--options",
            options,
        )

    def stop(self) -> None:
        """``fast``: open connections are cut, as when an administrator restarts the server."""
        self._run("pg_ctl", "stop", "--wait", "--mode", "fast", "--pgdata", str(self.data_dir))

    def destroy(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [str(self.bin_dir / program), *args],
            user=self.user,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed:\n{done.stdout}\n{done.stderr}\n{self.log}")
