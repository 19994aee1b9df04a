"""What ``winget upgrade`` and ``winget list`` show on one virtual PC: drawn from the catalog
by generators seeded with the device's id, so the same device always starts from the same
lists; then a few updates are resolved and new ones detected per scan, and what is installed
follows (an update resolved or installed is the available version now). Remote actions take a
few seconds per package and fail now and then, as real installers do."""

import asyncio
import random
from uuid import UUID, uuid5

from lunaris_agent.simulate.catalog import (
    ARP_PROGRAMS,
    CATALOG,
    EXPLICIT_TARGETING,
    IN_HOUSE_WORDS,
    MSIX_APPS,
    SCAN_ERRORS,
    UP_TO_DATE,
)
from lunaris_agent.winget.outcome import InstallOutcome
from lunaris_protocol import InstalledItem, InventoryReport, UpdateItem, UpdateReport, list_digest

SCAN_ERROR_RATE = 0.04
INSTALL_SECONDS = (1.0, 4.0)
INSTALL_FAILURE_RATE = 0.1
INSTALL_REBOOT_RATE = 0.05
RESOLVE_RATE = 0.05
"""Chance, per update and scan, that it was installed since the last scan."""
DETECT_RATE = 0.5
"""Chance, per scan, that one new update shows up."""
DEFAULT_APPS = 150
"""What ``winget list`` shows on an office PC, give or take a fifth per device."""
LIST_ERROR_RATE = 0.02
ARP_NAMESPACE = UUID("6f1c2b1e-5d1a-4c1e-9a55-0c3b1f2e7a10")
"""Product codes of the simulated programs: the same program has the same one on every PC."""


class Inventory:
    """What ``winget upgrade`` shows on one virtual device, drifting a little every scan."""

    def __init__(self, device_id: UUID, *, apps: int = DEFAULT_APPS) -> None:
        """``apps``: about how many programs ``winget list`` shows (a fifth more or less)."""
        self._rng = random.Random(f"inventory:{device_id}")  # noqa: S311 - stable per device
        picks = self._rng.sample(CATALOG, self._rng.randint(4, 18))
        self._pending = {row[0]: self._item(row) for row in picks}
        self._scanned = False
        # A generator of its own: the updates drift as they did before the inventory.
        self._listing = random.Random(f"installed:{device_id}")  # noqa: S311
        count = self._listing.randint(round(apps * 0.8), round(apps * 1.2))
        self._installed = self._draw_installed(count)

    @property
    def installed(self) -> list[InstalledItem]:
        return list(self._installed.values())

    def list_installed(self) -> InventoryReport:
        """What ``winget list`` shows now, or now and then the error it fails with."""
        if self._listing.random() < LIST_ERROR_RATE:
            return InventoryReport(scan_error=self._listing.choice(SCAN_ERRORS))
        software = self.installed
        return InventoryReport(digest=list_digest(software), software=software)

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
        self._resolve(package)
        if roll < INSTALL_FAILURE_RATE + INSTALL_REBOOT_RATE:
            return InstallOutcome("success_reboot_required", package, 3010, None)
        return InstallOutcome("success", package, None, None)

    def _drift(self) -> None:
        for identifier in list(self._pending):
            if self._rng.random() < RESOLVE_RATE:
                self._resolve(identifier)
        if self._rng.random() < DETECT_RATE:
            new = [row for row in CATALOG if row[0] not in self._pending]
            if new:
                row = self._rng.choice(new)
                present = self._installed.get(row[0])
                if present is not None and present.version not in row[2].split("|"):
                    # Installed at its newest already: a newer version than the catalog's
                    # came out (never one that moves the app back a version).
                    update = self._item(row, present.version, _newer(present.version))
                else:
                    update = self._item(row)
                    # Installed since (or there, older, all along): listed at that version.
                    self._installed[row[0]] = _from_update(update)
                self._pending[row[0]] = update

    def _resolve(self, identifier: str) -> None:
        """The update is installed: the available version is the installed one now."""
        update = self._pending.pop(identifier)
        self._installed[identifier] = _from_update(update, update.available_version)

    def _draw_installed(self, count: int) -> dict[str, InstalledItem]:
        installed = {key: _from_update(update) for key, update in self._pending.items()}
        pool = [
            *(_package(row[0], row[1], row[3]) for row in CATALOG if row[0] not in installed),
            *(_package(*row) for row in UP_TO_DATE),
            *(_msix(*row) for row in MSIX_APPS),
            *(_arp(*row) for row in ARP_PROGRAMS),
        ]
        self._listing.shuffle(pool)
        for item in pool[: max(count - len(installed), 0)]:
            installed[item.package_identifier] = item
        number = 0
        while len(installed) < count:  # past the data: numbered in-house programs
            number += 1
            word = self._listing.choice(IN_HOUSE_WORDS)
            item = _arp(f"Contoso {word} {number}", f"{self._listing.randint(1, 9)}.{number}")
            installed[item.package_identifier] = item
        return installed

    def _item(
        self,
        row: tuple[str, str, str, str],
        installed_version: str | None = None,
        available_version: str | None = None,
    ) -> UpdateItem:
        identifier, name, installed, available = row
        return UpdateItem(
            package_identifier=identifier,
            name=name,
            installed_version=installed_version or self._rng.choice(installed.split("|")),
            available_version=available_version or available,
            source="winget" if "." in identifier else "msstore",
            explicit_targeting=identifier in EXPLICIT_TARGETING,
            truncated=identifier.endswith("…"),
        )


def _package(identifier: str, name: str, version: str) -> InstalledItem:
    return InstalledItem(
        package_identifier=identifier,
        name=name,
        version=version,
        source="winget" if "." in identifier else "msstore",
        truncated=identifier.endswith("…"),
    )


def _from_update(update: UpdateItem, version: str | None = None) -> InstalledItem:
    return InstalledItem(
        package_identifier=update.package_identifier,
        name=update.name,
        version=version or update.installed_version,
        source=update.source,
        truncated=update.truncated,
    )


def _msix(family: str, name: str, version: str) -> InstalledItem:
    """An app of no source: winget names it by its package's full name."""
    return InstalledItem(
        package_identifier=f"MSIX\\{family}_{version}_x64__8wekyb3d8bbwe",
        name=name,
        version=version,
    )


def _arp(name: str, version: str) -> InstalledItem:
    """A program winget matches to no package: named by its uninstall key, a product code."""
    code = str(uuid5(ARP_NAMESPACE, name)).upper()
    return InstalledItem(
        package_identifier=f"ARP\\Machine\\X64\\{{{code}}}", name=name, version=version
    )


def _newer(version: str) -> str:
    """The next version after ``version``: its last all-digit part one up (or ``.1`` added)."""
    parts = version.split(".")
    for index in range(len(parts) - 1, -1, -1):
        if parts[index].isdigit():
            parts[index] = str(int(parts[index]) + 1)
            return ".".join(parts)
    return f"{version}.1"
