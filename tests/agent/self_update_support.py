"""For the self-update tests: an HTTP server on a real socket that serves agent MSIs the way
the server does (the device's bearer token, HTTP ``Range``), tiny real MSIs built with wixl,
throwaway code-signing certificates and osslsigncode, and installer stand-ins."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from uuid import uuid4

from lunaris_agent.config import AgentConfig
from lunaris_protocol import UpdateAgentCommand

TOKEN = "device-token-1"
TARGET = "0.2.0"

WXS = """<?xml version="1.0" encoding="utf-8"?>
<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">
  <Product Id="*" Name="Lunaris Agent" Language="1033" Version="{version}"
           Manufacturer="Lunaris" UpgradeCode="0c7fa9be-2a4e-4a57-9a4b-5d4c8c0d1a11">
    <Package InstallerVersion="200" Compressed="yes" InstallScope="perMachine"/>
    <Media Id="1" Cabinet="agent.cab" EmbedCab="yes"/>
    <Directory Id="TARGETDIR" Name="SourceDir">
      <Directory Id="ProgramFilesFolder"><Directory Id="INSTALLDIR" Name="LunarisAgent">
        <Component Id="Readme" Guid="6a1f3c52-6a0e-4f4e-9d2c-3c4d2f1b7e01">
          <File Id="Readme" Source="{readme}"/>
        </Component>
      </Directory></Directory>
    </Directory>
    <Feature Id="Main" Level="1"><ComponentRef Id="Readme"/></Feature>
  </Product>
</Wix>
"""


def build_msi(directory: Path, version: str = TARGET) -> Path:
    """A small real MSI (wixl, well under a second)."""
    directory.mkdir(parents=True, exist_ok=True)
    readme = directory / "readme.txt"
    readme.write_text(f"Lunaris Agent {version}\n" * 2000)  # some bytes to cut in the middle
    wxs = directory / "agent.wxs"
    wxs.write_text(WXS.format(version=version, readme=readme.name))
    msi = directory / f"agent-{version}.msi"
    subprocess.run(
        ["wixl", "-o", msi.name, wxs.name], cwd=directory, check=True, capture_output=True
    )
    return msi


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


def make_certificate(directory: Path, subject: str) -> Certificate:
    """A throwaway self-signed certificate; ``subject`` in OpenSSL's ``/CN=.../O=...``."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-keyout", str(key), "-out", str(cert), "-subj", subject),
        ],
        check=True,
        capture_output=True,
    )
    return Certificate(cert, key)


def sign(msi: Path, certificate: Certificate, out: Path) -> Path:
    subprocess.run(
        [
            *("osslsigncode", "sign", "-certs", str(certificate.cert), "-key"),
            *(str(certificate.key), "-in", str(msi), "-out", str(out)),
        ],
        check=True,
        capture_output=True,
    )
    return out


@dataclass
class Served:
    """What the server holds and saw."""

    body: bytes
    cut_first_at: int | None = None
    """The first request gets this many bytes of the body, then the connection is closed."""
    status: int | None = None
    """Answer every request with this status instead."""
    ranges: list[str | None] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    served: Served
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        served = self.served
        served.paths.append(self.path)
        served.ranges.append(self.headers.get("Range"))
        served.authorizations.append(self.headers.get("Authorization"))
        if served.status is not None:
            self._answer(served.status, b"{}")
            return
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._answer(401, b"{}")
            return
        if not re.fullmatch(r"/api/agent/installers/[0-9][0-9A-Za-z.+_-]*", self.path):
            self._answer(404, b"{}")
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match:
            start = int(match.group(1))
            if start >= len(served.body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(served.body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        body = served.body[start:]
        self.send_response(206 if match else 200)
        if match:
            self.send_header(
                "Content-Range", f"bytes {start}-{len(served.body) - 1}/{len(served.body)}"
            )
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if served.cut_first_at is not None and len(served.paths) == 1:
            self.wfile.write(body[: served.cut_first_at])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def installer_server(served: Served) -> Iterator[str]:
    """Serves ``served`` on a free port; yields the agent's API URL."""
    handler = type("Handler", (_Handler,), {"served": served})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def config_for(directory: Path, api_url: str, publisher: str | None = None) -> AgentConfig:
    return AgentConfig(
        path=directory / "config.json",
        api_url=api_url,
        device_token=TOKEN,
        update_publisher=publisher,
    )


def update_command(body: bytes, *, version: str = TARGET, **changes: object) -> UpdateAgentCommand:
    fields: dict[str, object] = {
        "command_id": uuid4(),
        "version": version,
        "size_bytes": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "expires_at": datetime.now(UTC) + timedelta(hours=1),
    }
    return UpdateAgentCommand.model_validate(fields | changes)


STAND_IN = r"""
import sys
from pathlib import Path

mode, msi, log = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
record = Path(sys.argv[4])
if mode == "upgrade":
    log.write_bytes("\ufeff=== Verbose logging started ===\r\nMSI (s) (A8:C4): Product: "
        "Lunaris Agent -- Installation completed successfully.\r\n".encode("utf-16-le"))
    record.write_text(msi.read_bytes()[:8].hex())
    sys.exit(0)
lines = [
    "=== Verbose logging started ===",
    "MSI (s) (A8:C4) [10:15:22:101]: Doing action: InstallFinalize",
    "CustomAction StartAgentService returned actual error code 1920",
    "Action ended 10:15:23: InstallFinalize. Return value 3.",
    "MSI (s) (A8:C4) [10:15:23:456]: Product: Lunaris Agent -- Error 1920. Service "
    "'Lunaris Agent' failed to start.",
    "MSI (s) (A8:C4) [10:15:23:457]: Product: Lunaris Agent -- Installation failed.",
    "MSI (s) (A8:C4) [10:15:23:458]: Windows Installer installed the product. Product Name: "
    "Lunaris Agent. Installation success or error status: 1603.",
]
log.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-16-le"))
record.write_text("failed")
sys.exit(1603)
"""


def stand_in(directory: Path, mode: str) -> tuple[list[str], Path]:
    """A command line prefix for an installer stand-in (``upgrade`` or ``fail``), and the
    file it writes when it ran."""
    script = directory / "stand_in.py"
    script.write_text(STAND_IN)
    record = directory / f"stand-in-{mode}.txt"
    return [sys.executable, str(script), mode], record
