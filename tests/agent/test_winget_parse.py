"""The winget output parser, judged against the corpus of real outputs (winget_samples/README.md)
and by focused tests of its helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lunaris_agent.scan_cli import scan
from lunaris_agent.winget.columns import locate_columns, split_row
from lunaris_agent.winget.lines import (
    is_explicit_targeting_title,
    is_nothing_to_upgrade,
    parse_hresult_line,
    upgrade_count,
)
from lunaris_agent.winget.parse import parse_upgrade_output
from lunaris_agent.winget.results import ScanFailure, ScanResult, ScanRow
from lunaris_agent.winget.text import (
    ELLIPSIS,
    clean_lines,
    is_progress_noise,
    normalise_cell,
    normalise_ellipsis,
    repair_mojibake,
    strip_terminal_noise,
)
from lunaris_agent.winget.width import cluster_width, display_width

SAMPLES = Path(__file__).parent / "winget_samples"
UNPARSEABLE = {"code": None, "message": "unparseable"}


def _expected(sample: Path) -> dict[str, Any]:
    expected: dict[str, Any] = json.loads(
        sample.with_name(sample.name.removesuffix(".txt") + ".expected.json").read_text(
            encoding="utf-8"
        )
    )
    return expected


def _is_scan(expected: dict[str, Any]) -> bool:
    # Skip-kind ("skip") and install-outcome-kind ("install_outcome") files are not scan input.
    return "updates" in expected and "error" in expected


SCAN_SAMPLES = sorted(p for p in SAMPLES.glob("*.txt") if _is_scan(_expected(p)))


def _read(sample: Path) -> str:
    # Bytes, as the CLI reads them: keep any bare "\r" of spinner redraws.
    return sample.read_bytes().decode("utf-8", errors="replace")


def assert_scan_matches(got: dict[str, Any], expected: dict[str, Any]) -> None:
    """The README's judging rules, to the letter."""
    assert set(got) == {"updates", "error"}
    if expected["error"] is None:
        assert got["error"] is None, got["error"]
    else:
        assert isinstance(got["error"], dict), got
        assert set(got["error"]) == {"code", "message"}
        if expected["error"]["code"] is not None:
            assert isinstance(got["error"]["code"], str), got["error"]
            assert got["error"]["code"].casefold() == expected["error"]["code"].casefold()
    keys = ("package_identifier", "installed_version", "available_version")
    flags = ("explicit_targeting", "truncated")
    assert [tuple(row[k] for k in keys + flags) for row in got["updates"]] == [
        tuple(row[k] for k in keys + flags) for row in expected["updates"]
    ]
    assert [row["name"].strip() for row in got["updates"]] == [
        row["name"].strip() for row in expected["updates"]
    ]
    for got_row, expected_row in zip(got["updates"], expected["updates"], strict=True):
        if expected_row["source"] is not None:
            assert got_row["source"] == expected_row["source"]


# --------------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------------


def test_corpus_is_present_and_complete() -> None:
    samples = sorted(SAMPLES.glob("*.txt"))
    assert len(samples) == len(list(SAMPLES.glob("*.expected.json"))) >= 48
    for sample in samples:
        assert sample.with_name(sample.name.removesuffix(".txt") + ".expected.json").is_file()
    kinds = {("scan" if _is_scan(e) else "other") for e in map(_expected, samples)}
    assert kinds == {"scan", "other"}
    assert len(SCAN_SAMPLES) >= 30


@pytest.mark.parametrize("sample", SCAN_SAMPLES, ids=lambda p: p.stem)
def test_scan_sample(sample: Path) -> None:
    got = parse_upgrade_output(_read(sample)).to_json_dict()
    assert_scan_matches(got, _expected(sample))


@pytest.mark.parametrize("sample", SCAN_SAMPLES, ids=lambda p: p.stem)
def test_scan_cli_prints_one_json_object(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exit_code = scan(from_file=sample, winget_path=None, as_json=True)
    out = capsys.readouterr().out
    got = json.loads(out)  # exactly one JSON object: json.loads refuses trailing data
    assert out.endswith("}\n")
    assert_scan_matches(got, _expected(sample))
    assert exit_code == (0 if got["error"] is None else 1)


def test_judge_catches_a_wrong_result() -> None:
    """The judging helper itself must be able to fail."""
    expected = _expected(SAMPLES / "006-upgrade-explicit-targeting-second-table.txt")
    got: dict[str, Any] = json.loads(
        json.dumps(
            parse_upgrade_output(
                _read(SAMPLES / "006-upgrade-explicit-targeting-second-table.txt")
            ).to_json_dict()
        )
    )
    got["updates"][1]["explicit_targeting"] = False
    with pytest.raises(AssertionError):
        assert_scan_matches(got, expected)
    with pytest.raises(AssertionError):
        assert_scan_matches({"updates": [], "error": None}, expected)


# --------------------------------------------------------------------------------------------
# Display width and columns
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "width"),
    [
        ("Git", 3),
        ("微信", 4),  # CJK: East Asian Wide
        ("카카오톡", 8),  # Hangul
        ("ＡＢ", 4),  # full-width forms
        ("…", 1),  # ambiguous width counts 1
        ("Microsoft®", 10),
        ("Café", 4),
        ("Cafe\u0301", 4),  # combining acute accent takes no column
        ("名称 ID", 7),
    ],
)
def test_display_width(text: str, width: int) -> None:
    assert display_width(text) == width


def test_cluster_width() -> None:
    # A combining mark standing alone is a cluster of its own: winget counts it 1, not 0.
    assert [cluster_width(c) for c in ("a", "微", "\u0301", "…", "e\u0301")] == [1, 2, 1, 1, 1]


def test_columns_are_measured_in_display_columns() -> None:
    header = "名称 ID             版本   可用   源"
    columns = locate_columns(header)
    assert [c.label for c in columns] == ["名称", "ID", "版本", "可用", "源"]
    # Character offsets would be 0, 3, 17, 22, 27: wrong for every ASCII row.
    assert [c.start for c in columns] == [0, 5, 20, 27, 34]


def test_korean_labels_with_a_space_are_one_column() -> None:
    columns = locate_columns("이름     장치 ID         버전 사용 가능 원본")
    assert [c.label for c in columns] == ["이름", "장치 ID", "버전", "사용 가능", "원본"]
    assert [c.start for c in columns] == [0, 9, 25, 30, 40]


def test_split_row_refuses_a_cut_inside_a_word() -> None:
    boundaries = [0, 4, 7, 15, 26]  # from the collapsed header "Nom ID Version Disponible Source"
    assert split_row("DesktopOK SoftwareOK.DesktopOK Unknown 12.55 winget", boundaries, 102) is None
    assert split_row("Foo Id  1.0     2.0        winget", boundaries, 102) == [
        "Foo",
        "Id",
        "1.0",
        "2.0",
        "winget",
    ]


def test_split_row_keeps_trimmed_trailing_cells_empty() -> None:
    assert split_row("reSearch   84f9   2.2", [0, 11, 18, 25, 35], 40) == [
        "reSearch",
        "84f9",
        "2.2",
        "",
        "",
    ]


# --------------------------------------------------------------------------------------------
# Noise, mojibake and the ellipsis
# --------------------------------------------------------------------------------------------


def test_strip_terminal_noise_keeps_what_the_console_shows() -> None:
    raw = "\r   -\r   \\\r" + " " * 120 + "\rName  Id"
    assert strip_terminal_noise(raw) == "Name  Id"
    assert strip_terminal_noise("\x1b[2K\x1b[0;32mGit\x1b[0m Git.Git\x1b]9;4;3;0\x07") == (
        "Git Git.Git"
    )
    assert strip_terminal_noise("\r" + " " * 120 + "\r") == ""


@pytest.mark.parametrize(
    "line",
    [
        "   -",
        "   \\",
        "   |",
        "   /",
        "  ██████████████████████████████  23.5 MB / 23.5 MB",
        "  ████████▒▒▒▒▒▒  38%",
        "  ΓûêΓûêΓûêΓûÆΓûÆ  38%",  # cp437 mojibake of the bar
        "  \\u2588\\u2588\\u2588   268 MB /  268 MB",  # bar pasted as literal escapes
    ],
)
def test_progress_noise_is_recognised(line: str) -> None:
    assert is_progress_noise(line)


@pytest.mark.parametrize("line", ["Git Git.Git 1.0 2.0 winget", "-------", "- Packages", ""])
def test_real_lines_are_not_progress_noise(line: str) -> None:
    assert not is_progress_noise(line)


def test_clean_lines_drops_spinner_and_progress_lines() -> None:
    text = "   -\n   \\\n\nName Id\n  ████  10%\r  ████████  20%\nrow\r\n"
    assert clean_lines(text) == ["", "Name Id", "row", ""]


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("Windows 10.0.1904â€¦", "Windows 10.0.1904…"),  # cp1252 mojibake
        ("Microsoft.WindowsSDK.10ΓÇª", "Microsoft.WindowsSDK.10…"),  # cp437 mojibake
        ("Windows 10.0.1904…", "Windows 10.0.1904…"),
        ("What???", "What???"),  # lossy form only when asked for
    ],
)
def test_normalise_ellipsis(text: str, normalised: str) -> None:
    assert normalise_ellipsis(text) == normalised


def test_normalise_ellipsis_lossy_form() -> None:
    assert normalise_ellipsis("Vendor.Pack??? 1.0", lossy=True) == f"Vendor.Pack{ELLIPSIS} 1.0"
    assert normalise_cell("Vendor.Pack???") == "Vendor.Pack…"
    assert normalise_cell("Dell ControlVault Host Components Inâ€¦") == (
        "Dell ControlVault Host Components In…"
    )
    assert normalise_cell("Git.Git") == "Git.Git"


@pytest.mark.parametrize(
    ("shown", "repaired"),
    [
        ("VerfÃ¼gbar", "Verfügbar"),  # UTF-8 read as cp1252
        ("Verf├╝gbar", "Verfügbar"),  # UTF-8 read as cp437
        ("Redistributable (x64) -â€¦ Microsoft", "Redistributable (x64) -… Microsoft"),
        ("Grammarly for Microsoft® Office Suite", "Grammarly for Microsoft® Office Suite"),
        ("微信 Tencent.WeChat", "微信 Tencent.WeChat"),
        ("Café…", "Café…"),
    ],
)
def test_repair_mojibake(shown: str, repaired: str) -> None:
    assert repair_mojibake(shown) == repaired


# --------------------------------------------------------------------------------------------
# Recognising lines
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        (
            "0x8a15000f : Data required by the source is missing",
            ("0x8A15000F", "Data required by the source is missing"),
        ),
        ("0x80072efd : unknown error", ("0x80072EFD", "unknown error")),
        (
            "  0X8A150044 : The rest source endpoint is not found.",
            ("0x8A150044", "The rest source endpoint is not found."),
        ),
        ("Installer failed with exit code: 0x80070422 : The service cannot be started", None),
        ("0x1234 : too short", None),
        ("Git Git.Git 1.0 2.0 winget", None),
    ],
)
def test_parse_hresult_line(line: str, parsed: tuple[str, str] | None) -> None:
    assert parse_hresult_line(line) == parsed


@pytest.mark.parametrize(
    "title",
    [
        "The following packages have an upgrade available, but require explicit targeting for upgrade:",  # noqa: E501
        "Für die folgenden Pakete ist ein Upgrade verfügbar, für das Upgrade ist jedoch eine explizite Zielgruppenadressierung erforderlich:",  # noqa: E501
        "Les packages suivants ont une mise à niveau disponible, mais nécessitent un ciblage explicite pour la mise à niveau :",  # noqa: E501
        "以下程序包有可用的升级，但需要显式目标才能进行升级：",
        "다음 패키지에는 업그레이드를 사용할 수 있지만 업그레이드를 위해 명시적 대상 지정이 필요합니다.",  # noqa: E501
    ],
)
def test_explicit_targeting_title(title: str) -> None:
    assert is_explicit_targeting_title(title)


def test_reworded_explicit_title_is_still_recognised() -> None:
    # Translations change between releases; the word for "explicit" survives.
    assert is_explicit_targeting_title(
        "Für diese Pakete ist ein Upgrade verfügbar, das explizit angefordert werden muss:"
    )
    assert is_explicit_targeting_title("These packages need explicit targeting to upgrade:")


@pytest.mark.parametrize(
    "line",
    [
        "",
        "2 upgrades available.",
        "Name    Id              Version  Available Source",
        "1 package(s) have a pin that needs to be removed before upgrade",
    ],
)
def test_not_an_explicit_targeting_title(line: str) -> None:
    assert not is_explicit_targeting_title(line)


@pytest.mark.parametrize(
    ("line", "count"),
    [
        ("6 upgrades available.", 6),
        ("1 upgrades available.", 1),
        ("4 mises à niveau disponibles.", 4),
        ("Доступны обновления: 3.", 3),
        ("12 升级可用。", 12),
        ("Git Git.Git 2.31.0 2.33.0 winget", None),
    ],
)
def test_upgrade_count(line: str, count: int | None) -> None:
    assert upgrade_count(line) == count


# --------------------------------------------------------------------------------------------
# Whole outputs
# --------------------------------------------------------------------------------------------

ENGLISH = """\
Name                 Id              Version Available Source
-------------------------------------------------------------
Git                  Git.Git         2.31.0  2.33.0    winget
Microsoft Teams      Microsoft.Teams 1.4.0   1.5.0     winget
2 upgrades available.
"""


def _ids(result: ScanResult) -> list[str]:
    return [row.package_identifier for row in result.updates]


def test_to_json_dict_is_the_contract_shape() -> None:
    result = ScanResult(
        updates=(ScanRow("Git.Git", "Git", "2.31.0", "2.33.0", "winget", False, False),),
        error=ScanFailure(code="0x8A15000F", message="Data required by the source is missing"),
    )
    assert result.to_json_dict() == {
        "updates": [
            {
                "package_identifier": "Git.Git",
                "name": "Git",
                "installed_version": "2.31.0",
                "available_version": "2.33.0",
                "source": "winget",
                "explicit_targeting": False,
                "truncated": False,
            }
        ],
        "error": {"code": "0x8A15000F", "message": "Data required by the source is missing"},
    }


def test_english_table() -> None:
    result = parse_upgrade_output(ENGLISH)
    assert result.error is None
    assert result.updates == (
        ScanRow("Git.Git", "Git", "2.31.0", "2.33.0", "winget", False, False),
        ScanRow("Microsoft.Teams", "Microsoft Teams", "1.4.0", "1.5.0", "winget", False, False),
    )


def test_chinese_table_with_wide_characters() -> None:
    text = (
        "名称 ID             版本   可用   源\n"
        "----------------------------------------\n"
        "微信 Tencent.WeChat 3.9.0  3.9.12 winget\n"
        "Git  Git.Git        2.40.0 2.45.1 winget\n"
        "2 升级可用。\n"
    )
    result = parse_upgrade_output(text)
    assert result.error is None
    assert result.updates == (
        ScanRow("Tencent.WeChat", "微信", "3.9.0", "3.9.12", "winget", False, False),
        ScanRow("Git.Git", "Git", "2.40.0", "2.45.1", "winget", False, False),
    )


def test_korean_table() -> None:
    text = (
        "이름     장치 ID         버전 사용 가능 원본\n"
        "----------------------------------------------\n"
        "카카오톡 Kakao.KakaoTalk 1.0  2.0       winget\n"
    )
    result = parse_upgrade_output(text)
    assert result.to_json_dict()["error"] is None
    assert result.updates == (
        ScanRow("Kakao.KakaoTalk", "카카오톡", "1.0", "2.0", "winget", False, False),
    )


def test_explicit_table_is_recognised_by_title_not_position() -> None:
    explicit = (
        "The following packages have an upgrade available, but require explicit targeting for "
        "upgrade:\n"
        "Name    Id              Version  Available\n"
        "------------------------------------------\n"
        "Discord Discord.Discord 1.0.9017 1.0.9034\n"
    )
    # A captured tail holding only the explicit table.
    only = parse_upgrade_output(explicit)
    assert [row.explicit_targeting for row in only.updates] == [True]
    # Table 1 empty: current winget prints "nothing found", then the explicit table.
    after_nothing = parse_upgrade_output(
        "No installed package found matching input criteria.\n" + explicit
    )
    assert [(r.package_identifier, r.explicit_targeting) for r in after_nothing.updates] == [
        ("Discord.Discord", True)
    ]
    # An untitled table after the explicit one is a plain table.
    both = parse_upgrade_output(explicit + "\n" + ENGLISH.replace("2 upgrades", "3 upgrades"))
    assert [(r.package_identifier, r.explicit_targeting) for r in both.updates] == [
        ("Discord.Discord", True),
        ("Git.Git", False),
        ("Microsoft.Teams", False),
    ]


def test_explicit_title_in_german() -> None:
    text = (
        "Für die folgenden Pakete ist ein Upgrade verfügbar, für das Upgrade ist jedoch eine "
        "explizite Zielgruppenadressierung erforderlich:\n"
        "Name    ID              Version  Verfügbar Quelle\n"
        "-------------------------------------------------\n"
        "Discord Discord.Discord 1.0.9017 1.0.9034  winget\n"
    )
    result = parse_upgrade_output(text)
    assert [(r.package_identifier, r.source, r.explicit_targeting) for r in result.updates] == [
        ("Discord.Discord", "winget", True)
    ]


@pytest.mark.parametrize(
    "text",
    [
        "No installed package found matching input criteria.\n",
        "No applicable update found.\n",
        "No applicable upgrade found.\n",
        "No available upgrade found.\n",
        "3 package(s) have version numbers that cannot be determined. Use --include-unknown to "
        "see all results.\n",
        "Es wurde kein installiertes Paket gefunden, das den Eingabekriterien entspricht.\n",
        "Aucun package installé ne correspond aux critères saisis.\n",
        "No se encontró ningún paquete que coincida con los criterios de entrada.\n",
        "Не найдены установленные пакеты, соответствующие введенным условиям.\n",
        "   -\n" + " " * 120 + "\n找不到与输入条件匹配的已安装程序包。\n",
        "入力条件に一致するインストール済みのパッケージが見つかりませんでした。\r\n",
    ],
)
def test_nothing_to_upgrade_in_several_languages(text: str) -> None:
    assert parse_upgrade_output(text).to_json_dict() == {"updates": [], "error": None}


def test_nothing_to_upgrade_line_recognition() -> None:
    assert is_nothing_to_upgrade("Kein verfügbares Upgrade gefunden.")
    assert not is_nothing_to_upgrade("Git Git.Git 2.31.0 2.33.0 winget")


@pytest.mark.parametrize(
    "text",
    [
        # rows without a header or separator
        "Microsoft Whiteboard  Microsoft.Whiteboard  21.10823.5772.0 Latest  msstore\n",
        # whitespace collapsed: the rows do not line up with the header
        "Nom ID Version Disponible Source\n"
        "--------------------------------------------------\n"
        "DesktopOK SoftwareOK.DesktopOK Unknown 12.55 winget\n",
        # a dashed line with nothing above it
        "---------------------------------\nGit  Git.Git  2.31.0  2.33.0  winget\n",
        # a count trailer but no table to read the rows from
        "3 upgrades available.\n",
        # text that is neither a table nor a known message
        "Something went sideways.\n",
        # the count says a row is missing (e.g. a cut paste)
        ENGLISH.replace("2 upgrades", "3 upgrades"),
        # a blank line pasted into the table: the rows after it would be lost
        ENGLISH.replace("Microsoft Teams ", "\nMicrosoft Teams "),
        # the same without a count trailer to catch it (e.g. `winget list`)
        ENGLISH.replace("Microsoft Teams ", "\nMicrosoft Teams ").replace(
            "2 upgrades available.\n", ""
        ),
    ],
)
def test_unreadable_output_is_refused(text: str) -> None:
    assert parse_upgrade_output(text).to_json_dict() == {"updates": [], "error": UNPARSEABLE}


def test_empty_output_is_an_error_not_no_updates() -> None:
    for text in ("", "\n\n", "   -\r   \\\r" + " " * 120 + "\r\n"):
        result = parse_upgrade_output(text)
        assert result.updates == ()
        assert result.error is not None
        assert result.error.code is None


def test_hresult_after_a_table_keeps_the_rows() -> None:
    text = ENGLISH + "An unexpected error occurred while executing the command:\n"
    text += "0x8a15000f : Data required by the source is missing\n"
    result = parse_upgrade_output(text)
    assert _ids(result) == ["Git.Git", "Microsoft.Teams"]
    assert result.error is not None
    assert result.error.code == "0x8A15000F"


def test_failure_in_the_install_log_is_not_a_scan_failure() -> None:
    text = ENGLISH + (
        "\n(1/2) Found Git [Git.Git] Version 2.33.0\n"
        "Installer failed with exit code: 0x80070422 : The service cannot be started\n"
        "0x80070422 : The service cannot be started\n"
    )
    result = parse_upgrade_output(text)
    assert result.error is None
    assert _ids(result) == ["Git.Git", "Microsoft.Teams"]


def test_declined_source_agreement_in_german() -> None:
    text = "Stimmen Sie allen Bedingungen der Quellvereinbarungen zu?\n[J] Ja  [N] Nein: n\n"
    result = parse_upgrade_output(text)
    assert result.updates == ()
    assert result.error is not None
    assert result.error.code is None
    assert result.error.message != "unparseable"  # a real failure, not a refusal


def test_accepted_source_agreement_then_table() -> None:
    text = "Do you agree to all the source agreements terms?\n[Y] Yes  [N] No: y\n" + ENGLISH
    result = parse_upgrade_output(text)
    assert result.error is None
    assert _ids(result) == ["Git.Git", "Microsoft.Teams"]


def test_mojibake_rows_are_repaired_before_slicing() -> None:
    table = (
        "Name            Id           Version Available Source\n"
        "-----------------------------------------------------\n"
        "Some long name… Vendor.Some… 1.0     2.0       winget\n"
        "B               B.B          1       2         winget\n"
    )
    for form in ("â€¦", "ΓÇª", "???"):
        result = parse_upgrade_output(table.replace("…", form))
        assert result.error is None, form
        assert [(r.package_identifier, r.name, r.truncated) for r in result.updates] == [
            ("Vendor.Some…", "Some long name…", True),
            ("B.B", "B", False),
        ], form


def test_cut_name_does_not_set_truncated() -> None:
    text = (
        "Name                   Id      Version Available\n"
        "------------------------------------------------\n"
        "Windows Software Deve… Git.Git 1.0     2.0\n"
    )
    (row,) = parse_upgrade_output(text).updates
    assert (row.name, row.truncated, row.source) == ("Windows Software Deve…", False, None)


def test_stray_line_inside_a_table_is_skipped() -> None:
    text = ENGLISH.replace("Microsoft Teams ", "[redacted]\nMicrosoft Teams ")
    result = parse_upgrade_output(text)
    assert result.error is None
    assert _ids(result) == ["Git.Git", "Microsoft.Teams"]


def test_row_shifted_by_a_mismeasured_wide_character_snaps_to_the_word_start() -> None:
    # winget counted the emoji as one column, so the Id starts one column right of the label.
    text = (
        "Name  Id      Version Available\n"
        "-------------------------------\n"
        "Zap ⚡ Zap.Zap 1.0     2.0\n"
        "Other O.O     1       2\n"
    )
    result = parse_upgrade_output(text)
    assert result.error is None
    assert [(r.package_identifier, r.name, r.installed_version) for r in result.updates] == [
        ("Zap.Zap", "Zap ⚡", "1.0"),
        ("O.O", "Other", "1"),
    ]


@pytest.mark.parametrize(
    ("fourth", "value", "expected"),
    [
        ("Source", "winget", []),
        ("Quelle", "winget", []),
        ("Available", "2.0", [("A.A", "2.0")]),
        ("Verfügbar", "2.0", [("A.A", "2.0")]),
    ],
)
def test_list_fourth_column_is_told_apart_by_its_label(
    fourth: str, value: str, expected: list[tuple[str, str]]
) -> None:
    width = max(len(fourth), len(value))
    text = (
        f"Name Id  Version {fourth}\n{'-' * (17 + width)}\nA    A.A 1.0     {value}\nB    B B 1.0\n"
    )
    result = parse_upgrade_output(text)
    assert result.error is None
    assert [(r.package_identifier, r.available_version) for r in result.updates] == expected


def test_list_rows_without_available_are_not_updates() -> None:
    text = (
        "Name        Id                    Version Available Source\n"
        "----------------------------------------------------------\n"
        "Edge Update Microsoft Edge Update 1.3.151\n"
        "Git         Git.Git               2.31.0  2.33.0    winget\n"
        "CodeFlow    CodeFlow_is1          Unknown\n"
    )
    result = parse_upgrade_output(text)
    assert result.error is None
    assert _ids(result) == ["Git.Git"]
