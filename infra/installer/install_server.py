"""The lunaris-server the installed agent registers with, run for the install test."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from install_wait import Failed, wait_for

HEARTBEAT_S: Final = 2


@dataclass
class Server:
    """A real lunaris-server on loopback with a fresh database, an admin's API token and an
    enrollment secret that works once."""

    work: Path
    executable: Path
    port: int = 0
    token: str = ""
    enrollment_secret: str = ""
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api"

    @property
    def log_path(self) -> Path:
        return self.work / "server.log"

    def start(self) -> None:
        data = self.work / "server-data"
        if data.exists():
            shutil.rmtree(data)
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LUNARIS_")}
        self.env.update(
            LUNARIS_DATA_DIR=str(data),
            LUNARIS_SECRET_KEY=secrets.token_urlsafe(32),
            LUNARIS_HEARTBEAT_INTERVAL_S=str(HEARTBEAT_S),
            LUNARIS_LOG_FORMAT="json",
        )
        self._cli("migrate")
        self._cli("user", "add", "admin", "--role", "admin", "--password-stdin", stdin="x" * 16)
        self.token = self._cli("token", "add", "--user", "admin").splitlines()[-1]
        secret_output = self._cli("enrollment", "add", "--name", "msi-test", "--max-uses", "1")
        self.enrollment_secret = secret_output.splitlines()[-1]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.executable), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=sys.platform != "win32",
            )
        wait_for(
            "the server to answer /readyz",
            lambda: self._ready() or None,
            timeout=60,
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @property
    def downloads(self) -> Path:
        """The server's agent versions (``LUNARIS_AGENT_DOWNLOADS_DIR``'s default)."""
        return self.work / "server-data" / "downloads"

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def call(
        self, method: str, path: str, *, body: bytes | None = None, json_body: Any = None
    ) -> Any:
        """The admin's API call; its JSON answer (None for none). An error answer fails with
        the server's words."""
        headers = {"Authorization": f"Bearer {self.token}"}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        elif body is not None:
            headers["Content-Type"] = "application/octet-stream"
        request = urllib.request.Request(  # noqa: S310 - our own server on loopback
            f"{self.base_url}{path}", data=body, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                text = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:500]
            raise Failed(f"{method} {path}: {error.code} {detail}") from None
        return json.loads(text) if text else None

    def devices(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get("/api/devices")["items"]
        return items

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise Failed(f"the server exited with code {self.process.returncode}")
        try:
            with urllib.request.urlopen(f"{self.base_url}/readyz", timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _cli(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [str(self.executable), *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise Failed(f"lunaris-server {' '.join(args[:2])} failed:\n{result.stderr.strip()}")
        return result.stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
