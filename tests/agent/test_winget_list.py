"""The inventory's parse (``winget list`` -> every installed row) and its wire report: each
``*list*`` sample of the corpus with the inventory read from it by hand, and focused cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lunaris_agent.winget.installed import RESULT_LIMIT, UPGRADE_LISTING, parse_list_output
from lunaris_agent.winget.report import inventory_from_list
from lunaris_agent.winget.results import InstalledRow, InventoryResult, ScanFailure
from lunaris_agent.winget.words import NO_INSTALLED_PACKAGE_MESSAGES
from lunaris_protocol.inventory import InstalledItem, list_digest
from lunaris_protocol.limits import MAX_IDENTIFIER

SAMPLES = Path(__file__).parent / "winget_samples"
SHARED_SAMPLES = Path(__file__).parents[2].parent / "shared" / "winget-samples"

Row = tuple[str, str, str, str | None, bool]  # id, name, version, source, truncated
REFUSED = ScanFailure(code=None, message="unparseable")

# What each sample shows, read by hand from the file (not from the parser).
EXPECTED: dict[str, list[Row] | ScanFailure] = {
    # 5 columns; trailing cells trimmed by the paste; two ids cut with "…"; Git's Available
    # (2.33.0.2) is not part of the inventory; two ARP ids, one with spaces.
    "019-list-ellipsis-ids-unknown-2021": [
        ("84f93aee594a430d", "reSearch", "2.2106.10.0", None, False),
        ("8b5526fe-0870-42b7-bde0-da8c4c7ea1aa_kw…", "AppInstallerCaller", "1.0.7.0", None, True),
        ("CodeFlow_is1", "CodeFlow", "Unknown", None, False),
        ("DolbyLaboratories.DolbyAccessOEM_rz1teb…", "Dolby Access OEM", "3.9.26.0", None, True),
        ("Git.Git", "Git", "2.31.0.0.1", "winget", False),
        ("HxD_is1", "HxD Hex Editor 2.5", "2.5", None, False),
        ("Microsoft.Edge", "Microsoft Edge", "93.0.961.52", None, False),
        ("Microsoft Edge Update", "Microsoft Edge Update", "1.3.151.27", None, False),
    ],
    # Name/Id/Version only; ARP and MSIX ids with spaces and underscores.
    "021-list-three-columns-ids-with-spaces": [
        (
            "339020b868450372",
            "Microsoft Support and Recovery Assistant",
            "17.0.4840.8",
            None,
            False,
        ),
        ("79d4859593898a7c", "Global Order Tool", "1.7.0.1", None, False),
        ("ActiveTouchMeetingClient", "Cisco Webex Meetings", "Unknown", None, False),
        ("Adobe AIR", "Adobe AIR", "32.0.0.125", None, False),
        ("Adobe Flash Player NPAPI", "Adobe Flash Player 32 NPAPI", "32.0.0.465", None, False),
        (
            "CanonicalGroupLimited.Ubuntu20.04onWindows_79rhkp1fndgsc",
            "CanonicalGroupLimited.Ubuntu20.04onWindows",
            "2004.2021.222.0",
            None,
            False,
        ),
        (
            "Cisco AnyConnect Secure Mobility Client",
            "Cisco AnyConnect Secure Mobility Client",
            "4.6.02074",
            None,
            False,
        ),
    ],
    # Rows without their header and dashed line (filtered by a pipe): refused, not guessed.
    "022-list-rows-only-arp-ids-truncated": REFUSED,
    # Name/Id/Version/Available (no Source column): the Available 1.25.1 is not kept.
    "024-list-source-filter-unknown": [
        ("Rustlang.Rustup", "Rustup: the Rust toolchain installer", "Unknown", None, False),
    ],
    # Name/Id/Version/Source: the name is cut (not the id), the version is a range.
    "025-list-no-available-column-lt-version": [
        (
            "Microsoft.WindowsSDK",
            "Windows Software Development Kit - Windows 1…",
            "< 10.0.22000.832",
            "winget",
            False,
        ),
    ],
    # `winget upgrade` tables ("N upgrades available."): the upgradable packages only, which
    # must not pass for everything installed.
    "050-upgrade-one-row-then-id-failed-2008-a-list": ScanFailure(None, UPGRADE_LISTING),
    "055-upgrade-still-listed-after-success": ScanFailure(None, UPGRADE_LISTING),
    "060-upgrade-unknown-listed-v1.1.13405": ScanFailure(None, UPGRADE_LISTING),
    # `list --details`: Key: Value blocks, no table.
    "056-list-details-german": REFUSED,
    "057-list-details-english": REFUSED,
}


def _read(sample: Path) -> str:
    return sample.read_bytes().decode("utf-8", errors="replace")


def _rows(result: InventoryResult) -> list[Row]:
    return [
        (row.package_identifier, row.name, row.version, row.source, row.truncated)
        for row in result.software
    ]


def test_every_list_sample_has_a_hand_read_inventory() -> None:
    assert sorted(path.stem for path in SAMPLES.glob("*list*.txt")) == sorted(EXPECTED)
    if SHARED_SAMPLES.is_dir():
        assert sorted(path.stem for path in SHARED_SAMPLES.glob("*list*.txt")) == sorted(EXPECTED)


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_list_sample(stem: str) -> None:
    result = parse_list_output(_read(SAMPLES / f"{stem}.txt"))
    expected = EXPECTED[stem]
    if isinstance(expected, ScanFailure):
        assert result == InventoryResult(software=(), error=expected)
    else:
        assert result.error is None
        assert _rows(result) == expected


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_shared_list_sample_reads_the_same(stem: str) -> None:
    shared = SHARED_SAMPLES / f"{stem}.txt"
    if not shared.is_file():
        pytest.skip("no shared corpus beside the repository")
    assert parse_list_output(_read(shared)) == parse_list_output(_read(SAMPLES / f"{stem}.txt"))


# --------------------------------------------------------------------------------------------
# Focused cases
# --------------------------------------------------------------------------------------------

HEADER = "Name            Id                        Version  Available Source\n" + "-" * 66 + "\n"


def test_an_arp_id_with_spaces_and_a_cut_id_in_mojibake_are_kept() -> None:
    text = (
        HEADER + "Adobe AIR       Adobe AIR                 32.0.0.1\n"
        "Dolby Access    DolbyLaboratories.Dolbyâ€¦ 3.9.26.0\n"
        "Git             Git.Git                   2.31.0   2.33.0    winget\n"
    )
    assert _rows(parse_list_output(text)) == [
        ("Adobe AIR", "Adobe AIR", "32.0.0.1", None, False),
        ("DolbyLaboratories.Dolby…", "Dolby Access", "3.9.26.0", None, True),
        ("Git.Git", "Git", "2.31.0", "winget", False),
    ]


def test_exact_duplicates_are_kept() -> None:
    row = "Git             Git.Git                   2.31.0             winget\n"
    result = parse_list_output(HEADER + row + row)
    assert _rows(result) == [("Git.Git", "Git", "2.31.0", "winget", False)] * 2


@pytest.mark.parametrize("message", NO_INSTALLED_PACKAGE_MESSAGES)
def test_no_installed_package_found_is_an_empty_list_in_every_language(message: str) -> None:
    assert parse_list_output(f"{message}\n") == InventoryResult(software=(), error=None)


def test_a_line_of_the_table_that_is_no_row_refuses_the_list() -> None:
    """A list replaces what the server knew: a row it cannot read must not simply vanish."""
    text = HEADER + "Git             Git.Git                   2.31.0\nredacted\n"
    assert parse_list_output(text).error == REFUSED


def test_a_winget_failure_is_an_error() -> None:
    text = "Failed when searching source: winget\n"
    text += "0x8a15000f : Data required by the source is missing\n"
    result = parse_list_output(text)
    assert result.software == ()
    assert result.error is not None
    assert result.error.code == "0x8A15000F"


def test_a_source_that_could_not_be_searched_is_an_error() -> None:
    text = "Failed when searching source; results will not be included: msstore\n" + HEADER
    text += "Git             Git.Git                   2.31.0\n"
    result = parse_list_output(text)
    assert result.software == ()
    assert result.error == ScanFailure(
        code=None, message="Failed when searching source; results will not be included: msstore"
    )


def test_a_german_search_failure_warning_is_an_error_too() -> None:
    text = "Fehler beim Durchsuchen der Quelle. Ergebnisse werden nicht einbezogen: msstore\n"
    assert parse_list_output(text + HEADER + "Git  Git.Git  2.3\n").error is not None


def test_a_list_cut_at_the_result_limit_is_an_error() -> None:
    text = HEADER + "Git             Git.Git                   2.31.0\n"
    text += "<additional entries truncated due to result limit>\n"
    assert parse_list_output(text).error == ScanFailure(code=None, message=RESULT_LIMIT)


def test_empty_output_is_an_error() -> None:
    assert parse_list_output("\r   -\r   \\\n").error == ScanFailure(None, "empty output")


def test_rows_line_up_with_wide_names_and_emoji_sequences() -> None:
    """Names winget measured per grapheme cluster: 微信 is 4 columns, 👨‍👩‍👧 2, ❤️ 1."""
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    text = (
        "名称          ID                  版本    源\n"
        "--------------------------------------------------\n"
        "微信          Tencent.WeChat      3.9.0   winget\n"  # 4 + 10 spaces = 14
        f"Family {family}     Organizer.Family    1.0     winget\n"  # 7 + 2 + 5 spaces = 14
        "I \u2764\ufe0f Notes    Example.Notes       2.0\n"  # 9 + 5 spaces = 14
    )
    assert _rows(parse_list_output(text)) == [
        ("Tencent.WeChat", "微信", "3.9.0", "winget", False),
        ("Organizer.Family", f"Family {family}", "1.0", "winget", False),
        ("Example.Notes", "I \u2764\ufe0f Notes", "2.0", None, False),
    ]


# --------------------------------------------------------------------------------------------
# The wire
# --------------------------------------------------------------------------------------------


def _row(identifier: str, **fields: object) -> InstalledRow:
    values: dict[str, object] = {
        "package_identifier": identifier,
        "name": identifier,
        "version": "1.0",
        "source": None,
        "truncated": False,
    }
    values.update(fields)
    return InstalledRow(**values)  # type: ignore[arg-type]


def test_the_report_carries_the_whole_list_and_its_digest() -> None:
    software = (_row("Git.Git", source="winget"), _row("Adobe AIR"), _row("Cut…", truncated=True))
    report = inventory_from_list(InventoryResult(software=software, error=None))
    assert report.scan_error is None
    assert report.software is not None
    assert [(item.package_identifier, item.source, item.truncated) for item in report.software] == [
        ("Git.Git", "winget", False),
        ("Adobe AIR", None, False),
        ("Cut…", None, True),
    ]
    expected_items = [
        InstalledItem(package_identifier="Git.Git", name="Git.Git", version="1.0", source="winget"),
        InstalledItem(package_identifier="Adobe AIR", name="Adobe AIR", version="1.0"),
        InstalledItem(package_identifier="Cut…", name="Cut…", version="1.0", truncated=True),
    ]
    assert report.digest == list_digest(expected_items)


def test_an_empty_list_is_reported_as_empty_with_its_digest() -> None:
    report = inventory_from_list(InventoryResult(software=(), error=None))
    assert report.software == []
    assert report.digest == list_digest([])
    assert report.scan_error is None


def test_a_failed_list_is_a_scan_error_alone() -> None:
    failure = ScanFailure(code="0x8A15000F", message="Data required by the source is missing")
    report = inventory_from_list(InventoryResult(software=(_row("Git.Git"),), error=failure))
    assert report.software is None
    assert report.digest is None
    assert report.scan_error is not None
    assert (report.scan_error.code, report.scan_error.message) == (failure.code, failure.message)


def test_rows_the_protocol_cannot_carry_are_an_error_not_cut() -> None:
    too_long = _row("X" * (MAX_IDENTIFIER + 1))
    report = inventory_from_list(InventoryResult(software=(_row("Git.Git"), too_long), error=None))
    assert report.software is None
    assert report.digest is None
    assert report.scan_error is not None
    assert report.scan_error.code == "report_invalid"
    assert "2 installed packages" in report.scan_error.message


def test_the_inventory_json_is_the_rows_and_the_error() -> None:
    result = parse_list_output(_read(SAMPLES / "024-list-source-filter-unknown.txt"))
    assert json.loads(json.dumps(result.to_json_dict())) == {
        "software": [
            {
                "package_identifier": "Rustlang.Rustup",
                "name": "Rustup: the Rust toolchain installer",
                "version": "Unknown",
                "source": None,
                "truncated": False,
            }
        ],
        "error": None,
    }


def test_a_row_that_does_not_line_up_refuses_the_list() -> None:
    shifted = "Git             Git.Git                   2.31.0            winget\n"  # Source at 60
    assert parse_list_output(HEADER + shifted).error == REFUSED
