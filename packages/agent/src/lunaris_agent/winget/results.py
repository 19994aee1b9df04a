"""What a scan found: the scan contract (``{"updates": [...], "error": null | {...}}``), as
``lunaris-agent scan --json`` prints it and the runtime turns it into the wire's report; and
what ``winget list`` showed, the inventory (``{"software": [...], "error": null | {...}}``), as
``lunaris-agent inventory --json`` prints it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


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
        return json_dict(self)


@dataclass(frozen=True, slots=True)
class ScanFailure:
    """A winget failure (``code`` is the printed HRESULT, e.g. ``0x8A15000F``) or a refusal."""

    code: str | None
    message: str

    def to_json_dict(self) -> dict[str, object]:
        return json_dict(self)


@dataclass(frozen=True, slots=True)
class ScanResult:
    updates: tuple[ScanRow, ...]
    error: ScanFailure | None

    def to_json_dict(self) -> dict[str, object]:
        """The scan contract: ``{"updates": [...], "error": null | {"code", "message"}}``."""
        return json_dict(self)


@dataclass(frozen=True, slots=True)
class InstalledRow:
    """One row of ``winget list``: a winget package, or an ARP or MSIX entry without a source
    (whose id may hold spaces: ``Adobe AIR``)."""

    package_identifier: str
    name: str
    version: str
    """As winget prints it: ``Unknown``, ``< 1.4.3``, ``2004.2021.222.0``."""
    source: str | None
    """The Source cell, or None when it is empty or the table has no Source column."""
    truncated: bool
    """winget cut the id with ``…``: it names no package exactly."""

    def to_json_dict(self) -> dict[str, object]:
        return json_dict(self)


@dataclass(frozen=True, slots=True)
class InventoryResult:
    software: tuple[InstalledRow, ...]
    error: ScanFailure | None

    def to_json_dict(self) -> dict[str, object]:
        """The inventory: ``{"software": [...], "error": null | {"code", "message"}}``."""
        return json_dict(self)


def json_dict(record: Any) -> dict[str, object]:
    """A dataclass as JSON takes it: its fields in order, nested ones as dicts, tuples as
    lists."""
    return {name: _lists(value) for name, value in asdict(record).items()}


def _lists(value: object) -> object:
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(item) for item in value]
    return value
