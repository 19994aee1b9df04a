"""The pinned publisher: an agent MSI runs only with a valid Authenticode signature by exactly
that signer. Real MSIs (wixl), throwaway certificates, osslsigncode."""

from pathlib import Path

import pytest

from lunaris_agent.selfupdate.files import UpdateRefused
from lunaris_agent.selfupdate.signature import (
    OsslsigncodeVerifier,
    SignatureUnverified,
    check_publisher,
    windows_subject,
)
from tests.agent.self_update_support import build_msi, make_certificate, sign

pytestmark = pytest.mark.e2e

PUBLISHER = "CN=Lunaris Test Publisher, O=Lunaris"
"""As Windows writes the subject of ``/O=Lunaris/CN=Lunaris Test Publisher``."""


@pytest.fixture(scope="module")
def msis(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("signed")
    msi = build_msi(directory)
    ours = make_certificate(directory / "ours", "/O=Lunaris/CN=Lunaris Test Publisher")
    theirs = make_certificate(directory / "theirs", "/O=Someone Else/CN=Lunaris Test Publisher")
    return {
        "unsigned": msi,
        "ours": sign(msi, ours, directory / "ours.msi"),
        "theirs": sign(msi, theirs, directory / "theirs.msi"),
        "our_ca": ours.cert,
        "their_ca": theirs.cert,
    }


def trusting(*cas: Path) -> OsslsigncodeVerifier:
    bundle = cas[0].parent.parent / "bundle.pem"
    bundle.write_bytes(b"".join(ca.read_bytes() for ca in cas))
    return OsslsigncodeVerifier(ca_file=bundle)


async def test_the_pinned_signer_is_accepted(msis: dict[str, Path]) -> None:
    verifier = trusting(msis["our_ca"], msis["their_ca"])
    assert await verifier.signer(msis["ours"]) == PUBLISHER
    await check_publisher(verifier, msis["ours"], PUBLISHER)


async def test_an_unsigned_msi_is_refused(msis: dict[str, Path]) -> None:
    verifier = trusting(msis["our_ca"])
    with pytest.raises(UpdateRefused) as refused:
        await check_publisher(verifier, msis["unsigned"], PUBLISHER)
    assert refused.value.outcome == "signature_refused"
    assert "no valid signature" in refused.value.message


async def test_another_signer_is_refused_even_with_a_valid_signature(
    msis: dict[str, Path],
) -> None:
    verifier = trusting(msis["our_ca"], msis["their_ca"])
    assert await verifier.signer(msis["theirs"]) == "CN=Lunaris Test Publisher, O=Someone Else"
    with pytest.raises(UpdateRefused) as refused:
        await check_publisher(verifier, msis["theirs"], PUBLISHER)
    assert refused.value.outcome == "signature_refused"
    assert "Someone Else" in refused.value.message


async def test_a_signer_nobody_trusts_here_is_refused(msis: dict[str, Path]) -> None:
    """The right name on a certificate that leads to no trusted root: not verified."""
    with pytest.raises(UpdateRefused) as refused:
        await check_publisher(trusting(msis["their_ca"]), msis["ours"], PUBLISHER)
    assert refused.value.outcome == "signature_refused"


async def test_a_tampered_msi_is_refused(msis: dict[str, Path], tmp_path: Path) -> None:
    tampered = tmp_path / "tampered.msi"
    content = bytearray(msis["ours"].read_bytes())
    content[5000] ^= 0xFF
    tampered.write_bytes(bytes(content))
    with pytest.raises(UpdateRefused):
        await check_publisher(trusting(msis["our_ca"]), tampered, PUBLISHER)


async def test_no_verifier_here_is_a_refusal(msis: dict[str, Path]) -> None:
    verifier = OsslsigncodeVerifier(executable="/nonexistent/osslsigncode")
    with pytest.raises(SignatureUnverified, match="cannot run"):
        await verifier.signer(msis["ours"])
    with pytest.raises(UpdateRefused):
        await check_publisher(verifier, msis["ours"], PUBLISHER)


def test_subjects_are_written_as_windows_writes_them() -> None:
    assert windows_subject("/C=US/ST=Washington/O=Contoso, Ltd/CN=Contoso") == (
        'CN=Contoso, O="Contoso, Ltd", S=Washington, C=US'
    )
    assert windows_subject("/CN=A/emailAddress=it@example.com") == "E=it@example.com, CN=A"
