"""Which characters text on the wire may hold.

Control characters (Unicode category Cc: NUL, BEL, tab, ...) and format characters (Cf: the
bidi overrides, zero-width spaces) are invisible or rearrange what is around them. In an
identifier (a package id, a version, a hostname, a name an admin gave) they are refused:
one id could look like another, and a NUL cannot be stored by PostgreSQL at all (SQLite
stored it). Display names (package names, OS descriptions) may keep format characters,
which some scripts need; the console shows them isolated. Messages may keep tabs and line
breaks.
"""

import unicodedata

from pydantic import AfterValidator

_LINE_BREAKS = frozenset("\t\n\r")


def invisible_character(text: str, *, allow_format: bool = False) -> str | None:
    """The first control (or, unless allowed, format) character in ``text``; None if none."""
    refused = ("Cc",) if allow_format else ("Cc", "Cf")
    for char in text:
        if unicodedata.category(char) in refused:
            return char
    return None


def _refuse(char: str) -> None:
    kind = "control" if unicodedata.category(char) == "Cc" else "format"
    raise ValueError(f"must not contain {kind} characters (found U+{ord(char):04X})")


def check_identifier(text: str) -> str:
    """``text`` if it has no control or format character; ValueError otherwise."""
    char = invisible_character(text)
    if char is not None:
        _refuse(char)
    return text


def check_display_text(text: str) -> str:
    char = invisible_character(text, allow_format=True)
    if char is not None:
        _refuse(char)
    return text


def check_message(text: str) -> str:
    kept = text.translate(dict.fromkeys(map(ord, _LINE_BREAKS)))
    char = invisible_character(kept, allow_format=True)
    if char is not None:
        _refuse(char)
    return text


def printable_message(text: str) -> str:
    """``text`` without its control characters, tabs and line breaks kept: what a sender
    makes of text it did not write (an installer's output) before sending it as a message."""
    return "".join(
        char for char in text if char in _LINE_BREAKS or unicodedata.category(char) != "Cc"
    )


IDENTIFIER = AfterValidator(check_identifier)
"""For ``Annotated[str, ..., IDENTIFIER]``: no control or format characters."""
DISPLAY_TEXT = AfterValidator(check_display_text)
"""No control characters; format characters allowed (shown isolated)."""
MESSAGE_TEXT = AfterValidator(check_message)
"""No control characters but tabs and line breaks."""
