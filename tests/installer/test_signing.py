"""Authenticode signing in the MSI build: the session's build signs with a throwaway
certificate as the environment asks; a copy of its unsigned MSI is signed again here through
the function the build uses, and ``osslsigncode verify`` reads the signatures back."""

import asyncio
import shutil
import subprocess
from pathlib import Path

# build_msi and msi_sign: from infra/installer, which tests/installer/helpers.py puts on
# sys.path (the conftest imports it before this module).
import build_msi
import msi_sign
import pytest
from msi_sign import Signing, sign_msi, windows_subject
from msi_tools import BuildError

from lunaris_agent.selfupdate.files import UpdateRefused
from lunaris_agent.selfupdate.signature import OsslsigncodeVerifier, check_publisher
from tests.installer.helpers import SIGNER_SUBJECT, Built, CodeSigning

pytestmark = pytest.mark.e2e

ONELINE_SUBJECT = "/C=DE/ST=Bayern/O=Lunaris Test, Ltd/CN=Lunaris Test Publisher"
"""The test certificate's subject as osslsigncode prints it."""


def verify(msi: Path, ca_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["osslsigncode", "verify", "-CAfile", str(ca_file), "-in", str(msi)],
        capture_output=True,
        text=True,
        check=False,
    )


def unsigned_copy(built: Built, directory: Path) -> Path:
    """The build's MSI before it was signed (the build's last step signs a copy of it)."""
    copy = directory / "unsigned.msi"
    shutil.copyfile(built.work / "agent.msi", copy)
    return copy


def test_the_build_signs_as_the_environment_asks_and_prints_the_signer(
    built: Built, code_signing: CodeSigning
) -> None:
    checked = verify(built.msi, code_signing.cert)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"Subject: {ONELINE_SUBJECT}" in checked.stdout
    assert "Calculated MsiDigitalSignatureEx" in checked.stdout  # -add-msi-dse
    assert "Text description: Lunaris Agent" in checked.stdout
    assert "Timestamp is not available" in checked.stdout  # none unless asked: no network
    assert f"signed by {SIGNER_SUBJECT} (an agent's UPDATE_PUBLISHER)" in built.output


def test_an_agent_pinned_to_the_printed_signer_takes_the_msi_and_refuses_it_unsigned(
    built: Built, code_signing: CodeSigning
) -> None:
    # The agent's own check (its Linux verifier, with the test certificate as the root).
    verifier = OsslsigncodeVerifier(ca_file=code_signing.cert)
    asyncio.run(check_publisher(verifier, built.msi, SIGNER_SUBJECT))
    with pytest.raises(UpdateRefused, match="no valid signature"):
        asyncio.run(check_publisher(verifier, built.work / "agent.msi", SIGNER_SUBJECT))


def test_a_pem_certificate_and_key_sign_a_copy(
    built: Built, code_signing: CodeSigning, tmp_path: Path
) -> None:
    unsigned = unsigned_copy(built, tmp_path)
    assert verify(unsigned, code_signing.cert).returncode != 0  # nothing to verify yet
    signing = Signing(
        cert=code_signing.cert,
        key=code_signing.key,
        password_file=code_signing.password_file,
        ca_file=code_signing.cert,
    )
    signed = tmp_path / "signed.msi"

    assert sign_msi("osslsigncode", unsigned, signed, signing) == SIGNER_SUBJECT

    checked = verify(signed, code_signing.cert)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"Subject: {ONELINE_SUBJECT}" in checked.stdout


def test_a_signature_no_trusted_root_vouches_for_is_not_published(
    built: Built, code_signing: CodeSigning, tmp_path: Path
) -> None:
    signing = Signing(pkcs12=code_signing.pkcs12, password_file=code_signing.password_file)
    signed = tmp_path / "signed.msi"
    # The system's CA bundle does not hold a self-signed certificate.
    with pytest.raises(BuildError, match=r"--sign-ca.*does not verify"):
        sign_msi("osslsigncode", unsigned_copy(built, tmp_path), signed, signing)
    assert not signed.exists()


def test_a_wrong_password_stops_the_build(
    built: Built, code_signing: CodeSigning, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not it\n")
    signing = Signing(pkcs12=code_signing.pkcs12, password_file=wrong, ca_file=code_signing.cert)
    signed = tmp_path / "signed.msi"
    with pytest.raises(BuildError, match="osslsigncode failed"):
        sign_msi("osslsigncode", unsigned_copy(built, tmp_path), signed, signing)
    assert not signed.exists()


def signing_of(*argv: str) -> Signing | None:
    return build_msi.parse_options(list(argv)).signing


def test_signing_is_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(msi_sign.PKCS12_VARIABLE, raising=False)
    monkeypatch.delenv(msi_sign.PASSWORD_FILE_VARIABLE, raising=False)
    assert signing_of() is None


def test_the_environment_names_the_pkcs12_file_and_its_password(
    code_signing: CodeSigning, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(msi_sign.PKCS12_VARIABLE, str(code_signing.pkcs12))
    monkeypatch.setenv(msi_sign.PASSWORD_FILE_VARIABLE, str(code_signing.password_file))
    url = "http://timestamp.example.com"
    assert signing_of("--sign-timestamp-url", url) == Signing(
        pkcs12=code_signing.pkcs12, password_file=code_signing.password_file, timestamp_url=url
    )


@pytest.mark.parametrize(
    ("variables", "argv", "message"),
    [
        ({}, ["--sign-cert", "{cert}"], "a certificate and its key go together"),
        (
            {"LUNARIS_SIGN_PKCS12": "{pkcs12}"},
            ["--sign-cert", "{cert}", "--sign-key", "{key}"],
            "not both",
        ),
        ({}, ["--sign-timestamp-url", "http://ts.example.com"], "nothing to sign with"),
        ({"LUNARIS_SIGN_PASSWORD_FILE": "{password}"}, [], "nothing to sign with"),
        ({}, ["--sign-pkcs12", "{pkcs12}", "--sign-timestamp-url", "ts.example.com"], "http"),
        ({}, ["--sign-pkcs12", "{pkcs12}.missing"], "is not a file"),
    ],
)
def test_signing_options_that_do_not_go_together_are_refused(
    code_signing: CodeSigning,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variables: dict[str, str],
    argv: list[str],
    message: str,
) -> None:
    paths = {
        "cert": code_signing.cert,
        "key": code_signing.key,
        "pkcs12": code_signing.pkcs12,
        "password": code_signing.password_file,
    }
    for name in (msi_sign.PKCS12_VARIABLE, msi_sign.PASSWORD_FILE_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value.format(**paths))
    with pytest.raises(SystemExit):
        signing_of(*(arg.format(**paths) for arg in argv))
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("oneline", "windows"),
    [
        ("/C=DE/O=Contoso Ltd/CN=Contoso Ltd", "CN=Contoso Ltd, O=Contoso Ltd, C=DE"),
        (ONELINE_SUBJECT, SIGNER_SUBJECT),
        (
            "/C=US/ST=Oregon/L=Beaverton/O=Python Software Foundation/CN=PSF",
            "CN=PSF, O=Python Software Foundation, L=Beaverton, S=Oregon, C=US",
        ),
        (
            "/jurisdictionC=DE/businessCategory=Private Organization/serialNumber=HRB 1"
            "/C=DE/O=M\\xC3\\xBCller GmbH/CN=M\\xC3\\xBCller GmbH",
            "CN=Müller GmbH, O=Müller GmbH, C=DE, SERIALNUMBER=HRB 1, "
            "OID.2.5.4.15=Private Organization, OID.1.3.6.1.4.1.311.60.2.1.3=DE",
        ),
        ('/CN=Say "hi"/emailAddress=a@example.com', 'E=a@example.com, CN="Say ""hi"""'),
        ("/1.2.3.4=x/CN=y", "CN=y, OID.1.2.3.4=x"),
    ],
)
def test_the_signer_is_printed_as_windows_shows_it(oneline: str, windows: str) -> None:
    assert windows_subject(oneline) == windows
