"""Display width as winget counts it (per grapheme cluster, winget-cli's ``UTF8ColumnWidth``),
and tables whose names hold emoji sequences, decomposed Hangul and combining marks: their
rows must be cut at the right columns.

The tables are laid out as winget's ``TableOutput`` does it, from widths written here by hand
(each one explained), so they do not depend on the code under test."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from lunaris_agent.winget.parse import parse_upgrade_output
from lunaris_agent.winget.width import cluster_width, clusters, display_width

HEART = "\u2764\ufe0f"  # ❤️: U+2764 (Neutral) + VS16: one cluster, 1 column
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧: ZWJ sequence, 👨 is Wide: 2
THUMBS = "\U0001f44d\U0001f3fd"  # 👍🏽: emoji + skin tone modifier, one cluster: 2
FLAG = "\U0001f1e9\U0001f1ea"  # 🇩🇪: regional indicator pair, one cluster, Neutral: 1
KEYCAP = "1\ufe0f\u20e3"  # 1️⃣: digit + VS16 + enclosing keycap, one cluster: 1
HANGUL_NFD = "\u1112\u1161\u11ab\u1100\u1173\u11af"  # 한글 as conjoining jamo: 2 clusters, 4
THAI = "\u0e44\u0e17\u0e22\u0e17\u0e35\u0e48\u0e14\u0e35"  # ไทยที่ดี: 5 clusters, 5 columns
AMELIE = "Ame\u0301lie"  # e + combining acute: 6 columns


@pytest.mark.parametrize(
    ("text", "width"),
    [
        (HEART, 1),
        (FAMILY, 2),
        (THUMBS, 2),
        (FLAG, 1),
        (KEYCAP, 1),
        (HANGUL_NFD, 4),
        ("한글", 4),
        (THAI, 5),
        (AMELIE, 6),
        ("\u0301", 1),  # a mark standing alone is a cluster of its own
        ("\U0001f986", 2),  # 🦆, winget's own test case
        ("\U0001d160\U0001d160", 2),  # 𝅘𝅥𝅮𝅘𝅥𝅮: musical notes, winget's own test case
        ("fi\ufb01", 3),  # ﬁ ligature is one cluster (winget's test case)
        ("te测s试t", 8),
        ("bye…", 4),
    ],
)
def test_display_width_per_grapheme_cluster(text: str, width: int) -> None:
    assert display_width(text) == width


def test_clusters_keep_sequences_together() -> None:
    assert clusters(f"a{FAMILY}b") == ["a", FAMILY, "b"]
    assert clusters(HANGUL_NFD) == [HANGUL_NFD[:3], HANGUL_NFD[3:]]
    assert clusters(AMELIE) == ["A", "m", "e\u0301", "l", "i", "e"]
    assert "".join(clusters(THAI)) == THAI
    assert [cluster_width(c) for c in clusters(f"微{HEART}{FAMILY}")] == [2, 1, 2]


def _layout(header: Sequence[str], rows: Sequence[Sequence[tuple[str, int]]]) -> str:
    """A table as winget's TableOutput lays it out: each column as wide as its widest cell
    (by the hand-given widths) or label, one space between columns, the last not padded."""
    labels = [(label, len(label)) for label in header]
    widths = [max(w for _, w in column) for column in zip(labels, *rows, strict=True)]
    lines = []
    for cells in (labels, *rows):
        parts = [
            text + " " * (widths[i] - w + 1) if i < len(cells) - 1 else text
            for i, (text, w) in enumerate(cells)
        ]
        lines.append("".join(parts))
    lines.insert(1, "-" * (sum(widths) + len(widths) - 1))
    return "\n".join(lines) + "\n"


def _ascii(text: str) -> tuple[str, int]:
    return text, len(text)


# Each name with its width in winget's columns, counted by hand.
NAMES = [
    (f"Café {HEART} Notes", 4 + 1 + 1 + 1 + 5),
    (f"Family {FAMILY} Organizer", 7 + 2 + 1 + 9),
    (f"{HANGUL_NFD} Viewer", 4 + 1 + 6),
    (f"{THAI} Dictionary", 5 + 1 + 10),
    (f"Thumbs {THUMBS} Up", 7 + 2 + 1 + 2),
    (f"Deutsch {FLAG} Radio", 8 + 1 + 1 + 5),
    (f"Keycap {KEYCAP} Game", 7 + 1 + 1 + 4),
    (f"{AMELIE} Player", 6 + 1 + 6),
]


@pytest.mark.parametrize(("name", "width"), NAMES)
def test_the_hand_counted_widths_are_winget_s(name: str, width: int) -> None:
    assert display_width(name) == width


def test_an_upgrade_table_with_emoji_hangul_and_marks_is_cut_at_the_right_columns() -> None:
    ids = [f"Example.App{index}" for index in range(len(NAMES))]
    rows = [
        [name, _ascii(ids[index]), _ascii("1.0.0"), _ascii("2.0.0"), _ascii("winget")]
        for index, name in enumerate(NAMES)
    ]
    table = _layout(("Name", "Id", "Version", "Available", "Source"), rows)
    table += f"{len(NAMES)} upgrades available.\n"
    result = parse_upgrade_output(table)
    assert result.error is None
    assert [(row.name, row.package_identifier) for row in result.updates] == [
        (name, ids[index]) for index, (name, _) in enumerate(NAMES)
    ]
    assert {
        (row.installed_version, row.available_version, row.source) for row in result.updates
    } == {("1.0.0", "2.0.0", "winget")}


def test_names_winget_cut_inside_a_sequence_line_up() -> None:
    """A console too narrow for the table: winget shrinks the Name column to 12 and cuts the
    name at 11 columns, adding ``…`` and, when a 2-column cluster did not fit, a space."""
    cut_family = f"Family {FAMILY} O…"  # 7 + 2 + 1 + 1 = 11, then "…": 12
    cut_wide = f"{FAMILY * 5}… "  # 5 × 2 = 10 (a 6th would make 12 > 11), "…", a space: 12
    rows = [
        [(cut_family, 12), _ascii("Example.Family"), _ascii("1.0"), _ascii("1.1")],
        [(cut_wide, 12), _ascii("Example.Wide"), _ascii("2.0"), _ascii("2.1")],
        [_ascii("Plain"), _ascii("Example.Plain"), _ascii("3.0"), _ascii("3.1")],
    ]
    table = _layout(("Name", "Id", "Version", "Available"), rows)
    result = parse_upgrade_output(table + "3 upgrades available.\n")
    assert result.error is None
    assert [
        (row.name, row.package_identifier, row.available_version) for row in result.updates
    ] == [
        (cut_family, "Example.Family", "1.1"),
        (cut_wide.strip(), "Example.Wide", "2.1"),
        ("Plain", "Example.Plain", "3.1"),
    ]
