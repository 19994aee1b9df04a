"""A scan as the wire carries it: the :class:`~lunaris_protocol.UpdateReport` the agent sends."""

from __future__ import annotations

from pydantic import ValidationError

from lunaris_agent.winget.results import ScanResult
from lunaris_protocol import ScanError, UpdateItem, UpdateReport
from lunaris_protocol.limits import MAX_ERROR_CODE, MAX_MESSAGE


def report_from_scan(result: ScanResult) -> UpdateReport:
    """The wire report for one scan. A winget failure becomes a scan error, never an empty
    list (the server would take that to mean every update was installed)."""
    if result.error is not None:
        return UpdateReport(
            scan_error=ScanError(
                code=(result.error.code or None) and result.error.code[:MAX_ERROR_CODE],
                message=result.error.message[:MAX_MESSAGE],
            )
        )
    try:
        return UpdateReport(
            updates=[
                UpdateItem(
                    package_identifier=row.package_identifier,
                    name=row.name,
                    installed_version=row.installed_version,
                    available_version=row.available_version,
                    source=row.source,
                    explicit_targeting=row.explicit_targeting,
                    truncated=row.truncated,
                )
                for row in result.updates
            ]
        )
    except ValidationError as error:
        # Rows the protocol cannot carry (too many, or too long): say so instead of cutting.
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        message = f"winget listed {len(result.updates)} updates this agent cannot report: "
        return UpdateReport(
            scan_error=ScanError(
                code="report_invalid", message=f"{message}{where}: {problem['msg']}"
            )
        )
