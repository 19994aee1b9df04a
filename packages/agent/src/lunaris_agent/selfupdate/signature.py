"""Whose Authenticode signature an MSI carries, checked before it runs.

When the agent was installed with a pinned publisher (``update_publisher`` in config.json,
the MSI's ``UPDATE_PUBLISHER``), an MSI runs only if its signature is valid and its signer's
subject is exactly that one: an unsigned MSI, another signer, or a signature that cannot be
checked here is refused, whatever the server says (a server taken over must not be able to
push its own code). One interface, two ways to answer it:

- :class:`AuthenticodeVerifier` (Windows): ``Get-AuthenticodeSignature`` in Windows
  PowerShell, which asks WinVerifyTrust and the machine's certificate stores;
- :class:`OsslsigncodeVerifier` (Linux, for tests and development): ``osslsigncode verify``
  against a CA file, the subject written the way Windows writes it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Final, Protocol

from lunaris_agent.selfupdate.files import UpdateRefused

VERIFY_TIMEOUT_S: Final = 120.0


class SignatureUnverified(Exception):
    """No valid signature (unsigned, tampered with, untrusted), or no way to tell here."""


class SignatureVerifier(Protocol):
    async def signer(self, path: Path) -> str:
        """The subject of the valid signature's signer, as Windows writes it (``CN=Contoso
        Ltd, O=Contoso Ltd, C=US``); raises :class:`SignatureUnverified`."""
        ...


async def check_publisher(verifier: SignatureVerifier, path: Path, publisher: str) -> None:
    """Raises :class:`UpdateRefused` (``signature_refused``) unless ``publisher`` signed it."""
    try:
        signer = await verifier.signer(path)
    except SignatureUnverified as error:
        raise UpdateRefused(
            "signature_refused", f"no valid signature by {publisher!r}: {error}"
        ) from error
    if signer != publisher:
        raise UpdateRefused(
            "signature_refused", f"signed by {signer!r}, not by the pinned {publisher!r}"
        )


def default_verifier() -> SignatureVerifier:
    return AuthenticodeVerifier() if sys.platform == "win32" else OsslsigncodeVerifier()


class AuthenticodeVerifier:
    """``Get-AuthenticodeSignature``: Status ``Valid`` and ``SignerCertificate.Subject``."""

    SCRIPT: Final = (
        "$ErrorActionPreference = 'Stop'; "
        "[Console]::OutputEncoding = [Text.Encoding]::UTF8; "
        "$s = Get-AuthenticodeSignature -LiteralPath $env:LUNARIS_SIGNED_FILE; "
        "$subject = if ($s.SignerCertificate) { $s.SignerCertificate.Subject } else { $null }; "
        "[pscustomobject]@{ Status = [string]$s.Status; Message = $s.StatusMessage; "
        "Subject = $subject } | ConvertTo-Json -Compress"
    )

    def __init__(self, powershell: Path | None = None) -> None:
        root = Path(os.environ.get("SYSTEMROOT", r"C:\Windows"))
        self.powershell = powershell or root / "System32/WindowsPowerShell/v1.0/powershell.exe"

    async def signer(self, path: Path) -> str:
        argv = [str(self.powershell), "-NoLogo", "-NoProfile", "-NonInteractive"]
        env = {**os.environ, "LUNARIS_SIGNED_FILE": str(path)}  # no quoting of the path
        _, output = await _run([*argv, "-Command", self.SCRIPT], env)
        try:
            answer = json.loads(output)
            status, subject = str(answer["Status"]), answer["Subject"]
        except (ValueError, KeyError, TypeError) as error:
            raise SignatureUnverified(f"PowerShell answered {output[-300:]!r}") from error
        if status != "Valid" or not isinstance(subject, str):
            raise SignatureUnverified(f"{status}: {answer.get('Message') or ''}".strip())
        return subject


class OsslsigncodeVerifier:
    """``osslsigncode verify -in FILE``: valid only when it says so and exits 0; the chain
    must lead to a certificate in ``ca_file`` (the system's bundle when None)."""

    def __init__(self, executable: str = "osslsigncode", ca_file: Path | None = None) -> None:
        self.executable = executable
        self.ca_file = ca_file

    async def signer(self, path: Path) -> str:
        ca = [] if self.ca_file is None else ["-CAfile", str(self.ca_file)]
        code, output = await _run([self.executable, "verify", *ca, "-in", str(path)], None)
        if code != 0 or "Signature verification: ok" not in output:
            last = [line.strip() for line in output.splitlines() if line.strip()][-3:]
            raise SignatureUnverified(f"osslsigncode exit code {code}: {' / '.join(last)}")
        signer = output.split("Signer's certificate:", 1)[-1]
        match = re.search(r"^\s*Subject:\s*(.+?)\s*$", signer, re.MULTILINE)
        if match is None:
            raise SignatureUnverified("osslsigncode named no signer")
        return windows_subject(match.group(1))


_WINDOWS_KEYS: Final = {
    "ST": "S",
    "emailAddress": "E",
    "street": "STREET",
    "serialNumber": "SERIALNUMBER",
    "title": "T",
    "GN": "G",
    "initials": "I",
    "businessCategory": "OID.2.5.4.15",
    "jurisdictionC": "OID.1.3.6.1.4.1.311.60.2.1.3",
    "jurisdictionST": "OID.1.3.6.1.4.1.311.60.2.1.2",
    "jurisdictionL": "OID.1.3.6.1.4.1.311.60.2.1.1",
}
_NEEDS_QUOTES: Final = re.compile(r'[,+="\n<>#;]|^\s|\s$')


def windows_subject(oneline: str) -> str:
    """OpenSSL's ``/C=US/O=Contoso, Ltd/CN=Contoso`` as Windows writes the same name:
    ``CN=Contoso, O="Contoso, Ltd", C=US`` (last part first, the keys Windows uses)."""
    parts = re.split(r"/(?=[A-Za-z][A-Za-z0-9.]*=)", oneline.strip().lstrip("/"))
    rendered = []
    for part in reversed(parts):
        key, _, value = part.partition("=")
        if _NEEDS_QUOTES.search(value):
            value = '"' + value.replace('"', '""') + '"'
        rendered.append(f"{_WINDOWS_KEYS.get(key, key)}={value}")
    return ", ".join(rendered)


async def _run(argv: list[str], env: dict[str, str] | None) -> tuple[int, str]:
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
    except OSError as error:
        raise SignatureUnverified(f"cannot run {argv[0]}: {error.strerror or error}") from error
    try:
        output, _ = await asyncio.wait_for(process.communicate(), VERIFY_TIMEOUT_S)
    except TimeoutError as error:
        process.kill()
        await process.wait()
        raise SignatureUnverified(
            f"{argv[0]} did not answer in {VERIFY_TIMEOUT_S:.0f} s"
        ) from error
    assert process.returncode is not None
    return process.returncode, output.decode("utf-8", errors="replace")
