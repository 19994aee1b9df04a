"""The Python runtime's provenance is checked, not assumed: a changed byte, an unpinned root, a
file that differs from its pin or an unsigned PE file stops the build."""

import hashlib
import io
import tomllib
import zipfile
from pathlib import Path

# build_msi and embedded_python: from infra/installer, which tests/installer/helpers.py puts
# on sys.path (the conftest imports it before this module).
import build_msi
import embedded_python
import pytest
from embedded_python import Trust, VerificationError

from tests.installer.helpers import INSTALLER, Built

pytestmark = pytest.mark.e2e

PSF = "/C=US/ST=Oregon/L=Beaverton/O=Python Software Foundation/CN=Python Software Foundation"


@pytest.fixture(scope="module")
def pins() -> dict[str, object]:
    with (INSTALLER / "pins.toml").open("rb") as handle:
        return tomllib.load(handle)


@pytest.fixture(scope="module")
def trust(pins: dict[str, object]) -> Trust:
    return Trust.from_pins(pins, INSTALLER)


@pytest.fixture(scope="module")
def runtime_files(built: Built) -> dict[str, bytes]:
    """The verified runtime the session's build unpacked."""
    return {path.name: path.read_bytes() for path in (built.work / "runtime").iterdir()}


def test_every_pe_file_of_the_runtime_is_signed_by_a_pinned_signer(built: Built) -> None:
    assert "31 signed" in built.output
    assert "29 signed by " + PSF in built.output


def test_a_changed_byte_breaks_the_signature(
    runtime_files: dict[str, bytes], trust: Trust, tmp_path: Path
) -> None:
    intact = tmp_path / "python.exe"
    intact.write_bytes(runtime_files["python.exe"])
    assert embedded_python.verify_signature(intact, trust) == PSF

    changed = bytearray(runtime_files["python.exe"])
    changed[0x1000] ^= 0xFF  # in the code, not in the signature
    tampered = tmp_path / "tampered.exe"
    tampered.write_bytes(changed)
    with pytest.raises(VerificationError, match="does not verify"):
        embedded_python.verify_signature(tampered, trust)


def test_a_root_that_is_not_pinned_is_not_trusted(
    runtime_files: dict[str, bytes], trust: Trust, tmp_path: Path
) -> None:
    # Only DigiCert's root: python.exe's chain (Microsoft's 2020 root) must not verify.
    pem = trust.roots_pem.read_text(encoding="ascii")
    digicert = pem[pem.index("# DigiCert Trusted Root G4") :]
    roots = tmp_path / "roots.pem"
    roots.write_text(digicert, encoding="ascii")
    narrow = Trust(roots_pem=roots, root_sha256=trust.root_sha256, signers=trust.signers)
    python = tmp_path / "python.exe"
    python.write_bytes(runtime_files["python.exe"])
    with pytest.raises(VerificationError, match="does not verify"):
        embedded_python.verify_signature(python, narrow)
    with pytest.raises(VerificationError, match="exactly the roots pinned"):
        narrow.check_roots()


def test_a_signer_that_is_not_pinned_is_refused(
    runtime_files: dict[str, bytes], trust: Trust, tmp_path: Path
) -> None:
    only_psf = Trust(
        roots_pem=trust.roots_pem, root_sha256=trust.root_sha256, signers=frozenset({PSF})
    )
    runtime = tmp_path / "vcruntime140.dll"
    runtime.write_bytes(runtime_files["vcruntime140.dll"])  # signed by Microsoft
    with pytest.raises(VerificationError, match="not pinned"):
        embedded_python.verify_signature(runtime, only_psf)


def test_a_file_that_differs_from_its_pin_stops_the_build(
    built: Built, pins: dict[str, object]
) -> None:
    cache = build_msi.parse_options([]).cache_dir  # the session's build filled it
    python = dict(pins["python"])  # type: ignore[call-overload]
    files = dict(python["files"])
    files["python313.zip"] = "0" * 64
    with pytest.raises(VerificationError, match=r"python313\.zip does not have the SHA-256"):
        embedded_python.pinned_distribution({**pins, "python": {**python, "files": files}}, cache)
    del files["python313.zip"]
    with pytest.raises(VerificationError, match=r"unexpected: \['python313\.zip'\]"):
        embedded_python.pinned_distribution({**pins, "python": {**python, "files": files}}, cache)


def test_an_archive_with_another_hash_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "python-3.13.9-embed-amd64.zip"
    archive.write_bytes(b"PK not really")
    with pytest.raises(VerificationError, match="not the pinned"):
        embedded_python.fetch(str(archive), "1" * 64, tmp_path / "cache")


def test_a_python_org_zip_is_checked_the_same_way(
    runtime_files: dict[str, bytes], trust: Trust, tmp_path: Path
) -> None:
    # python.org's embed zip is flat; build one from the verified files, then add a DLL
    # that nobody signed.
    def zipped(files: dict[str, bytes]) -> Path:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in files.items():
                archive.writestr(name, data)
        path = tmp_path / f"embed-{len(files)}.zip"
        path.write_bytes(buffer.getvalue())
        return path

    good = zipped(runtime_files)
    files = embedded_python.zip_distribution(
        str(good), hashlib.sha256(good.read_bytes()).hexdigest(), tmp_path / "cache"
    )
    runtime = embedded_python.unpack_verified(files, tmp_path / "good", trust, source=str(good))
    assert (runtime.minor, runtime.pth_name) == (13, "python313._pth")
    assert len(runtime.signers) == 31

    unsigned = {**runtime_files, "helper.dll": runtime_files["python.exe"][:0x400] + b"\0" * 64}
    bad = zipped(unsigned)
    files = embedded_python.zip_distribution(
        str(bad), hashlib.sha256(bad.read_bytes()).hexdigest(), tmp_path / "cache"
    )
    with pytest.raises(VerificationError, match=r"helper\.dll"):
        embedded_python.unpack_verified(files, tmp_path / "bad", trust, source=str(bad))
    assert not (tmp_path / "bad").exists()  # nothing unverified is left behind
