"""A scan as the wire carries it: the :class:`~lunaris_protocol.UpdateReport` the agent sends;
and a ``winget list`` as :class:`~lunaris_protocol.inventory.InventoryReport`."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from lunaris_agent.winget.results import InventoryResult, ScanFailure, ScanResult
from lunaris_protocol import ScanError, UpdateItem, UpdateReport
from lunaris_protocol.inventory import InstalledItem, InventoryReport, list_digest
from lunaris_protocol.limits import MAX_ERROR_CODE, MAX_MESSAGE


def report_from_scan(result: ScanResult, *, user: str | None = None) -> UpdateReport:
    """The wire report for one scan. A winget failure becomes a scan error, never an empty
    list (the server would take that to mean every update was installed). ``user``: the scan
    ran in this account's session, so its rows are in that user's profile (``scope="user"``)."""
    if result.error is not None:
        return UpdateReport(scan_error=_scan_error(result.error))
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
                    **_scoped(user),
                )
                for row in result.updates
            ]
        )
    except ValidationError as error:
        # Rows the protocol cannot carry (too many, or too long): say so instead of cutting.
        what = f"{len(result.updates)} updates"
        return UpdateReport(scan_error=_report_invalid(what, error))


def inventory_from_list(result: InventoryResult, *, user: str | None = None) -> InventoryReport:
    """The wire report for one ``winget list``: its digest and the whole list. A failure is a
    scan error alone (the server keeps the last list), never an empty or a shortened list.
    ``user`` as for :func:`report_from_scan`."""
    if result.error is not None:
        return InventoryReport(scan_error=_scan_error(result.error))
    try:
        items = [
            InstalledItem(
                package_identifier=row.package_identifier,
                name=row.name,
                version=row.version,
                source=row.source,
                truncated=row.truncated,
                **_scoped(user),
            )
            for row in result.software
        ]
        return InventoryReport(digest=list_digest(items), software=items)
    except ValidationError as error:
        # Rows the protocol cannot carry (too many, or too long): say so instead of cutting.
        what = f"{len(result.software)} installed packages"
        return InventoryReport(scan_error=_report_invalid(what, error))


def _scoped(user: str | None) -> dict[str, Any]:
    """The rows' ``scope`` and ``user``: left at their defaults (the machine) without a user."""
    return {} if user is None else {"scope": "user", "user": user}


def _scan_error(failure: ScanFailure) -> ScanError:
    return ScanError(
        code=(failure.code or None) and failure.code[:MAX_ERROR_CODE],
        message=failure.message[:MAX_MESSAGE],
    )


def _report_invalid(what: str, error: ValidationError) -> ScanError:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    message = f"winget listed {what} this agent cannot report: {where}: {problem['msg']}"
    return ScanError(code="report_invalid", message=message[:MAX_MESSAGE])
