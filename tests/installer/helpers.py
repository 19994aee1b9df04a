"""Helpers for the installer tests: where infra/installer is (put on ``sys.path``, for the
tests of the build's parts), the tools the build needs, what a build made, and a throwaway
code-signing certificate."""

import datetime
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parents[2]
INSTALLER = ROOT / "infra" / "installer"
TOOLS = ("wixl", "msibuild", "msiinfo", "osslsigncode")
VERSION = "0.9.7"
"""Not the agent's own version: the build must use the one it is given."""

sys.path.insert(0, str(INSTALLER))  # the build's modules, for the tests of its parts


def require_msi_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed: apt-get install -y wixl msitools "
            "osslsigncode (scripts/dev.py test installs them when run as root)"
        )


@dataclass(frozen=True)
class Built:
    msi: Path
    work: Path
    output: str

    @property
    def bundle(self) -> Path:
        return self.work / "bundle"


SIGNER_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Bayern"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lunaris Test, Ltd"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Lunaris Test Publisher"),
    ]
)
SIGNER_SUBJECT = 'CN=Lunaris Test Publisher, O="Lunaris Test, Ltd", S=Bayern, C=DE'
"""SIGNER_NAME as Windows shows it: the value UPDATE_PUBLISHER takes."""
SIGNING_PASSWORD = "throwaway"
"""The test certificate's."""


@dataclass(frozen=True)
class CodeSigning:
    """A self-signed code-signing certificate: as PEM files and as a PKCS#12 file, both keys
    protected by the password in ``password_file``."""

    cert: Path
    key: Path
    pkcs12: Path
    password_file: Path


def code_signing_certificate(directory: Path) -> CodeSigning:
    key = ec.generate_private_key(ec.SECP256R1())  # fast to make, and Authenticode takes it
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(SIGNER_NAME)
        .issuer_name(SIGNER_NAME)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(key, hashes.SHA256())
    )
    password = SIGNING_PASSWORD.encode()
    encryption = serialization.BestAvailableEncryption(password)
    directory.mkdir(parents=True, exist_ok=True)
    signing = CodeSigning(
        cert=directory / "cert.pem",
        key=directory / "key.pem",
        pkcs12=directory / "codesign.p12",
        password_file=directory / "password",
    )
    signing.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    signing.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    signing.pkcs12.write_bytes(
        pkcs12.serialize_key_and_certificates(b"codesign", key, cert, None, encryption)
    )
    signing.password_file.write_text(f"{SIGNING_PASSWORD}\n")
    return signing
