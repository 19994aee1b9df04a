"""Device tags: the one rule for what a tag is, applied by the agent to its config, by the
server to what agents and admins send, and by group rules that match tags.

A tag is a short, case-folded word such as ``berlin``, ``finance`` or ``kiosk``: letters,
digits, ``-``, ``_`` and ``.``, starting with a letter or digit. Case never makes two tags
(``Berlin`` is ``berlin``), so a group's rule and a PC's config cannot disagree by spelling.
"""

import re
from typing import Annotated, Final

from pydantic import AfterValidator, BeforeValidator, Field

MAX_TAG: Final = 64
MAX_TAGS: Final = 32
"""Tags per device of each kind (the agent's, the admins')."""

_TAG: Final = re.compile(r"[a-z0-9][a-z0-9._-]*")


def normalise_tag(raw: str) -> str:
    """``raw`` as a tag (trimmed, case-folded), or ValueError saying what is wrong with it."""
    tag = raw.strip().lower()
    if not tag:
        raise ValueError("a tag cannot be empty")
    if len(tag) > MAX_TAG:
        raise ValueError(f"a tag has at most {MAX_TAG} characters")
    if not _TAG.fullmatch(tag):
        raise ValueError(
            f"{tag[:MAX_TAG]!r} is not a tag: use letters, digits, '-', '_' and '.', "
            "starting with a letter or digit"
        )
    return tag


def normalise_tags(raw: list[str]) -> list[str]:
    """Each tag normalised, duplicates dropped, sorted: the form stored and compared."""
    tags = sorted({normalise_tag(tag) for tag in raw})
    if len(tags) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags")
    return tags


def split_tags(text: str) -> list[str]:
    """Tags written as one comma-separated text (an MSI property, a form field)."""
    return [part for part in text.split(",") if part.strip()]


def _listed(value: object) -> object:
    return split_tags(value) if isinstance(value, str) else value


Tag = Annotated[str, AfterValidator(normalise_tag)]
TagList = Annotated[
    list[Annotated[str, Field(max_length=4 * MAX_TAG)]],
    BeforeValidator(_listed),
    AfterValidator(normalise_tags),
    Field(max_length=4 * MAX_TAGS),
]
"""A list of tags (or one comma-separated text), normalised and de-duplicated; at most
:data:`MAX_TAGS` distinct tags."""
