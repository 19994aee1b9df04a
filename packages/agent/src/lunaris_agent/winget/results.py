"""What a scan found: the scan contract (``{"updates": [...], "error": null | {...}}``), as
``lunaris-agent scan --json`` prints it and the runtime turns it into the wire's report."""

from __future__ import annotations

from dataclasses import dataclass


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
