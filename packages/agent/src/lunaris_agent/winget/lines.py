"""What one line of winget's output is: an HRESULT, a trailer (``N upgrades available.``), the
explicit-targeting title, a "nothing to upgrade" message, the start of an install log, a row;
and the failure the output ends in."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from lunaris_agent.winget.results import ScanFailure
from lunaris_agent.winget.words import (
    AGREEMENT_DECLINED,
    COUNT_RES,
    EXPLICIT_KEYWORDS,
    EXPLICIT_TITLES,
    FATAL_PREFIXES,
    NO_APPLICABLE_UPGRADE,
    NO_INSTALLED_PACKAGE,
    NOTHING_MESSAGES,
    SEARCH_FAILURE_WARNINGS,
    TRAILER_FLAGS,
    VERSION_NOT_FOUND,
    fold_message,
)

_HRESULT_LINE_RE: Final = re.compile(r"^\s*0[xX]([0-9a-fA-F]{8})\s*:\s*(.*?)\s*$")
# "[Y] Yes  [N] No: n" in any language: declined when the answer is the second choice.
_PROMPT_RE: Final = re.compile(r"^\s*\[(\w)\]\s*\S+\s+\[(\w)\]\s*\S+\s*:\s*(\S+)\s*$")
# "(1/3) Found Name [Id] Version 1.2" starts the install log of `upgrade --all`.
_INSTALL_STEP_RE: Final = re.compile(r"^\(\d+/\d+\)\s")
_FOUND_LINE_RE: Final = re.compile(r"\S\s+\[[^\[\]\s]{2,}\](?:\s|$)")
_DOTTED_NUMBER_RE: Final = re.compile(r"\d+\.\d+")


def parse_hresult_line(line: str) -> tuple[str, str] | None:
    """``0x8a15000f : Data required…`` -> ``("0x8A15000F", "Data required…")``."""
    match = _HRESULT_LINE_RE.match(line)
    if match is None:
        return None
    return f"0x{match.group(1).upper()}", match.group(2)


def is_explicit_targeting_title(line: str) -> bool:
    """The title above the second table (packages that need ``upgrade --id``), any language."""
    folded = fold_message(line)
    if not folded or looks_like_row(line):
        return False
    return folded in EXPLICIT_TITLES or any(word in folded for word in EXPLICIT_KEYWORDS)


def upgrade_count(line: str) -> int | None:
    """The N of the ``N upgrades available.`` trailer (localised), else None."""
    folded = fold_message(line)
    for pattern in COUNT_RES:
        match = pattern.fullmatch(folded)
        if match is not None:
            return int(match.group(1))
    return None


def is_nothing_to_upgrade(line: str) -> bool:
    """A message that means "no updates": not-found / not-applicable / unknown-count lines."""
    return (
        fold_message(line) in NOTHING_MESSAGES
        or any(flag in line for flag in TRAILER_FLAGS)
        or upgrade_count(line) == 0
    )


def is_no_installed_package_message(line: str) -> bool:
    """``No installed package found matching input criteria.`` (localised)."""
    return fold_message(line) in NO_INSTALLED_PACKAGE


def is_no_applicable_upgrade_message(line: str) -> bool:
    """``No applicable upgrade found.``, ``No available upgrade found.`` and their reasons."""
    return fold_message(line) in NO_APPLICABLE_UPGRADE


def is_search_failure_warning(line: str) -> bool:
    """``Failed when searching source; results will not be included: msstore`` (localised):
    one source failed, and the output goes on without what it would have said."""
    return fold_message(line).startswith(SEARCH_FAILURE_WARNINGS)


def is_version_not_found_message(line: str) -> bool:
    """``No version found matching: 1.2.3`` (localised): the exact version asked for is not in
    the source."""
    return fold_message(line).startswith(VERSION_NOT_FOUND)


def _is_fatal_line(line: str) -> bool:
    stripped = line.strip()
    return (
        parse_hresult_line(stripped) is not None
        or stripped.startswith(FATAL_PREFIXES)
        or stripped.startswith(AGREEMENT_DECLINED)
    )


def ends_table(line: str) -> bool:
    """Trailers, titles and messages that can follow a table's rows directly."""
    stripped = line.strip()
    return (
        upgrade_count(stripped) is not None
        or is_nothing_to_upgrade(stripped)
        or fold_message(stripped) in EXPLICIT_TITLES  # exact titles only: a Name may say "explicit"
        or is_result_limit_note(stripped)
        or _is_fatal_line(stripped)
    )


def starts_install_log(line: str) -> bool:
    return bool(_INSTALL_STEP_RE.match(line.strip()) or _FOUND_LINE_RE.search(line))


def is_result_limit_note(line: str) -> bool:
    """``<additional entries truncated due to result limit>`` (and its translations)."""
    stripped = line.strip()
    return len(stripped) > 2 and stripped.startswith("<") and stripped.endswith(">")


def looks_like_row(line: str) -> bool:
    """Could this line be a package row (several cells and a version)?"""
    words = line.split()
    return len(words) >= 3 and (
        bool(_DOTTED_NUMBER_RE.search(line)) or "Unknown" in words or "Latest" in words
    )


def separator_width(line: str) -> int | None:
    """Width of a table's dashed line (it is as wide as the table), else None."""
    stripped = line.strip()
    if len(stripped) >= 10 and stripped == "-" * len(stripped):
        return len(stripped)
    return None


def find_failure(lines: Sequence[str]) -> tuple[int, ScanFailure] | None:
    """The winget failure the output ends in, with its line index, or None."""
    failure: tuple[int, ScanFailure] | None = None
    context = ""  # the "Failed … source: X" line that explains a following HRESULT
    for index, line in enumerate(lines):
        stripped = line.strip()
        hresult = parse_hresult_line(stripped)
        if hresult is not None:
            code, text = hresult
            message = f"{context} ({text})" if context else text or stripped
            failure = (index, ScanFailure(code=code, message=message))
        elif stripped.startswith(AGREEMENT_DECLINED):
            failure = (index, ScanFailure(code=None, message=stripped))
        elif _is_declined_prompt(stripped):
            failure = (index, ScanFailure(code=None, message="source agreements declined"))
        elif stripped.startswith(FATAL_PREFIXES):
            # Fatal even when no HRESULT follows (a cut paste); the HRESULT wins when it does.
            if stripped.startswith("Failed"):
                context = stripped
            failure = (index, ScanFailure(code=None, message=context or stripped))
        elif stripped.startswith("Failed in attempting to update the source"):
            context = stripped  # only a warning unless an HRESULT follows
    return failure


def _is_declined_prompt(line: str) -> bool:
    match = _PROMPT_RE.match(line)
    return match is not None and match.group(3).casefold() == match.group(2).casefold()
