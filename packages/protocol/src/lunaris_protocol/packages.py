"""Rules about package identifiers that the server and the agent both apply.

The server refuses a command for a package the agent would refuse to install, and the agent
refuses to hand winget an id it cannot take: both ask :func:`is_targetable_id`.
"""

from typing import Final

from lunaris_protocol.limits import MAX_IDENTIFIER, MAX_VERSION
from lunaris_protocol.text import invisible_character

TRUNCATION_MARKS: Final = ("\u2026", "â€¦", "ΓÇª", "???")
"""How an id that winget cut short ends: its ellipsis ``…``, that ellipsis read with the wrong
code page (cp1252, cp437), or a lossy capture's ``???``."""


def is_targetable_id(package_id: str) -> bool:
    """Can ``winget upgrade --id`` be given this id?

    A truncated id (winget cut it with ``…``) names a different package or none at all, an id
    with spaces is a local ARP entry, an id starting with ``-`` would read as an option, and
    one with control or format characters (a NUL cannot even be passed to a process) is no
    winget id.
    """
    return (
        0 < len(package_id) <= MAX_IDENTIFIER
        and invisible_character(package_id) is None
        and not package_id.startswith("-")
        and not any(char.isspace() for char in package_id)
        and not package_id.endswith(TRUNCATION_MARKS)
    )


def is_targetable_version(version: str) -> bool:
    """Can ``winget upgrade --version`` be given this version?

    What the agent installs exactly: a version as winget listed it available, not cut short,
    without spaces, control or format characters, and not one winget prints for a version it
    cannot tell (``Unknown``) or a range (``< 1.4``).
    """
    return (
        0 < len(version) <= MAX_VERSION
        and invisible_character(version) is None
        and not version.startswith(("-", "<", ">"))
        and not any(char.isspace() for char in version)
        and not version.endswith(TRUNCATION_MARKS)
        and version.casefold() != "unknown"
    )


SOURCES: Final = ("winget", "msstore")
"""The winget sources Lunaris knows: a command or a rule may name one of these."""
