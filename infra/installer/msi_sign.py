"""Authenticode signing of the built MSI (``build --sign-pkcs12 FILE`` or ``--sign-cert PEM
--sign-key PEM``), with osslsigncode: the signature covers the MSI's streams and, with
``-add-msi-dse``, its metadata too (MsiDigitalSignatureEx), which Windows Installer checks.

No timestamp unless a timestamp server is given (``--sign-timestamp-url``): signing stays
offline. Without one the signature is valid only while the certificate is, so a release for
the fleet should have one. The signed MSI is verified before it is published, and the signer's
subject is returned as Windows shows it (``CN=Contoso Ltd, O=Contoso Ltd, C=DE``): the value an
agent's ``UPDATE_PUBLISHER`` pins.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from embedded_python import VerificationError, authenticode_signer
from msi_tools import BuildError, run

PKCS12_VARIABLE: Final = "LUNARIS_SIGN_PKCS12"
PASSWORD_FILE_VARIABLE: Final = "LUNARIS_SIGN_PASSWORD_FILE"  # noqa: S105 - a variable's name
DESCRIPTION: Final = "Lunaris Agent"
"""What Windows' UAC and SmartScreen prompts show as the program's name."""

_ONELINE_NAME: Final = re.compile(r"/([A-Za-z0-9][A-Za-z0-9.]*)=")
_ESCAPED_BYTE: Final = re.compile(r"\\x([0-9A-Fa-f]{2})")
WINDOWS_NAMES: Final[Mapping[str, str]] = {
    "CN": "CN",
    "OU": "OU",
    "O": "O",
    "L": "L",
    "ST": "S",
    "C": "C",
    "street": "STREET",
    "emailAddress": "E",
    "DC": "DC",
    "serialNumber": "SERIALNUMBER",
    "postalCode": "PostalCode",
    "title": "T",
    "GN": "G",
    "SN": "SN",
    "initials": "I",
    # What extended-validation code-signing certificates carry; Windows shows them as OIDs.
    "businessCategory": "OID.2.5.4.15",
    "jurisdictionC": "OID.1.3.6.1.4.1.311.60.2.1.3",
    "jurisdictionST": "OID.1.3.6.1.4.1.311.60.2.1.2",
    "jurisdictionL": "OID.1.3.6.1.4.1.311.60.2.1.1",
}
"""OpenSSL's short names for the attributes of a subject -> the names Windows shows."""
_NEEDS_QUOTES: Final = frozenset(',+="\n<>#;')


@dataclass(frozen=True)
class Signing:
    """The key and certificate to sign with: a PKCS#12 file, or a PEM certificate (with its
    chain) and a PEM key; ``password_file`` holds the password of either, if it has one."""

    pkcs12: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    """The roots the signature must chain to when it is checked; None: the system's bundle."""
    timestamp_url: str | None = None

    def __post_init__(self) -> None:
        if (self.pkcs12 is None) == (self.cert is None and self.key is None):
            raise ValueError("sign with a PKCS#12 file or with a certificate and a key")
        if self.pkcs12 is None and (self.cert is None or self.key is None):
            raise ValueError("a certificate and its key go together")

    def key_options(self) -> list[str]:
        if self.pkcs12 is not None:
            material = ["-pkcs12", str(self.pkcs12)]
        else:
            material = ["-certs", str(self.cert), "-key", str(self.key)]
        # -readpass: a password on the command line would be in the process list.
        password = [] if self.password_file is None else ["-readpass", str(self.password_file)]
        return [*material, *password]


def add_signing_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "Authenticode signing",
        f"optional; ${PKCS12_VARIABLE} and ${PASSWORD_FILE_VARIABLE} stand for the first and "
        "the third option",
    )
    group.add_argument("--sign-pkcs12", type=Path, metavar="FILE", help="key and certificate")
    group.add_argument("--sign-cert", type=Path, metavar="PEM", help="certificate and chain")
    group.add_argument("--sign-key", type=Path, metavar="PEM", help="the certificate's key")
    group.add_argument(
        "--sign-password-file", type=Path, metavar="FILE", help="the password of the key"
    )
    group.add_argument(
        "--sign-ca",
        type=Path,
        metavar="PEM",
        help="the roots the signature is checked against (default: the system's CA bundle)",
    )
    group.add_argument(
        "--sign-timestamp-url",
        metavar="URL",
        help="an RFC 3161 timestamp server (default: none, and no network)",
    )


def signing_from(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Signing | None:
    """The signing the options (and the environment) ask for; None: the MSI stays unsigned."""
    pkcs12 = args.sign_pkcs12 or _path_variable(PKCS12_VARIABLE)
    password_file = args.sign_password_file or _path_variable(PASSWORD_FILE_VARIABLE)
    if args.sign_cert is not None or args.sign_key is not None:
        if pkcs12 is not None:
            parser.error(f"--sign-pkcs12 (or ${PKCS12_VARIABLE}) or --sign-cert: not both")
        pkcs12 = None
    elif pkcs12 is None:
        if password_file or args.sign_ca or args.sign_timestamp_url:
            parser.error("nothing to sign with: give --sign-pkcs12 or --sign-cert and --sign-key")
        return None
    if args.sign_timestamp_url and not args.sign_timestamp_url.startswith(("http://", "https://")):
        parser.error("--sign-timestamp-url is an http(s) URL")
    try:
        signing = Signing(
            pkcs12=pkcs12,
            cert=args.sign_cert,
            key=args.sign_key,
            password_file=password_file,
            ca_file=args.sign_ca,
            timestamp_url=args.sign_timestamp_url,
        )
    except ValueError as error:
        parser.error(str(error))
    for path in (signing.pkcs12, signing.cert, signing.key, signing.password_file, signing.ca_file):
        if path is not None and not path.is_file():
            parser.error(f"{path} is not a file")
    return signing


def _path_variable(name: str) -> Path | None:
    value = os.environ.get(name, "")
    return Path(value) if value else None


def sign_msi(osslsigncode: str, unsigned: Path, signed: Path, signing: Signing) -> str:
    """Signs ``unsigned`` into ``signed`` and verifies the signature; returns the signer's
    subject as Windows shows it. Nothing is left at ``signed`` when either fails."""
    timestamp = [] if signing.timestamp_url is None else ["-ts", signing.timestamp_url]
    signed.unlink(missing_ok=True)
    try:
        run(
            [
                *(osslsigncode, "sign", *signing.key_options()),
                *("-n", DESCRIPTION, "-h", "sha256", "-add-msi-dse", *timestamp),
                *("-in", str(unsigned), "-out", str(signed)),
            ],
            capture=True,
        )
        subject = authenticode_signer(
            signed, ca_file=signing.ca_file, tsa_ca_file=None, osslsigncode=osslsigncode
        )
    except (BuildError, VerificationError) as error:
        signed.unlink(missing_ok=True)
        hint = "" if signing.ca_file else " (a private or test CA: give its root with --sign-ca)"
        raise BuildError(f"signing the MSI failed{hint}: {error}") from error
    return windows_subject(subject)


def windows_subject(oneline: str) -> str:
    """A subject as osslsigncode prints it (OpenSSL's one-line form, ``/C=DE/O=Contoso
    Ltd/CN=Contoso Ltd``) as Windows shows it (``CN=Contoso Ltd, O=Contoso Ltd, C=DE``: the
    other way round, Windows' names, a value with a comma or the like in double quotes)."""
    names = list(_ONELINE_NAME.finditer(oneline))
    if not names or names[0].start() != 0:
        raise BuildError(f"not a subject in OpenSSL's one-line form: {oneline!r}")
    parts = []
    for name, following in zip(names, [*names[1:], None], strict=True):
        end = following.start() if following is not None else len(oneline)
        value = _unescaped(oneline[name.end() : end])
        attribute = name.group(1)
        if attribute[0].isdigit():
            attribute = f"OID.{attribute}"  # OpenSSL knows no name for it; nor does Windows
        parts.append(f"{WINDOWS_NAMES.get(attribute, attribute)}={_quoted(value)}")
    return ", ".join(reversed(parts))


def _unescaped(value: str) -> str:
    """OpenSSL writes each byte of a non-ASCII UTF-8 value as ``\\xHH``."""
    raw = _ESCAPED_BYTE.sub(lambda match: chr(int(match.group(1), 16)), value)
    return raw.encode("latin-1", errors="replace").decode("utf-8", errors="replace")


def _quoted(value: str) -> str:
    if value == value.strip() and value and not _NEEDS_QUOTES & set(value):
        return value
    return '"' + value.replace('"', '""') + '"'
