"""CSV text for the admin who reports upward: safe to open in a spreadsheet."""

import csv
import io
import unicodedata
from collections.abc import Iterable

FORMULA_STARTS = frozenset("=+-@\t\r＝＋－＠")
"""What makes a spreadsheet read a cell as a formula (OWASP's CSV injection list), with the
fullwidth forms some spreadsheets also take."""


def starts_like_formula(text: str) -> bool:
    """Whether ``text`` starts a formula, also after leading whitespace or control and
    format characters, which spreadsheets skip."""
    for char in text:
        if char in FORMULA_STARTS:
            return True
        if not (char.isspace() or unicodedata.category(char) in ("Cc", "Cf")):
            return False
    return False


def cell(value: object) -> str:
    """Text a spreadsheet shows as text: agents choose hostnames and package names, and a
    cell starting like a formula would otherwise run as one."""
    text = "" if value is None else str(value)
    return f"'{text}" if starts_like_formula(text) else text


def csv_lines(rows: Iterable[Iterable[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([cell(value) for value in row])
    return buffer.getvalue()
