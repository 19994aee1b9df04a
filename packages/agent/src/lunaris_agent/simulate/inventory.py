"""What ``winget upgrade`` shows on one virtual PC: drawn from the catalog by a generator
seeded with the device's id, so the same device always starts from the same list; then a few
updates are resolved and new ones detected per scan. Remote actions take a few seconds per
package and fail now and then, as real installers do."""

import asyncio
import random
from uuid import UUID

from lunaris_agent.simulate.catalog import CATALOG, EXPLICIT_TARGETING, SCAN_ERRORS
from lunaris_agent.winget.outcome import InstallOutcome
from lunaris_protocol import UpdateItem, UpdateReport

SCAN_ERROR_RATE = 0.04
INSTALL_SECONDS = (1.0, 4.0)
INSTALL_FAILURE_RATE = 0.1
INSTALL_REBOOT_RATE = 0.05
RESOLVE_RATE = 0.05
"""Chance, per update and scan, that it was installed since the last scan."""
DETECT_RATE = 0.5
"""Chance, per scan, that one new update shows up."""


class Inventory:
    """What ``winget upgrade`` shows on one virtual device, drifting a little every scan."""

    def __init__(self, device_id: UUID) -> None:
        self._rng = random.Random(f"inventory:{device_id}")  # noqa: S311 - stable per device
        picks = self._rng.sample(CATALOG, self._rng.randint(4, 18))
        self._pending = {row[0]: self._item(row) for row in picks}
        self._scanned = False

    def scan(self) -> UpdateReport:
        if self._scanned:
            self._drift()
        self._scanned = True
        if self._rng.random() < SCAN_ERROR_RATE:
            return UpdateReport(scan_error=self._rng.choice(SCAN_ERRORS))
        return UpdateReport(updates=list(self._pending.values()))

    async def install(self, package: str, version: str | None = None) -> InstallOutcome:
        """A remote action on the virtual PC: takes a few seconds, mostly works."""
        await asyncio.sleep(self._rng.uniform(*INSTALL_SECONDS))
        if package not in self._pending:
            return InstallOutcome("no_applicable_upgrade", package, None, "0x8A15002B")
        if version is not None and version != self._pending[package].available_version:
            message = f"No version found matching: {version}"
            return InstallOutcome("version_unavailable", package, None, "0x8A150017", message)
        roll = self._rng.random()
        if roll < INSTALL_FAILURE_RATE:
            message = "Installer failed with exit code: 1603"
            return InstallOutcome("installer_failed", package, 1603, "0x8A150006", message)
        del self._pending[package]
        if roll < INSTALL_FAILURE_RATE + INSTALL_REBOOT_RATE:
            return InstallOutcome("success_reboot_required", package, 3010, None)
        return InstallOutcome("success", package, None, None)

    def _drift(self) -> None:
        for identifier in list(self._pending):
            if self._rng.random() < RESOLVE_RATE:
                del self._pending[identifier]
        if self._rng.random() < DETECT_RATE:
            new = [row for row in CATALOG if row[0] not in self._pending]
            if new:
                row = self._rng.choice(new)
                self._pending[row[0]] = self._item(row)

    def _item(self, row: tuple[str, str, str, str]) -> UpdateItem:
        identifier, name, installed, available = row
        return UpdateItem(
            package_identifier=identifier,
            name=name,
            installed_version=self._rng.choice(installed.split("|")),
            available_version=available,
            source="winget" if "." in identifier else "msstore",
            explicit_targeting=identifier in EXPLICIT_TARGETING,
            truncated=identifier.endswith("…"),
        )
