"""The software inventory: everything ``winget list`` shows on a PC, not only what it can
upgrade, and the digest that lets a steady PC say "nothing changed" in 64 characters.

The agent sends :class:`InventoryReport` with only the digest first; the server answers
``full_list_needed`` when it does not hold that digest, and the agent sends the list with it.
"""

import hashlib
import json
from collections.abc import Iterable
from typing import Annotated, Final

from pydantic import Field, StringConstraints, model_validator

from lunaris_protocol._base import WireModel, WireReply
from lunaris_protocol.agent import ScanError
from lunaris_protocol.limits import MAX_IDENTIFIER, MAX_NAME, MAX_SOURCE, MAX_VERSION
from lunaris_protocol.scope import Scoped
from lunaris_protocol.text import DISPLAY_TEXT, IDENTIFIER

MAX_SOFTWARE_PER_REPORT: Final = 5_000
DIGEST_PATTERN: Final = r"^[0-9a-f]{64}$"

Digest = Annotated[str, StringConstraints(pattern=DIGEST_PATTERN)]
"""SHA-256 in lower-case hex of a list's normal form: :func:`list_digest`."""


class InstalledItem(Scoped):
    """One row of ``winget list``: a winget package, or an ARP or MSIX entry without a source
    (whose id may hold spaces: ``Adobe AIR``)."""

    package_identifier: Annotated[
        str, StringConstraints(min_length=1, max_length=MAX_IDENTIFIER), IDENTIFIER
    ]
    name: Annotated[str, StringConstraints(max_length=MAX_NAME), DISPLAY_TEXT]
    version: Annotated[str, StringConstraints(max_length=MAX_VERSION), IDENTIFIER]
    """As winget prints it (``Unknown``, ``< 1.4.3``, ``2004.2021.222.0``)."""
    source: Annotated[str, StringConstraints(max_length=MAX_SOURCE), IDENTIFIER] | None = None
    truncated: bool = False
    """winget cut the id with ``…``: it names no package exactly."""


class InventoryReport(WireModel):
    """What is installed now. ``software`` is left out while the server may hold ``digest``
    already; a failed ``winget list`` sends ``scan_error`` alone and keeps the last list."""

    digest: Digest | None = None
    software: list[InstalledItem] | None = Field(default=None, max_length=MAX_SOFTWARE_PER_REPORT)
    scan_error: ScanError | None = None

    @model_validator(mode="after")
    def _says_one_thing(self) -> "InventoryReport":
        if self.software is not None and self.scan_error is not None:
            raise ValueError("an inventory report carries a list or a scan error, not both")
        if self.software is None and self.scan_error is None and self.digest is None:
            raise ValueError("an inventory report needs a digest, a list or a scan error")
        return self


class InventoryReportResponse(WireReply):
    full_list_needed: bool = False
    """The server does not hold the digest sent alone: send it again with the list."""
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0


def list_digest(items: Iterable[WireModel]) -> str:
    """The digest of a list of wire rows, whatever their order: SHA-256 of their sorted
    canonical JSON lines. Fields at their default are left out, so a field added later (with
    a default) does not change the digest of lists that do not use it. The agent and the
    server both compute it with this function: one normal form, on both sides."""
    lines = sorted(
        json.dumps(
            item.model_dump(mode="json", exclude_defaults=True),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        for item in items
    )
    hashed = hashlib.sha256()
    for line in lines:
        hashed.update(line.encode("utf-8"))
        hashed.update(b"\n")
    return hashed.hexdigest()
