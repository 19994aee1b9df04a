"""Parser for the tables printed by ``winget upgrade`` and ``winget list``.

Pure functions, no I/O: the agent captures winget's stdout (bytes, decoded as UTF-8) and hands
the text to :func:`parse_upgrade_output`.

The parse is carried by the table's structure: the dashed separator line, and the *display
columns* where the header labels begin. winget's UI follows the Windows display language, so
the localised strings from winget's ``.resw`` tables below are only hints (to name the 4th
column, to recognise the explicit-targeting title and the "nothing to upgrade" messages).
Whatever cannot be read safely is refused as ``{"code": null, "message": "unparseable"}``
instead of being guessed.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Final, Literal

from lunaris_protocol.text import printable_message

__all__ = [
    "ScanFailure",
    "ScanResult",
    "ScanRow",
    "parse_upgrade_output",
]

ELLIPSIS: Final = "\u2026"
UNPARSEABLE: Final = "unparseable"

# UTF-8 "…" (E2 80 A6) decoded with the wrong code page: cp1252, or cp437 (PowerShell's default).
_ELLIPSIS_MOJIBAKE: Final = ("â€¦", "ΓÇª")
# A lossy capture turns each of the three UTF-8 bytes of "…" into "?".
_LOSSY_ELLIPSIS: Final = "???"


# --------------------------------------------------------------------------------------------
# Public result types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScanRow:
    """One row of an upgrade table (or a ``winget list`` row that has an Available version)."""

    package_identifier: str
    name: str
    installed_version: str
    available_version: str
    source: str | None
    explicit_targeting: bool
    truncated: bool

    def to_json_dict(self) -> dict[str, object]:
        return {
            "package_identifier": self.package_identifier,
            "name": self.name,
            "installed_version": self.installed_version,
            "available_version": self.available_version,
            "source": self.source,
            "explicit_targeting": self.explicit_targeting,
            "truncated": self.truncated,
        }


@dataclass(frozen=True, slots=True)
class ScanFailure:
    """A winget failure (``code`` is the printed HRESULT, e.g. ``0x8A15000F``) or a refusal."""

    code: str | None
    message: str

    def to_json_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class ScanResult:
    updates: tuple[ScanRow, ...]
    error: ScanFailure | None

    def to_json_dict(self) -> dict[str, object]:
        """The scan contract: ``{"updates": [...], "error": null | {"code", "message"}}``."""
        return {
            "updates": [row.to_json_dict() for row in self.updates],
            "error": None if self.error is None else self.error.to_json_dict(),
        }


def _refused() -> ScanResult:
    return ScanResult(updates=(), error=ScanFailure(code=None, message=UNPARSEABLE))


class _UnparseableError(Exception):
    """Raised inside the parse when the output cannot be read safely."""


# --------------------------------------------------------------------------------------------
# Localised strings (winget's .resw tables plus older wordings): hints only
# --------------------------------------------------------------------------------------------


def _fold(text: str) -> str:
    """Compare messages ignoring case, spacing and the closing punctuation."""
    return " ".join(text.casefold().split()).rstrip(" .:;!。：")


def fold_message(text: str) -> str:
    """A message as the tables compare it: case, spacing and closing punctuation ignored."""
    return _fold(text)


_AVAILABLE_LABELS: Final = frozenset(
    _fold(label)
    for label in (
        "Available",
        "Verfügbar",
        "Disponible",
        "Disponibile",
        "利用可能",
        "사용 가능",
        "Disponível",
        "Доступно",
        "可用",
    )
)
_SOURCE_LABELS: Final = frozenset(
    _fold(label)
    for label in (
        "Source",
        "Quelle",
        "Origen",
        "Origine",
        "ソース",
        "원본",
        "Origem",
        "Источник",
        "源",
        "來源",
    )
)
# Labels that contain a space (ko-KR), so a header split on spaces must merge them back.
_MULTIWORD_LABELS: Final = frozenset({_fold("장치 ID"), _fold("사용 가능")})
_MAX_LABEL_WORDS: Final = 3

# "Nothing matched": `winget upgrade` lists no upgradable package, or `upgrade --id` finds no
# installed package with that id (terminated with APPINSTALLER_CLI_ERROR_NO_APPLICATIONS_FOUND).
NO_INSTALLED_PACKAGE_MESSAGES: Final = (
    "No installed package found matching input criteria.",
    "Es wurde kein installiertes Paket gefunden, das den Eingabekriterien entspricht.",
    "No se encontró ningún paquete que coincida con los criterios de entrada.",
    "Aucun package installé ne correspond aux critères saisis.",
    "Non è stato trovato alcun pacchetto installato corrispondente ai criteri di input.",
    "入力条件に一致するインストール済みのパッケージが見つかりませんでした。",
    "입력 조건과 일치하는 설치된 패키지를 찾을 수 없습니다.",
    "Nenhum pacote instalado foi encontrado que corresponda aos critérios de entrada.",
    "Не найдены установленные пакеты, соответствующие введенным условиям.",
    "找不到与输入条件匹配的已安装程序包。",
    "未找到符合輸入條件的已安裝套件。",
)
# "Nothing to apply": the package is installed but no newer (or no applicable) version exists
# (terminated with APPINSTALLER_CLI_ERROR_UPDATE_NOT_APPLICABLE), with the reasons en-US adds.
NO_APPLICABLE_UPGRADE_MESSAGES: Final = (
    # en-US, current and older wordings
    "No applicable upgrade found.",
    "No available upgrade found.",
    "No applicable update found.",
    "No newer package versions are available from the configured sources.",
    "A newer package version is available in a configured source, but it does not apply to "
    "your system or requirements.",
    # de-DE
    "Es wurde kein anwendbares Upgrade gefunden.",
    "Kein verfügbares Upgrade gefunden.",
    "Es wurden keine anwendbaren Aktualisierungen gefunden.",
    # es-ES
    "No se ha encontrado ninguna actualización aplicable.",
    "No se ha encontrado ninguna actualización disponible.",
    # fr-FR
    "Aucune mise à niveau applicable trouvée.",
    "Mise à niveau disponible introuvable.",
    # it-IT
    "Non è stato trovato alcun aggiornamento applicabile.",
    "Non sono stati trovati aggiornamenti disponibili.",
    # ja-JP
    "適用可能なアップグレードは見つかりませんでした。",
    "利用可能なアップグレードが見つかりませんでした。",
    # ko-KR
    "적용 가능한 업그레이드를 찾을 수 없습니다.",
    "사용 가능한 업그레이드를 찾을 수 없습니다.",
    # pt-BR
    "Nenhuma atualização aplicável foi encontrada.",
    "Nenhuma atualização disponível foi encontrada.",
    # ru-RU
    "Применимые обновления не найдены.",
    "Доступные обновления не найдены.",
    # zh-CN
    "找不到适用的升级。",
    "找不到可用的升级。",
    # zh-TW
    "找不到適用的升級。",
    "找不到可用的升級。",
)
_NO_INSTALLED_PACKAGE: Final = frozenset(map(_fold, NO_INSTALLED_PACKAGE_MESSAGES))
_NO_APPLICABLE_UPGRADE: Final = frozenset(map(_fold, NO_APPLICABLE_UPGRADE_MESSAGES))
_NOTHING_MESSAGES: Final = _NO_INSTALLED_PACKAGE | _NO_APPLICABLE_UPGRADE

_EXPLICIT_TITLES: Final = frozenset(
    _fold(title)
    for title in (
        "The following packages have an upgrade available, but require explicit targeting for "
        "upgrade:",
        "Für die folgenden Pakete ist ein Upgrade verfügbar, für das Upgrade ist jedoch eine "
        "explizite Zielgruppenadressierung erforderlich:",
        "Los siguientes paquetes tienen una actualización disponible, pero requieren un destino "
        "explícito para la actualización:",
        "Les packages suivants ont une mise à niveau disponible, mais nécessitent un ciblage "
        "explicite pour la mise à niveau :",
        "Per i pacchetti seguenti è disponibile un aggiornamento, ma è necessario un targeting "
        "esplicito per l'aggiornamento:",
        "次のパッケージにはアップグレードを適用可能ですが、アップグレードには明示的対象化が必要です:",
        "다음 패키지에는 업그레이드를 사용할 수 있지만 업그레이드를 위해 명시적 대상 지정이 "
        "필요합니다.",
        "Os pacotes a seguir têm uma atualização disponível, mas exigem uma segmentação explícita "
        "para atualização:",
        "Для следующих пакетов доступно обновление, но для обновления требуется явный выбор "
        "целевого объекта.",
        "以下程序包有可用的升级，但需要显式目标才能进行升级：",
        "以下套件有可用的升級，但需要升級的明確顯示目標:",
    )
)
# Translations drift between releases: the word "explicit" survives in each of them.
_EXPLICIT_KEYWORDS: Final = (
    "explicit",  # en, fr (explicite)
    "explizit",  # de
    "explícit",  # es, pt-BR
    "esplicit",  # it
    "明示的",  # ja
    "명시적",  # ko
    "явный",  # ru
    "显式",  # zh-CN
    "明確",  # zh-TW
)

_COUNT_TEMPLATES: Final = (
    "{0} upgrades available.",
    "{0} upgrade available.",
    "{0} Aktualisierungen verfügbar.",
    "{0} actualizaciones disponibles.",
    "{0} mises à niveau disponibles.",
    "{0} aggiornamenti disponibili.",
    "{0} アップグレードを利用できます。",
    "{0} 업그레이드를 사용할 수 있습니다.",
    "{0} atualizações disponíveis.",
    "Доступны обновления: {0}.",
    "{0} 升级可用。",
    "{0} 個升級可供使用。",
)
_COUNT_RES: Final = tuple(
    re.compile(re.escape(_fold(template)).replace(re.escape("{0}"), r"(\d+)"))
    for template in _COUNT_TEMPLATES
)

# The trailers name winget's own (untranslated) arguments, whatever the UI language.
_TRAILER_FLAGS: Final = ("--include-unknown", "--include-pinned", "winget pin")

# winget prints these in English only; the HRESULT line that usually follows carries the code.
_FATAL_PREFIXES: Final = (
    "Failed when searching source:",
    "An unexpected error occurred while executing the command",
)
_AGREEMENT_DECLINED: Final = "One or more of the source agreements were not agreed to"


# --------------------------------------------------------------------------------------------
# Display width
# --------------------------------------------------------------------------------------------


def char_width(char: str) -> int:
    """Console columns of one character, as winget counts them (East Asian Wide/Full = 2)."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    return sum(char_width(char) for char in text)


@dataclass(frozen=True, slots=True)
class _Measured:
    """A line with the display column where each of its characters starts."""

    text: str
    starts: tuple[int, ...]
    widths: tuple[int, ...]
    width: int

    @classmethod
    def of(cls, text: str) -> _Measured:
        starts: list[int] = []
        widths: list[int] = []
        column = 0
        for char in text:
            starts.append(column)
            widths.append(char_width(char))
            column += widths[-1]
        return cls(text, tuple(starts), tuple(widths), column)

    def char_at(self, column: int) -> str | None:
        """The character covering ``column`` (None past the end of the line)."""
        if column < 0 or column >= self.width:
            return None
        return self.text[bisect_right(self.starts, column) - 1]

    def index_at(self, column: int) -> int:
        """Index of the first character starting at or after ``column``."""
        index = bisect_left(self.starts, column)
        # Combining marks belong to the character before them, not to the next cell.
        while index < len(self.text) and self.widths[index] == 0:
            index += 1
        return index

    def is_clean_cut(self, column: int) -> bool:
        """A cell boundary must land just after the separating space (or past the row's end)."""
        before = self.char_at(column - 1)
        return column <= 0 or before is None or before == " "

    def starts_token(self, column: int) -> bool:
        here = self.char_at(column)
        return here is not None and here != " " and self.is_clean_cut(column)


# --------------------------------------------------------------------------------------------
# Terminal noise, mojibake and the ellipsis
# --------------------------------------------------------------------------------------------

_ESCAPE_RE: Final = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, ESC[2K line clears, cursor moves
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: ESC]9;4;… taskbar progress
    r"|\x1b[@-Z\\-_]"  # other two-character escapes
)
_CONTROL_RE: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Spinner frame: 3 spaces and one of -\|/ (v1.28 and older draw it even when redirected).
_SPINNER_RE: Final = re.compile(r"^\s*[-\\|/]\s*$")
# Download bar: cells of █/▒ (or their cp437/cp1252 mojibake, or pasted as literal \u2588).
_PROGRESS_RE: Final = re.compile(
    r"^\s*(?:[█▓▒░]|Γû[êÆôæ]|â–[ˆ’“‘]|\\u25(?:88|91|92|93))+(?:\s.*)?$"
)


def clean_message(text: str) -> str:
    """Text winget printed, as a message may carry it: no escape sequences or control
    characters (tabs and line breaks kept)."""
    return printable_message(_ESCAPE_RE.sub("", text))


def strip_terminal_noise(raw: str) -> str:
    """What a console finally shows for one physical line.

    Escape sequences and control characters are removed, and of the ``\\r``-separated redraws
    only the last non-blank one is kept (spinner frames and clear-lines are overwritten).
    """
    segments = [_CONTROL_RE.sub("", part) for part in _ESCAPE_RE.sub("", raw).split("\r")]
    visible = [part for part in segments if part.strip()]
    return visible[-1].rstrip() if visible else ""


def is_progress_noise(line: str) -> bool:
    """Spinner frames and download bars are never part of a scan."""
    return bool(_SPINNER_RE.match(line) or _PROGRESS_RE.match(line))


def repair_mojibake(line: str) -> str:
    """Undo UTF-8 that was decoded as cp1252 or cp437 (e.g. ``â€¦`` or ``ΓÇª`` for ``…``).

    The round trip succeeds only on text that really is such mojibake: correct UTF-8 text with
    non-ASCII characters fails to re-decode and is returned unchanged.
    """
    if line.isascii():
        return line
    for codec in ("cp1252", "cp437"):
        try:
            fixed = line.encode(codec).decode("utf-8")
        except UnicodeError:
            continue
        if fixed != line:
            return fixed
    return line


def normalise_ellipsis(text: str, *, lossy: bool = False) -> str:
    """Turn the mojibake forms of ``…`` back into ``…``.

    With ``lossy``, a ``???`` that ends a word is taken for a lossily captured ``…`` too (a
    winget Id never contains ``?``).
    """
    for form in _ELLIPSIS_MOJIBAKE:
        text = text.replace(form, ELLIPSIS)
    if lossy:
        text = re.sub(r"\?\?\?(?=\s|$)", ELLIPSIS, text)
    return text


def normalise_cell(cell: str) -> str:
    """A cut cell ends in ``…``: report every mojibake/lossy form of it as ``…``."""
    cell = normalise_ellipsis(cell)
    if cell.endswith(_LOSSY_ELLIPSIS):
        cell = cell[: -len(_LOSSY_ELLIPSIS)] + ELLIPSIS
    return cell


def clean_lines(text: str) -> list[str]:
    """Split captured output into the lines a console would show, minus progress noise."""
    lines: list[str] = []
    for raw in text.removeprefix("\ufeff").split("\n"):
        line = repair_mojibake(strip_terminal_noise(raw))
        if is_progress_noise(line):
            continue
        lines.append(normalise_ellipsis(line))
    return lines


# --------------------------------------------------------------------------------------------
# Recognising lines
# --------------------------------------------------------------------------------------------

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
    folded = _fold(line)
    if not folded or _looks_like_row(line):
        return False
    return folded in _EXPLICIT_TITLES or any(word in folded for word in _EXPLICIT_KEYWORDS)


def upgrade_count(line: str) -> int | None:
    """The N of the ``N upgrades available.`` trailer (localised), else None."""
    folded = _fold(line)
    for pattern in _COUNT_RES:
        match = pattern.fullmatch(folded)
        if match is not None:
            return int(match.group(1))
    return None


def is_nothing_to_upgrade(line: str) -> bool:
    """A message that means "no updates": not-found / not-applicable / unknown-count lines."""
    return (
        _fold(line) in _NOTHING_MESSAGES
        or any(flag in line for flag in _TRAILER_FLAGS)
        or upgrade_count(line) == 0
    )


def is_no_installed_package_message(line: str) -> bool:
    """``No installed package found matching input criteria.`` (localised)."""
    return _fold(line) in _NO_INSTALLED_PACKAGE


def is_no_applicable_upgrade_message(line: str) -> bool:
    """``No applicable upgrade found.``, ``No available upgrade found.`` and their reasons."""
    return _fold(line) in _NO_APPLICABLE_UPGRADE


def _is_fatal_line(line: str) -> bool:
    stripped = line.strip()
    return (
        parse_hresult_line(stripped) is not None
        or stripped.startswith(_FATAL_PREFIXES)
        or stripped.startswith(_AGREEMENT_DECLINED)
    )


def _ends_table(line: str) -> bool:
    """Trailers, titles and messages that can follow a table's rows directly."""
    stripped = line.strip()
    return (
        upgrade_count(stripped) is not None
        or is_nothing_to_upgrade(stripped)
        or _fold(stripped) in _EXPLICIT_TITLES  # exact titles only: a Name may say "explicit"
        or _is_result_limit_note(stripped)
        or _is_fatal_line(stripped)
    )


def _starts_install_log(line: str) -> bool:
    return bool(_INSTALL_STEP_RE.match(line.strip()) or _FOUND_LINE_RE.search(line))


def _is_result_limit_note(line: str) -> bool:
    """``<additional entries truncated due to result limit>`` (and its translations)."""
    stripped = line.strip()
    return len(stripped) > 2 and stripped.startswith("<") and stripped.endswith(">")


def _looks_like_row(line: str) -> bool:
    """Could this line be a package row (several cells and a version)?"""
    words = line.split()
    return len(words) >= 3 and (
        bool(_DOTTED_NUMBER_RE.search(line)) or "Unknown" in words or "Latest" in words
    )


def _separator_width(line: str) -> int | None:
    """Width of a table's dashed line (it is as wide as the table), else None."""
    stripped = line.strip()
    if len(stripped) >= 10 and stripped == "-" * len(stripped):
        return len(stripped)
    return None


# --------------------------------------------------------------------------------------------
# Columns
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    label: str
    start: int  # display column where the label, and every cell below it, begins


def _words_with_columns(line: str) -> list[tuple[int, int, str]]:
    """Runs of non-space characters as (start column, end column, text)."""
    words: list[tuple[int, int, str]] = []
    column = 0
    current: list[str] = []
    start = 0
    for char in [*line, " "]:
        if char in " \t":
            if current:
                words.append((start, column, "".join(current)))
                current = []
        else:
            if not current:
                start = column
            current.append(char)
        column += char_width(char)
    return words


def locate_columns(header: str) -> list[Column]:
    """Column labels and their start columns, measured in display width.

    Labels are separated by at least one space; labels that themselves contain a space (ko-KR
    ``장치 ID``) are merged back using the known labels.
    """
    words = _words_with_columns(header)
    columns: list[Column] = []
    index = 0
    while index < len(words):
        last = index
        for candidate in range(index + 1, min(index + _MAX_LABEL_WORDS, len(words))):
            if words[candidate][0] != words[candidate - 1][1] + 1:
                break
            joined = " ".join(word[2] for word in words[index : candidate + 1])
            if _fold(joined) in _MULTIWORD_LABELS:
                last = candidate
        label = " ".join(word[2] for word in words[index : last + 1])
        columns.append(Column(label=label, start=words[index][0]))
        index = last + 1
    return columns


_Role = Literal["available", "source"]


def _role_from_label(label: str) -> _Role | None:
    folded = _fold(label)
    if folded in _AVAILABLE_LABELS:
        return "available"
    if folded in _SOURCE_LABELS:
        return "source"
    return None


def _is_version_like(cell: str) -> bool:
    return any(char.isdigit() for char in cell) or cell in ("Unknown", "Latest")


def _role_from_cells(cells: Iterable[str]) -> _Role:
    """Fallback for an unknown 4th label: versions mean Available, plain names mean Source."""
    values = [cell for cell in cells if cell]
    if all(_is_version_like(value) for value in values):
        return "available" if values else "source"
    if all(re.fullmatch(r"[A-Za-z][\w.-]*", value) for value in values):
        return "source"
    raise _UnparseableError


# --------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------


def _cut(measured: _Measured, boundaries: Sequence[int]) -> list[str] | None:
    """Cells of a row cut at the given display columns, or None when a cut splits a word."""
    if not all(measured.is_clean_cut(boundary) for boundary in boundaries[1:]):
        return None
    indexes = [measured.index_at(boundary) for boundary in boundaries]
    indexes[0] = 0
    indexes.append(len(measured.text))
    return [measured.text[a:b].strip() for a, b in pairwise(indexes)]


def _snap(measured: _Measured, boundaries: Sequence[int]) -> list[str] | None:
    """Re-align a row whose cells are shifted by a wide character measured differently.

    Only non-ASCII text before the first bad cut can explain a shift (ASCII is always one
    column), and the shifted cut must land exactly on a word start: otherwise refuse.
    """
    first_bad = next(
        k for k in range(1, len(boundaries)) if not measured.is_clean_cut(boundaries[k])
    )
    prefix = measured.text[: measured.index_at(boundaries[first_bad])]
    if prefix.isascii():
        return None
    for shift in (-1, 1, -2, 2):
        shifted = [*boundaries[:first_bad], *(b + shift for b in boundaries[first_bad:])]
        if shifted[first_bad] <= shifted[first_bad - 1]:
            continue
        if measured.starts_token(shifted[first_bad]):
            cells = _cut(measured, shifted)
            if cells is not None:
                return cells
    return None


def split_row(line: str, boundaries: Sequence[int], table_width: int) -> list[str] | None:
    """Cut a row at the header's column starts; None when it does not line up.

    Tries the line with a lossy ``???`` read as ``…`` and as shown, preferring the reading that
    fits inside the dashed line (a row is never wider than its table); then, for a row shifted
    by a mis-measured wide character, snaps to the nearest word start.
    """
    candidates = list(dict.fromkeys([normalise_ellipsis(line, lossy=True), line]))
    measured = [_Measured.of(candidate) for candidate in candidates]
    aligned = [(m, cells) for m in measured if (cells := _cut(m, boundaries)) is not None]
    for m, cells in aligned:
        if m.width <= table_width:
            return cells
    if aligned:
        return aligned[0][1]
    for m in measured:
        snapped = _snap(m, boundaries)
        if snapped is not None:
            return snapped
    return None


@dataclass(frozen=True, slots=True)
class _Table:
    columns: tuple[Column, ...]
    width: int
    explicit: bool
    rows: tuple[tuple[str, ...], ...]  # aligned cells, in file order
    end_line: int  # index of the first line after the table


def _read_rows(
    lines: Sequence[str], start: int, columns: Sequence[Column], width: int
) -> tuple[list[tuple[str, ...]], int]:
    """Rows from ``start`` until a blank line, a trailer, the next table or the install log."""
    boundaries = [column.start for column in columns]
    rows: list[tuple[str, ...]] = []
    index = start
    while index < len(lines):
        line = lines[index]
        if not line.strip() or _ends_table(line):
            break
        if index + 1 < len(lines) and _separator_width(lines[index + 1]) is not None:
            break  # this line is the header of the next table
        cells = split_row(line, boundaries, width)
        if cells is not None and cells[1] and cells[2]:
            rows.append(tuple(cells))
        elif _starts_install_log(line):
            break
        elif _looks_like_row(line):
            raise _UnparseableError  # a row that does not line up with the header
        # else: a stray non-row line (redaction, bad paste) inside the table is skipped
        index += 1
    return rows, index


def _roles(table: _Table) -> tuple[int | None, int | None]:
    """Indexes of the Available and Source columns (None when absent)."""
    labels = [column.label for column in table.columns]
    if len(labels) == 3:
        return None, None
    if len(labels) == 5:
        # Name, Id, Version, Available, Source: refuse a header that says otherwise.
        if _role_from_label(labels[3]) == "source" or _role_from_label(labels[4]) == "available":
            raise _UnparseableError
        return 3, 4
    role = _role_from_label(labels[3]) or _role_from_cells(row[3] for row in table.rows)
    return (3, None) if role == "available" else (None, 3)


def _to_updates(table: _Table) -> list[ScanRow]:
    available_index, source_index = _roles(table)
    updates: list[ScanRow] = []
    for cells in table.rows:
        available = cells[available_index] if available_index is not None else ""
        source = cells[source_index] if source_index is not None else None
        if not available:
            continue  # a `winget list` row without an upgrade
        identifier = normalise_cell(cells[1])
        # A catalog Id (the only kind with an Available version) and a source have no spaces.
        if " " in identifier or (source is not None and " " in source):
            raise _UnparseableError
        updates.append(
            ScanRow(
                package_identifier=identifier,
                name=normalise_cell(cells[0]),
                installed_version=cells[2],
                available_version=normalise_cell(available),
                source=source or None,
                explicit_targeting=table.explicit,
                truncated=identifier.endswith(ELLIPSIS),
            )
        )
    return updates


def _header_ahead(lines: Sequence[str], index: int) -> bool:
    """Is this line a header or a title, i.e. is a dashed line one or two lines below?"""
    following = [line for line in lines[index + 1 : index + 6] if line.strip()][:2]
    return any(_separator_width(line) is not None for line in following)


def _is_lost_row(lines: Sequence[str], index: int, previous: _Table) -> bool:
    """A row that lines up with the table above but comes after its end (a pasted blank line).

    It would be silently lost, so the output is refused. Other text after a table (the install
    log's dependency lists, notes) does not line up with the columns and is ignored.
    """
    line = lines[index]
    if not line.strip() or _ends_table(line) or _header_ahead(lines, index):
        return False
    cells = split_row(line, [column.start for column in previous.columns], previous.width)
    return cells is not None and bool(cells[1]) and bool(cells[2])


def _find_tables(lines: Sequence[str]) -> tuple[list[_Table], int]:
    """All tables, and the index where the ``--all`` install log starts (or len(lines))."""
    tables: list[_Table] = []
    index = 0
    while index < len(lines):
        width = _separator_width(lines[index])
        if width is None:
            line = lines[index]
            if tables and _starts_install_log(line):
                return tables, index
            if tables and _is_lost_row(lines, index, tables[-1]):
                raise _UnparseableError  # rows after the table ended (e.g. a blank line pasted)
            index += 1
            continue
        header_index = index - 1
        while header_index >= 0 and not lines[header_index].strip():
            header_index -= 1
        if header_index < (tables[-1].end_line if tables else 0):
            raise _UnparseableError  # a dashed line without a header
        columns = locate_columns(lines[header_index])
        if not 3 <= len(columns) <= 5:
            raise _UnparseableError
        title = lines[header_index - 1] if header_index > 0 else ""
        rows, end = _read_rows(lines, index + 1, columns, width)
        tables.append(
            _Table(
                columns=tuple(columns),
                width=width,
                explicit=is_explicit_targeting_title(title),
                rows=tuple(rows),
                end_line=end,
            )
        )
        index = end
    return tables, len(lines)


# --------------------------------------------------------------------------------------------
# Failures
# --------------------------------------------------------------------------------------------


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
        elif stripped.startswith(_AGREEMENT_DECLINED):
            failure = (index, ScanFailure(code=None, message=stripped))
        elif _is_declined_prompt(stripped):
            failure = (index, ScanFailure(code=None, message="source agreements declined"))
        elif stripped.startswith(_FATAL_PREFIXES):
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


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def parse_upgrade_output(text: str) -> ScanResult:
    """Parse the output of ``winget upgrade`` or ``winget list`` into the scan contract."""
    lines = clean_lines(text)
    if not any(line.strip() for line in lines):
        # winget prints nothing at all when it is broken (e.g. VCLibs missing under SYSTEM).
        return ScanResult(updates=(), error=ScanFailure(code=None, message="empty output"))
    try:
        return _parse_lines(lines)
    except _UnparseableError:
        # An unreadable table still cannot hide a winget failure printed after it.
        failure = find_failure(lines)
        return _refused() if failure is None else ScanResult(updates=(), error=failure[1])


def _parse_lines(lines: Sequence[str]) -> ScanResult:
    tables, install_log = _find_tables(lines)
    # A failure in the `--all` install log is an install outcome, not a scan failure.
    failure = find_failure(lines[:install_log])
    if failure is not None:
        failed_at, error = failure
        complete = [table for table in tables if table.end_line <= failed_at]
        rows = [row for table in complete for row in _to_updates(table)]
        return ScanResult(updates=tuple(rows), error=error)
    if not tables:
        return _without_table(lines)
    updates = [row for table in tables for row in _to_updates(table)]
    _check_count(lines[:install_log], tables, updates)
    return ScanResult(updates=tuple(updates), error=None)


def _without_table(lines: Sequence[str]) -> ScanResult:
    """Output with no table: a "nothing to upgrade" message, or rows we must not guess at."""
    if any(_looks_like_row(line) and not is_nothing_to_upgrade(line) for line in lines):
        return _refused()  # rows without a header or separator (e.g. piped through findstr)
    if any(upgrade_count(line) for line in lines):
        return _refused()  # "N upgrades available." but no table to read them from
    if any(is_nothing_to_upgrade(line) for line in lines):
        return ScanResult(updates=(), error=None)
    return _refused()


def _check_count(
    lines: Sequence[str], tables: Sequence[_Table], updates: Sequence[ScanRow]
) -> None:
    """Cross-check ``N upgrades available.`` (it counts the explicit-targeting rows too)."""
    counts = [count for line in lines if (count := upgrade_count(line)) is not None]
    plain_tables = [table for table in tables if not table.explicit]
    if not counts or len(plain_tables) > 1:
        return  # no count, or a further (e.g. pinned) table the count may not include
    if any(_is_result_limit_note(line) for line in lines):
        return
    # Current winget counts both tables (006, 007); accept a count of the first table alone too.
    first_table = [row for row in updates if not row.explicit_targeting]
    if counts[0] not in (len(updates), len(first_table)):
        raise _UnparseableError  # rows were lost (a cut paste, a redacted row): do not guess


# --------------------------------------------------------------------------------------------
# winget's result codes
# --------------------------------------------------------------------------------------------

# winget's process exit code is an HRESULT. Symbols and texts from winget-cli's
# src/AppInstallerSharedLib/Public/AppInstallerErrors.h and
# doc/windows/package-manager/winget/returnCodes.md (generated by `winget error`); the
# 0x8A1501xx texts are also the messages winget prints when it maps an installer's exit code.
WINGET_HRESULTS: Final[Mapping[int, tuple[str, str]]] = {
    0x8A150001: ("APPINSTALLER_CLI_ERROR_INTERNAL_ERROR", "Internal Error"),
    0x8A150002: (
        "APPINSTALLER_CLI_ERROR_INVALID_CL_ARGUMENTS",
        "Invalid command line arguments (winget before v1.4 rejects --disable-interactivity)",
    ),
    0x8A150003: ("APPINSTALLER_CLI_ERROR_COMMAND_FAILED", "Executing command failed"),
    0x8A150005: ("APPINSTALLER_CLI_ERROR_CTRL_SIGNAL_RECEIVED", "Cancellation signal received"),
    0x8A150006: ("APPINSTALLER_CLI_ERROR_SHELLEXEC_INSTALL_FAILED", "Running ShellExecute failed"),
    0x8A150008: ("APPINSTALLER_CLI_ERROR_DOWNLOAD_FAILED", "Downloading installer failed"),
    0x8A15000A: ("APPINSTALLER_CLI_ERROR_INDEX_INTEGRITY_COMPROMISED", "The index is corrupt"),
    0x8A15000B: (
        "APPINSTALLER_CLI_ERROR_SOURCES_INVALID",
        "The configured source information is corrupt",
    ),
    0x8A15000F: (
        "APPINSTALLER_CLI_ERROR_SOURCE_DATA_MISSING",
        "Data required by the source is missing (fix: winget source reset --force)",
    ),
    0x8A150010: (
        "APPINSTALLER_CLI_ERROR_NO_APPLICABLE_INSTALLER",
        "None of the installers are applicable for the current system",
    ),
    0x8A150011: (
        "APPINSTALLER_CLI_ERROR_INSTALLER_HASH_MISMATCH",
        "The installer file's hash does not match the manifest",
    ),
    0x8A150012: (
        "APPINSTALLER_CLI_ERROR_SOURCE_NAME_DOES_NOT_EXIST",
        "The source name does not exist",
    ),
    0x8A150014: ("APPINSTALLER_CLI_ERROR_NO_APPLICATIONS_FOUND", "No packages found"),
    0x8A150015: ("APPINSTALLER_CLI_ERROR_NO_SOURCES_DEFINED", "No sources are configured"),
    0x8A150016: (
        "APPINSTALLER_CLI_ERROR_MULTIPLE_APPLICATIONS_FOUND",
        "Multiple packages found matching the criteria",
    ),
    0x8A150017: (
        "APPINSTALLER_CLI_ERROR_NO_MANIFEST_FOUND",
        "No manifest found matching the criteria",
    ),
    0x8A150019: (
        "APPINSTALLER_CLI_ERROR_COMMAND_REQUIRES_ADMIN",
        "Command requires administrator privileges to run",
    ),
    0x8A15002B: ("APPINSTALLER_CLI_ERROR_UPDATE_NOT_APPLICABLE", "No applicable update found"),
    0x8A15002C: (
        "APPINSTALLER_CLI_ERROR_UPDATE_ALL_HAS_FAILURE",
        "winget upgrade --all completed with failures",
    ),
    0x8A15002D: (
        "APPINSTALLER_CLI_ERROR_INSTALLER_SECURITY_CHECK_FAILED",
        "Installer failed security check",
    ),
    0x8A15002E: (
        "APPINSTALLER_CLI_ERROR_DOWNLOAD_SIZE_MISMATCH",
        "Download size does not match expected content length",
    ),
    0x8A150035: (
        "APPINSTALLER_CLI_ERROR_NOT_ALL_PACKAGES_FOUND",
        "Could not find one or more requested packages",
    ),
    0x8A15003A: (
        "APPINSTALLER_CLI_ERROR_BLOCKED_BY_POLICY",
        "Operation is blocked by Group Policy",
    ),
    0x8A15003F: (
        "APPINSTALLER_CLI_ERROR_SOURCE_DATA_INTEGRITY_FAILURE",
        "The source data is corrupted or tampered",
    ),
    0x8A150041: (
        "APPINSTALLER_CLI_ERROR_PACKAGE_AGREEMENTS_NOT_ACCEPTED",
        "Package agreements were not agreed to",
    ),
    0x8A150042: ("APPINSTALLER_CLI_ERROR_PROMPT_INPUT_ERROR", "Error reading input in prompt"),
    0x8A150044: (
        "APPINSTALLER_CLI_ERROR_RESTAPI_ENDPOINT_NOT_FOUND",
        "The rest API endpoint is not found",
    ),
    0x8A150045: ("APPINSTALLER_CLI_ERROR_SOURCE_OPEN_FAILED", "Failed to open the source"),
    0x8A150046: (
        "APPINSTALLER_CLI_ERROR_SOURCE_AGREEMENTS_NOT_ACCEPTED",
        "Source agreements were not agreed to",
    ),
    0x8A150049: ("APPINSTALLER_CLI_ERROR_MSI_INSTALL_FAILED", "Running MSI install failed"),
    0x8A15004B: (
        "APPINSTALLER_CLI_ERROR_FAILED_TO_OPEN_ALL_SOURCES",
        "Failed to open one or more sources",
    ),
    0x8A15004F: (
        "APPINSTALLER_CLI_ERROR_UPGRADE_VERSION_NOT_NEWER",
        "The upgrade version is not newer than the installed version",
    ),
    0x8A150050: (
        "APPINSTALLER_CLI_ERROR_UPGRADE_VERSION_UNKNOWN",
        "Upgrade version is unknown and override is not specified",
    ),
    0x8A150052: (
        "APPINSTALLER_CLI_ERROR_PORTABLE_INSTALL_FAILED",
        "Failed to install portable package",
    ),
    0x8A150056: (
        "APPINSTALLER_CLI_ERROR_INSTALLER_PROHIBITS_ELEVATION",
        "The installer cannot be run from an administrator context",
    ),
    0x8A15005E: (
        "APPINSTALLER_CLI_ERROR_PINNED_CERTIFICATE_MISMATCH",
        "The server certificate did not match any of the expected values",
    ),
    0x8A150065: (
        "APPINSTALLER_CLI_ERROR_MULTIPLE_INSTALL_FAILED",
        "One or more applications failed to install",
    ),
    0x8A150068: (
        "APPINSTALLER_CLI_ERROR_PACKAGE_IS_PINNED",
        "The package has a pin that prevents upgrade",
    ),
    0x8A15006D: (
        "APPINSTALLER_CLI_ERROR_SERVICE_UNAVAILABLE",
        "A required service is busy or unavailable. Try again later.",
    ),
    0x8A150086: (
        "APPINSTALLER_CLI_ERROR_INSTALLER_ZERO_BYTE_FILE",
        "Downloaded zero byte installer; ensure that your network connection is working properly.",
    ),
    # Install errors: an installer's own exit code, mapped by the manifest's ExpectedReturnCodes
    # or winget's defaults (e.g. msiexec 1618 -> INSTALL_IN_PROGRESS, 3010 -> REBOOT_REQUIRED).
    0x8A150101: (
        "APPINSTALLER_CLI_ERROR_INSTALL_PACKAGE_IN_USE",
        "Application is currently running. Exit the application then try again.",
    ),
    0x8A150102: (
        "APPINSTALLER_CLI_ERROR_INSTALL_INSTALL_IN_PROGRESS",
        "Another installation is already in progress. Try again later.",
    ),
    0x8A150103: (
        "APPINSTALLER_CLI_ERROR_INSTALL_FILE_IN_USE",
        "One or more file is being used. Exit the application then try again.",
    ),
    0x8A150104: (
        "APPINSTALLER_CLI_ERROR_INSTALL_MISSING_DEPENDENCY",
        "This package has a dependency missing from your system.",
    ),
    0x8A150105: (
        "APPINSTALLER_CLI_ERROR_INSTALL_DISK_FULL",
        "There's no more space on your PC. Make space, then try again.",
    ),
    0x8A150106: (
        "APPINSTALLER_CLI_ERROR_INSTALL_INSUFFICIENT_MEMORY",
        "There's not enough memory available to install. Close other applications then try again.",
    ),
    0x8A150107: (
        "APPINSTALLER_CLI_ERROR_INSTALL_NO_NETWORK",
        "This application requires internet connectivity. Connect to a network then try again.",
    ),
    0x8A150108: (
        "APPINSTALLER_CLI_ERROR_INSTALL_CONTACT_SUPPORT",
        "This application encountered an error during installation. Contact support.",
    ),
    0x8A150109: (
        "APPINSTALLER_CLI_ERROR_INSTALL_REBOOT_REQUIRED_TO_FINISH",
        "Restart your PC to finish installation.",
    ),
    0x8A15010A: (
        "APPINSTALLER_CLI_ERROR_INSTALL_REBOOT_REQUIRED_TO_INSTALL",
        "Installation failed. Restart your PC then try again.",
    ),
    0x8A15010B: (
        "APPINSTALLER_CLI_ERROR_INSTALL_REBOOT_INITIATED",
        "Your PC will restart to finish installation.",
    ),
    0x8A15010C: (
        "APPINSTALLER_CLI_ERROR_INSTALL_CANCELLED_BY_USER",
        "You cancelled the installation.",
    ),
    0x8A15010D: (
        "APPINSTALLER_CLI_ERROR_INSTALL_ALREADY_INSTALLED",
        "Another version of this application is already installed.",
    ),
    0x8A15010E: (
        "APPINSTALLER_CLI_ERROR_INSTALL_DOWNGRADE",
        "A higher version of this application is already installed.",
    ),
    0x8A15010F: (
        "APPINSTALLER_CLI_ERROR_INSTALL_BLOCKED_BY_POLICY",
        "Organization policies are preventing installation. Contact your admin.",
    ),
    0x8A150110: (
        "APPINSTALLER_CLI_ERROR_INSTALL_DEPENDENCIES",
        "Failed to install package dependencies.",
    ),
    0x8A150111: (
        "APPINSTALLER_CLI_ERROR_INSTALL_PACKAGE_IN_USE_BY_APPLICATION",
        "Application is currently in use by another application.",
    ),
    0x8A150112: ("APPINSTALLER_CLI_ERROR_INSTALL_INVALID_PARAMETER", "Invalid parameter."),
    0x8A150113: (
        "APPINSTALLER_CLI_ERROR_INSTALL_SYSTEM_NOT_SUPPORTED",
        "Package not supported by the system.",
    ),
    0x8A150114: (
        "APPINSTALLER_CLI_ERROR_INSTALL_UPGRADE_NOT_SUPPORTED",
        "The installer does not support upgrading an existing package.",
    ),
    0x8A150115: (
        "APPINSTALLER_CLI_ERROR_INSTALL_CUSTOM_ERROR",
        "Installation failed with installer custom error.",
    ),
    # Windows errors seen from winget itself.
    0x80072EFD: (
        "WININET_E_CANNOT_CONNECT",
        "Cannot connect to the server (network failure while updating the source)",
    ),
    0x8000FFFF: ("E_UNEXPECTED", "Catastrophic failure"),
}


def format_hresult(code: int) -> str:
    """An exit code as winget's HRESULT text: ``-1978335217`` and ``2316632079`` -> ``0x8A15000F``.

    PowerShell reports the code signed, Python on Windows unsigned: both are the same DWORD.
    """
    return f"0x{code & 0xFFFFFFFF:08X}"


def describe_hresult(code: int) -> str:
    """``0x8A15000F (APPINSTALLER_CLI_ERROR_SOURCE_DATA_MISSING: Data required by …)``."""
    text = format_hresult(code)
    known = WINGET_HRESULTS.get(code & 0xFFFFFFFF)
    return text if known is None else f"{text} ({known[0]}: {known[1]})"
