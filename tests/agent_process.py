"""A real ``lunaris-agent`` process for end-to-end tests: configured, run in the foreground,
stopped like a service manager would; and polling until the system shows a result."""

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

from tests.support import BIN

T = TypeVar("T")


class AgentProcess:
    def __init__(self, config: Path, home: Path) -> None:
        self.config = config
        self.home = home
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = home / "agent-console.log"

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "lunaris-agent"), "--config", str(self.config), *args],
            env=self._env(env),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(BIN / "lunaris-agent"), "--config", str(self.config), "run"],
                env=self._env(None),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=15)
        self.process = None
        return code

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _env(self, extra: dict[str, str] | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LUNARIS_")}
        return env | {"XDG_STATE_HOME": str(self.home)} | (extra or {})

    def configure(
        self, *, api_url: str, enrollment_secret: str, winget_path: Path, tags: str | None = None
    ) -> str:
        """Writes the agent's config as an admin would; returns the device id it made."""
        done = self.cli(
            "configure",
            "--api-url",
            api_url,
            "--winget-path",
            str(winget_path),
            *(() if tags is None else ("--tags", tags)),
            env={"LUNARIS_ENROLLMENT_SECRET": enrollment_secret},
        )
        assert done.returncode == 0, done.stderr
        device_id: str = json.loads(self.config.read_text())["device_id"]
        return device_id


def wait_until(condition: Callable[[], T], what: str, *, timeout_s: float) -> T:
    """Polls ``condition`` until it is true, and returns what it returned then; a server not
    up yet, or an answer not there yet, counts as "not yet"."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if value := condition():
                return value
        except (httpx.HTTPError, OSError, ValueError, KeyError, AssertionError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
