"""Install outcomes, judged against every install sample of the corpus (winget_samples/README.md,
"The install-outcome contract"), and the exit codes winget ends an install with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lunaris_agent.winget.outcome import InstallOutcome, classify_install_output

SAMPLES = Path(__file__).parent / "winget_samples"
# The fields the contract judges; "note" and "message" are for people.
JUDGED = ("install_outcome", "package_id", "installer_exit_code", "hresult")


def _expected(sample: Path) -> dict[str, Any]:
    path = sample.with_name(sample.name.removesuffix(".txt") + ".expected.json")
    expected: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return expected


def _read(sample: Path) -> str:
    return sample.read_bytes().decode("utf-8", errors="replace")


INSTALL_SAMPLES = sorted(p for p in SAMPLES.glob("*.txt") if "install_outcome" in _expected(p))
# Scans whose `--all` install log was recorded for reference (047, 048).
INSTALL_PHASE_SAMPLES = sorted(p for p in SAMPLES.glob("*.txt") if "install_phase" in _expected(p))


def judged(outcome: InstallOutcome) -> dict[str, object]:
    got = outcome.to_json_dict()
    return {key: got[key] for key in JUDGED}


def test_the_corpus_has_install_samples() -> None:
    assert len(INSTALL_SAMPLES) >= 11
    assert len(INSTALL_PHASE_SAMPLES) == 2


@pytest.mark.parametrize("sample", INSTALL_SAMPLES, ids=lambda p: p.stem)
def test_install_sample(sample: Path) -> None:
    expected = _expected(sample)
    assert judged(classify_install_output(_read(sample))) == {key: expected[key] for key in JUDGED}


@pytest.mark.parametrize("sample", INSTALL_PHASE_SAMPLES, ids=lambda p: p.stem)
def test_install_phase_after_an_upgrade_table(sample: Path) -> None:
    expected = _expected(sample)["install_phase"]
    outcome = classify_install_output(_read(sample))
    assert judged(outcome) == {key: expected[key] for key in JUDGED}
    assert [judged(package) for package in outcome.packages] == [judged(outcome)]


def test_the_judge_can_fail() -> None:
    sample = SAMPLES / "051-upgrade-one-row-then-id-failed-2008-b-upgrade.txt"
    got = judged(classify_install_output(_read(sample)))
    assert got != {**got, "installer_exit_code": 2009}


def test_to_json_dict() -> None:
    outcome = classify_install_output(_read(SAMPLES / "046-upgrade-id-hash-mismatch-admin.txt"))
    assert outcome.to_json_dict() == {
        "install_outcome": "hash_mismatch",
        "package_id": "Nlitesoft.NTLite",
        "installer_exit_code": None,
        "hresult": "0x8A150011",
        "message": "Installer hash does not match; this cannot be overridden when running as admin",
        "packages": [],
    }
    assert not outcome.succeeded


# --------------------------------------------------------------------------------------------
# Exit codes: winget's HRESULT, signed (PowerShell) or unsigned (Python on Windows)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exit_code", "outcome", "hresult"),
    [
        (0, "success", None),
        (-1978334967, "success_reboot_required", "0x8A150109"),  # v1.6 and older, after 3010
        (0x8A15010B, "success_reboot_required", "0x8A15010B"),  # msiexec 1641: restarting
        (-1978335189, "no_applicable_upgrade", "0x8A15002B"),
        (0x8A15004F, "no_applicable_upgrade", "0x8A15004F"),
        (0x8A150010, "no_applicable_upgrade", "0x8A150010"),
        (0x8A150050, "refused_unknown_version", "0x8A150050"),
        (-1978335212, "not_found", "0x8A150014"),
        (2316632081, "hash_mismatch", "0x8A150011"),
        (0x8A150006, "installer_failed", "0x8A150006"),
        (0x8A150049, "installer_failed", "0x8A150049"),
        (-1978334974, "installer_failed", "0x8A150102"),  # msiexec 1618: another install
        (0x8A15010A, "installer_failed", "0x8A15010A"),  # reboot first, then retry
        (0x8A150068, "error", "0x8A150068"),  # pinned
        (0x8A150046, "error", "0x8A150046"),  # source agreements
        (1, "error", "0x00000001"),
    ],
)
def test_the_exit_code_decides_when_the_text_is_silent(
    exit_code: int, outcome: str, hresult: str | None
) -> None:
    # A localised run: nothing the text recognisers know, only winget's "Found" line.
    text = "Gefunden Signal [OpenWhisperSystems.Signal] Version 5.43.0\nUnbekannter Text\n"
    result = classify_install_output(text, exit_code, "OpenWhisperSystems.Signal")
    assert (result.install_outcome, result.hresult) == (outcome, hresult)
    assert result.package_id == "OpenWhisperSystems.Signal"
    assert result.installer_exit_code is None
    if outcome == "success":
        assert result.message is None
    else:
        assert result.message is not None
        assert result.message.startswith(f"winget exited with {hresult}")


def test_without_exit_code_or_known_text_the_outcome_is_an_error() -> None:
    result = classify_install_output("", None, "Vendor.App")
    assert judged(result) == {
        "install_outcome": "error",
        "package_id": "Vendor.App",
        "installer_exit_code": None,
        "hresult": None,
    }


def test_exit_code_adds_the_hresult_to_the_installers_own_code() -> None:
    text = _read(SAMPLES / "051-upgrade-one-row-then-id-failed-2008-b-upgrade.txt")
    assert judged(classify_install_output(text, -1978335226)) == {
        "install_outcome": "installer_failed",
        "package_id": "Microsoft.WindowsADK",
        "installer_exit_code": 2008,
        "hresult": "0x8A150006",
    }


def test_a_printed_hresult_is_kept_over_the_exit_code() -> None:
    text = _read(SAMPLES / "053-install-upgrade-path-hresult-exit-code.txt")
    result = classify_install_output(text, 0x8A150003)
    assert (result.install_outcome, result.hresult) == ("installer_failed", "0x80070422")


def test_text_decides_when_winget_exits_zero() -> None:
    # Before v1.6 `upgrade --id` of a current package exited 0 (microsoft/winget-cli#3538).
    text = _read(SAMPLES / "036-upgrade-id-no-available-upgrade.txt")
    assert judged(classify_install_output(text, 0, "Microsoft.PowerShell")) == {
        "install_outcome": "no_applicable_upgrade",
        "package_id": "Microsoft.PowerShell",
        "installer_exit_code": None,
        "hresult": "0x8A15002B",
    }


# --------------------------------------------------------------------------------------------
# Installer exit codes winget maps (InstallFlow.cpp ReportInstallerResult prints the mapped
# message, then "Installer failed with exit code: N"). The texts are winget's own strings.
# --------------------------------------------------------------------------------------------

_STARTED = """\
Found Example App [Example.App] Version 2.0.0
This application is licensed to you by its owner.
Microsoft is not responsible for, nor does it grant any licenses to, third-party packages.
Successfully verified installer hash
Starting package install...
"""


def test_another_install_in_progress() -> None:
    text = _STARTED + (
        "Another installation is already in progress. Try again later.\n"
        "Installer failed with exit code: 1618\n"
    )
    expected = {
        "install_outcome": "installer_failed",
        "package_id": "Example.App",
        "installer_exit_code": 1618,
        "hresult": "0x8A150102",
    }
    assert judged(classify_install_output(text)) == expected
    assert judged(classify_install_output(text, -1978334974)) == expected
    result = classify_install_output(text)
    assert result.message == "Another installation is already in progress. Try again later."


def test_reboot_to_finish_up_to_v1_6() -> None:
    text = _STARTED + (
        "Installer failed with exit code: 3010\nRestart your PC to finish installation.\n"
    )
    expected = {
        "install_outcome": "success_reboot_required",
        "package_id": "Example.App",
        "installer_exit_code": 3010,
        "hresult": "0x8A150109",
    }
    assert judged(classify_install_output(text)) == expected
    assert judged(classify_install_output(text, 0x8A150109)) == expected
    assert classify_install_output(text).succeeded


def test_reboot_to_finish_from_v1_7_is_a_warning_and_exit_code_zero() -> None:
    text = _STARTED + "Restart your PC to finish installation.\n"
    expected = {
        "install_outcome": "success_reboot_required",
        "package_id": "Example.App",
        "installer_exit_code": None,
        "hresult": None,
    }
    assert judged(classify_install_output(text)) == expected
    assert judged(classify_install_output(text, 0)) == expected


def test_reboot_initiated_by_the_installer_is_a_success() -> None:
    text = _STARTED + (
        "Your PC will restart to finish installation.\nInstaller failed with exit code: 1641\n"
    )
    assert judged(classify_install_output(text)) == {
        "install_outcome": "success_reboot_required",
        "package_id": "Example.App",
        "installer_exit_code": 1641,
        "hresult": "0x8A15010B",
    }


def test_reboot_required_before_installing_is_a_failure() -> None:
    text = _STARTED + (
        "Installation failed. Restart your PC then try again.\nInstaller failed with exit code: 8\n"
    )
    assert judged(classify_install_output(text)) == {
        "install_outcome": "installer_failed",
        "package_id": "Example.App",
        "installer_exit_code": 8,
        "hresult": "0x8A15010A",
    }


def test_a_winget_error_line_during_an_install() -> None:
    text = (
        "Failed when searching source: winget\n"
        "0x8a15000f : Data required by the source is missing\n"
    )
    result = classify_install_output(text, -1978335217, "Example.App")
    assert judged(result) == {
        "install_outcome": "error",
        "package_id": "Example.App",
        "installer_exit_code": None,
        "hresult": "0x8A15000F",
    }
    assert result.message == "0x8a15000f : Data required by the source is missing"


def test_a_package_found_in_no_source() -> None:
    result = classify_install_output("No package found matching input criteria.\n")
    assert (result.install_outcome, result.hresult) == ("not_found", "0x8A150014")


# --------------------------------------------------------------------------------------------
# Multi-package runs: one outcome per "(i/N) Found …" block
# --------------------------------------------------------------------------------------------


def _as_step(sample: str, step: str) -> str:
    """A single-package log as one step of `upgrade --all`: "(i/N) " before its Found line."""
    return step + " " + _read(SAMPLES / sample).lstrip()


def test_each_package_of_an_upgrade_all_run_has_its_outcome() -> None:
    text = (
        _read(SAMPLES / "048-upgrade-uhr-hash-mismatch-escaped-progress.txt").split("(1/1)")[0]
        + _as_step("033-upgrade-id-success-progress.txt", "(1/3)")
        + "\n"
        + _as_step("046-upgrade-id-hash-mismatch-admin.txt", "(2/3)")
        + "\n"
        + _as_step("051-upgrade-one-row-then-id-failed-2008-b-upgrade.txt", "(3/3)")
    )
    result = classify_install_output(text, -1978335188)  # UPDATE_ALL_HAS_FAILURE
    assert [judged(package) for package in result.packages] == [
        {
            "install_outcome": "success",
            "package_id": "OpenWhisperSystems.Signal",
            "installer_exit_code": None,
            "hresult": None,
        },
        {
            "install_outcome": "hash_mismatch",
            "package_id": "Nlitesoft.NTLite",
            "installer_exit_code": None,
            "hresult": "0x8A150011",
        },
        {
            "install_outcome": "installer_failed",
            "package_id": "Microsoft.WindowsADK",
            "installer_exit_code": 2008,
            "hresult": None,
        },
    ]
    # The first failure leads, unless a package is asked for.
    assert judged(result) == judged(result.packages[1])
    asked = classify_install_output(text, -1978335188, "openwhispersystems.signal")
    assert judged(asked) == judged(result.packages[0])
    assert asked.packages == result.packages


def test_an_upgrade_all_run_that_succeeded() -> None:
    text = _as_step("033-upgrade-id-success-progress.txt", "(1/2)") + _as_step(
        "054-install-success-no-download-line.txt", "(2/2)"
    )
    result = classify_install_output(text, 0)
    assert judged(result) == {
        "install_outcome": "success",
        "package_id": None,
        "installer_exit_code": None,
        "hresult": None,
    }
    assert [package.package_id for package in result.packages] == [
        "OpenWhisperSystems.Signal",
        "Microsoft.Office",
    ]
    assert all(package.succeeded for package in result.packages)


@pytest.mark.parametrize(
    "line",
    [
        "No version found matching: 7.0.0",
        "Es wurde keine übereinstimmende Version gefunden: 7.0.0",
        "Aucune version correspondante trouvée : 7.0.0",
        "一致するバージョンが見つかりません: 7.0.0",
        "找不到匹配的版本: 7.0.0",
    ],
)
def test_a_version_not_in_the_source_in_every_language(line: str) -> None:
    # On POSIX an exit code keeps its low byte only (0x17): the text decides.
    for exit_code, hresult in ((0x8A150017, "0x8A150017"), (0x17, "0x00000017"), (None, None)):
        outcome = classify_install_output(line + "\n", exit_code, "Vendor.App", version="7.0.0")
        assert outcome.install_outcome == "version_unavailable", exit_code
        assert outcome.hresult == (hresult or "0x8A150017")  # without a code, the implied one
        assert outcome.message == line
        assert not outcome.succeeded


def test_no_manifest_found_is_version_unavailable_only_when_a_version_was_asked_for() -> None:
    silent = "Found Vendor App [Vendor.App]\n"
    exact = classify_install_output(silent, 0x8A150017, "Vendor.App", version="7.0.0")
    assert exact.install_outcome == "version_unavailable"
    newest = classify_install_output(silent, 0x8A150017, "Vendor.App")
    assert newest.install_outcome == "not_found"
