"""What a ``winget upgrade --id`` (or ``winget install``) run did: the install-outcome contract.

Pure functions, no I/O: the runner hands over winget's output and exit code. The exit code is
weighed first, because it does not depend on the UI language; the text supplies what the code
cannot (the package id, the installer's own exit code, a printed HRESULT) and decides alone
when there is no code. Messages are read in every language winget's tables in
:mod:`lunaris_agent.winget.words` cover; the install log's own lines (``Successfully installed``,
``Installer failed with exit code: N``) are recognised in English, so a localised run is
classified by its exit code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal

from lunaris_agent.winget.hresults import WINGET_HRESULTS, describe_hresult, format_hresult
from lunaris_agent.winget.lines import (
    is_no_applicable_upgrade_message,
    is_no_installed_package_message,
    is_version_not_found_message,
    parse_hresult_line,
)
from lunaris_agent.winget.results import json_dict
from lunaris_agent.winget.text import clean_lines
from lunaris_agent.winget.words import fold_message

__all__ = ["InstallOutcome", "InstallOutcomeKind", "classify_install_output"]

InstallOutcomeKind = Literal[
    "success",
    "success_reboot_required",
    "no_applicable_upgrade",
    "not_found",
    "hash_mismatch",
    "installer_failed",
    "refused_unknown_version",
    "version_unavailable",
    "window_closed",
    "user_not_logged_on",
    "timeout",
    "error",
]
"""The contract's outcomes (winget_samples/README.md), plus ``version_unavailable`` (the exact
version a command named is no longer in the source), ``window_closed`` (not started: the
command's maintenance window had closed), ``user_not_logged_on`` (not started: the package is
in the profile of a user who is not logged on now) and ``timeout`` (winget was stopped after the
agent's time limit, so there is no output to classify)."""

_MAX_MESSAGE: Final = 1000


@dataclass(frozen=True, slots=True)
class InstallOutcome:
    """The install-outcome contract (winget_samples/README.md), plus a message for people."""

    install_outcome: InstallOutcomeKind
    package_id: str | None
    """The Id of winget's ``Found <Name> [<Id>]`` line, else the id that was asked for."""
    installer_exit_code: int | None
    """The installer's own code from ``Installer failed with exit code: N``."""
    hresult: str | None
    """Printed by winget, else its exit code, else implied by the message it printed."""
    message: str | None = None
    """The line that decided the outcome, or what went wrong around winget; None on success."""
    packages: tuple[InstallOutcome, ...] = ()
    """One outcome per package of a multi-package run (``(1/3) Found …``), in order."""

    @classmethod
    def not_run(
        cls, package_id: str, message: str, *, outcome: InstallOutcomeKind = "error"
    ) -> InstallOutcome:
        """An install that winget did not carry out (refused, no winget, could not start, or
        stopped at the time limit): no codes to report, only why."""
        return cls(
            install_outcome=outcome,
            package_id=package_id,
            installer_exit_code=None,
            hresult=None,
            message=message,
        )

    @property
    def succeeded(self) -> bool:
        return self.install_outcome in ("success", "success_reboot_required")

    def to_json_dict(self) -> dict[str, object]:
        return json_dict(self)


# How winget's result codes read as outcomes. The codes are APPINSTALLER_CLI_ERROR_* from
# winget-cli's AppInstallerErrors.h (doc/windows/package-manager/winget/returnCodes.md); where
# they are returned: UpdateFlow.cpp (no applicable upgrade, unknown version), WorkflowBase.cpp
# (no package found), InstallFlow.cpp ReportInstallerResult (an installer's exit code, mapped
# through the manifest's ExpectedReturnCodes or, for MSI/WiX/Burn/Inno, the defaults of
# ManifestCommon.cpp GetDefaultKnownReturnCodes: msiexec 1618 -> INSTALL_IN_PROGRESS,
# 3010 -> REBOOT_REQUIRED_TO_FINISH, 1641 -> REBOOT_INITIATED, 1602 -> CANCELLED_BY_USER, ...).
# A code not listed is read from the text, and is an error when the text says nothing.
_OUTCOME_BY_HRESULT: Final[Mapping[int, InstallOutcomeKind]] = {
    # Up to v1.6 winget exits with this after a 3010; from v1.7 it reports success (exit 0).
    0x8A150109: "success_reboot_required",
    # msiexec 1641: "the installer has initiated a restart", a success by Windows Installer's
    # definition; the package is installed once the PC is back.
    0x8A15010B: "success_reboot_required",
    0x8A15002B: "no_applicable_upgrade",  # UPDATE_NOT_APPLICABLE; the CLI's refusal of an
    # unknown installed version ends with it too, but only its text can tell them apart
    0x8A15004F: "no_applicable_upgrade",  # UPGRADE_VERSION_NOT_NEWER
    0x8A150010: "no_applicable_upgrade",  # NO_APPLICABLE_INSTALLER for this system
    0x8A150050: "refused_unknown_version",  # UPGRADE_VERSION_UNKNOWN (COM API / PowerShell)
    0x8A150014: "not_found",  # NO_APPLICATIONS_FOUND
    0x8A150017: "not_found",  # NO_MANIFEST_FOUND; after --version: version_unavailable
    0x8A150035: "not_found",  # NOT_ALL_PACKAGES_FOUND
    0x8A150011: "hash_mismatch",  # INSTALLER_HASH_MISMATCH
    0x8A150006: "installer_failed",  # SHELLEXEC_INSTALL_FAILED: an exe installer's failure
    0x8A150049: "installer_failed",  # MSI_INSTALL_FAILED
    0x8A150052: "installer_failed",  # PORTABLE_INSTALL_FAILED
    # The installer ran and its exit code was mapped: package or file in use, another install
    # in progress (msiexec 1618), disk full, reboot needed before installing, cancelled, ...
    **{
        code: "installer_failed"
        for code in WINGET_HRESULTS
        if 0x8A150101 <= code <= 0x8A1501FF and code not in (0x8A150109, 0x8A15010B)
    },
}

# The HRESULT winget returns after printing a message, when no code is printed with it.
_IMPLIED_HRESULT: Final[Mapping[InstallOutcomeKind, int]] = {
    "no_applicable_upgrade": 0x8A15002B,
    "refused_unknown_version": 0x8A15002B,  # the CLI's refusal; see UpdateFlow.cpp
    "not_found": 0x8A150014,
    "hash_mismatch": 0x8A150011,
    "version_unavailable": 0x8A150017,
}

_NO_MANIFEST_FOUND: Final = 0x8A150017

# The messages of the mapped installer exit codes (InstallFlow.cpp prints them before
# "Installer failed with exit code: N"): these texts are returnCodes.md's.
_MAPPED_MESSAGES: Final[Mapping[str, int]] = {
    fold_message(text): code
    for code, (_, text) in WINGET_HRESULTS.items()
    if 0x8A150101 <= code <= 0x8A1501FF
}

_INSTALLER_FAILED: Final = "Installer failed with exit code:"
_INSTALLER_RESULT_RE: Final = re.compile(
    r"(?P<hresult>0[xX][0-9a-fA-F]{8})\b.*|(?P<number>[-+]?\d+)\s*", re.DOTALL
)
_HASH_MISMATCH: Final = "Installer hash does not match"  # "…; this cannot be overridden…"
_SUCCESS: Final = fold_message("Successfully installed")  # InstallFlowInstallSuccess
# `winget install --id X` when X is in no source (NoPackageFound, WorkflowBase.cpp).
_NO_PACKAGE_FOUND: Final = frozenset({fold_message("No package found matching input criteria.")})
# "Found <Name> [<Id>] Version 1.2": the Id is the bracketed word before the version.
_FOUND_ID_RE: Final = re.compile(r"\S\s+\[(?P<id>[^\[\]\s]{2,})\](?:\s+\S+\s+\S+)?\s*$")
# "(2/5) Found …" starts each package of a multi-package run.
_PACKAGE_STEP_RE: Final = re.compile(r"^\s*\(\d+/\d+\)\s")


def classify_install_output(
    text: str,
    exit_code: int | None = None,
    package_id: str | None = None,
    *,
    version: str | None = None,
) -> InstallOutcome:
    """Classify one ``winget upgrade --id`` / ``winget install`` run.

    ``exit_code`` is winget's, signed or unsigned; ``package_id`` the id that was asked for,
    reported when the output does not print one (and, in a multi-package run, the package
    whose result leads); ``version`` the exact version asked for (``--version``), if any.
    Output of ``upgrade --all`` gives one outcome per package in ``packages``; the first
    failure (or the combined success) leads.
    """
    lines = clean_lines(text)
    blocks = _package_blocks(lines)
    if blocks is None:
        return _decide(_read(lines), exit_code, package_id, exact=version is not None)

    # A whole-run code belongs to the one package of a one-package run only. With more, it is
    # a summary (UPDATE_ALL_HAS_FAILURE) and each package is read from its text.
    normalised = None if exit_code is None else exit_code & 0xFFFFFFFF
    block_exit_code = exit_code if len(blocks) == 1 else (0 if normalised == 0 else None)
    results = tuple(_decide(_read(block), block_exit_code, None) for block in blocks)
    wanted = next((result for result in results if _same_id(result.package_id, package_id)), None)
    failed = [result for result in results if not result.succeeded]
    if wanted is not None:
        lead = wanted
    elif len(results) == 1:
        lead = replace(results[0], package_id=results[0].package_id or package_id)
    elif failed:
        lead = failed[0]
    else:
        rebooting = any(r.install_outcome == "success_reboot_required" for r in results)
        lead = InstallOutcome(
            install_outcome="success_reboot_required" if rebooting else "success",
            package_id=package_id,
            installer_exit_code=None,
            hresult=None,
        )
    return replace(lead, packages=results)


def _same_id(found: str | None, asked: str | None) -> bool:
    # winget matches ids case-insensitively.
    return found is not None and asked is not None and found.casefold() == asked.casefold()


def _package_blocks(lines: Sequence[str]) -> list[list[str]] | None:
    """The lines of each package of a multi-package run, or None for a single-package run.

    What comes before the first ``(1/N)`` (the upgrade table, dependency lists) is no result.
    """
    starts = [index for index, line in enumerate(lines) if _PACKAGE_STEP_RE.match(line)]
    if not starts:
        return None
    ends = [*starts[1:], len(lines)]
    return [list(lines[start:end]) for start, end in zip(starts, ends, strict=True)]


@dataclass(frozen=True, slots=True)
class _Reading:
    """What the text of one package's run says, before the exit code is weighed."""

    outcome: InstallOutcomeKind | None  # of the last line that decides anything
    package_id: str | None
    installer_exit_code: int | None
    hresult: str | None  # printed, or implied by the message that decided
    hresult_printed: bool
    message: str | None


def _read(lines: Sequence[str]) -> _Reading:
    outcome: InstallOutcomeKind | None = None
    package_id: str | None = None
    installer_exit_code: int | None = None
    printed: str | None = None  # an HRESULT printed in the output
    mapped: int | None = None  # the code of a mapped installer message
    message: str | None = None
    after_mapped_message = False
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        folded = fold_message(line)
        hresult_line = parse_hresult_line(line)
        line_outcome: InstallOutcomeKind | None
        if line.startswith(_INSTALLER_FAILED):
            result = _INSTALLER_RESULT_RE.fullmatch(line.removeprefix(_INSTALLER_FAILED).strip())
            if result is not None and result["hresult"]:
                printed = format_hresult(int(result["hresult"], 16))
            elif result is not None:
                installer_exit_code = int(result["number"])
            # After a mapped message ("Another installation is already in progress…", "Your PC
            # will restart…") this line only adds the installer's code: the message said it.
            line_outcome = outcome if after_mapped_message else "installer_failed"
        elif hresult_line is not None:
            printed = hresult_line[0]
            line_outcome = _OUTCOME_BY_HRESULT.get(int(printed, 16), "error")
        elif folded in _MAPPED_MESSAGES:
            mapped = _MAPPED_MESSAGES[folded]
            line_outcome = _OUTCOME_BY_HRESULT[mapped]
        elif line.startswith(_HASH_MISMATCH):
            line_outcome = "hash_mismatch"
        elif is_no_applicable_upgrade_message(line):
            line_outcome = "no_applicable_upgrade"
        elif is_version_not_found_message(line):
            line_outcome = "version_unavailable"
        elif is_no_installed_package_message(line) or folded in _NO_PACKAGE_FOUND:
            line_outcome = "not_found"
        elif _is_unknown_version_refusal(line):
            line_outcome = "refused_unknown_version"
        elif folded == _SUCCESS:
            line_outcome = "success"
        else:
            if found := _FOUND_ID_RE.search(line):
                package_id = found["id"]
            continue
        after_mapped_message = folded in _MAPPED_MESSAGES
        if line_outcome != outcome or message is None:
            message = line[:_MAX_MESSAGE]
        outcome = line_outcome
    return _Reading(
        outcome=outcome,
        package_id=package_id,
        installer_exit_code=installer_exit_code,
        hresult=printed or _implied_hresult(outcome, mapped, installer_exit_code),
        hresult_printed=printed is not None,
        message=None if outcome == "success" else message,
    )


def _implied_hresult(
    outcome: InstallOutcomeKind | None, mapped: int | None, installer_exit_code: int | None
) -> str | None:
    """The code winget's source returns for the printed message, when none is printed."""
    if outcome is None:
        return None
    if outcome == "installer_failed":
        if mapped is not None and _OUTCOME_BY_HRESULT[mapped] == "installer_failed":
            return format_hresult(mapped)  # "Another installation is already in progress…"
        return None
    if outcome == "success_reboot_required":
        # With the installer's code printed, winget terminated with the mapped HRESULT (v1.6
        # and older for a reboot to finish, any version for a reboot initiated). From v1.7 a
        # reboot to finish is only a warning, and winget exits 0.
        return format_hresult(mapped) if mapped and installer_exit_code is not None else None
    implied = _IMPLIED_HRESULT.get(outcome)
    return None if implied is None else format_hresult(implied)


def _is_unknown_version_refusal(line: str) -> bool:
    """``This package's version number cannot be determined. To upgrade it anyway, add the
    argument --include-unknown…`` in any language (the flag is not translated).

    The scan's trailer names the flag too, but always with a count.
    """
    return "--include-unknown" in line and not any(char.isdigit() for char in line)


def _decide(
    reading: _Reading, exit_code: int | None, package_id: str | None, *, exact: bool = False
) -> InstallOutcome:
    """Weigh the exit code (language-independent) against what the text said. ``exact``: the
    run asked for one version (``--version``)."""
    code = None if exit_code is None else exit_code & 0xFFFFFFFF
    outcome = reading.outcome
    hresult = reading.hresult
    message = reading.message
    if code == _NO_MANIFEST_FOUND and (exact or outcome == "version_unavailable"):
        # The one manifest a run looks for by version (GetManifest in WorkflowBase.cpp).
        outcome = "version_unavailable"
        hresult = format_hresult(code)
        message = message or "the version asked for is not in the source"
    elif code:
        # winget exits with the HRESULT it terminated with; a code it is known to use for an
        # outcome decides, any other leaves the decision to the text.
        outcome = _OUTCOME_BY_HRESULT.get(code, outcome or "error")
        hresult = reading.hresult if reading.hresult_printed else format_hresult(code)
        if message is None and outcome != "success":
            message = f"winget exited with {describe_hresult(code)}"
    elif outcome is None:
        if code == 0:
            outcome = "success"  # a localised success line: exit code 0 says it all
        else:
            outcome = "error"
            message = "winget's output shows no result"
    return InstallOutcome(
        install_outcome=outcome,
        package_id=reading.package_id or package_id,
        installer_exit_code=reading.installer_exit_code,
        hresult=hresult,
        message=message,
    )
