"""From the WiX sources to the MSI: ``wixl`` compiles lunaris-agent.wxs and files.wxs, then
``msibuild`` adds what wixl cannot author (:func:`patch_msi`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from installer_common import HERE, SERVICE_NAME, table_rows
from msi_tools import BuildError, Tools, run

WXS: Final = HERE / "lunaris-agent.wxs"

SERVICE_COMPONENT: Final = "AgentService"
RESTART_DELAYS_MS: Final = (10_000, 60_000, 300_000)
FAILURE_COUNT_RESET_S: Final = 24 * 3600
"""The recovery policy `lunaris-agent service install` sets (lunaris_agent.windows.service)."""
SECURE_PROPERTIES: Final = ("API_URL", "ENROLLMENT_SECRET", "TAGS", "UPDATE_PUBLISHER")
UPGRADE: Final = "WIX_UPGRADE_DETECTED"
VERSION_MAX_INCLUSIVE: Final = 0x200
DATA_DIR_SDDL: Final = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
"""SYSTEM and Administrators only, nothing inherited: what the agent itself sets on the folder
(lunaris_agent.windows.data_dir.protected_dacl_sddl)."""
REGISTRY_KEY_SDDL: Final = "D:P(A;CI;KA;;;SY)(A;CI;KA;;;BA)"
INSTALLER_VALUES_COMPONENT: Final = "InstallerValues"
INSTALLER_VALUES_CONDITION: Final = " OR ".join(SECURE_PROPERTIES)
INSTALLER_VALUE_ROWS: Final = (
    "InstallerApiUrl",
    "InstallerEnrollmentSecret",
    "InstallerTags",
    "InstallerUpdatePublisher",
)


def wixl(tools: Tools, work: Path, files_wxs: Path, *, version: str) -> Path:
    """The MSI as wixl makes it from lunaris-agent.wxs and ``files_wxs`` (in ``work``, beside
    the bundle), before :func:`patch_msi`."""
    msi = work / "agent.msi"
    run(
        [
            tools.wixl,
            "--arch",
            "x64",
            "--define",
            f"Version={version}",
            # wixl wants a relative source folder (it fails on absolute ones).
            "--define",
            "BundleDir=bundle",
            "--output",
            msi.name,
            str(WXS),
            str(files_wxs.relative_to(work)),
        ],
        cwd=work,
    )
    return msi


def patch_msi(tools: Tools, msi: Path, work: Path) -> None:
    """What wixl cannot author, added with msibuild (all native Windows Installer 5 tables)."""
    properties = msi_table(tools, msi, "Property")
    secure = [p for p in properties.get("SecureCustomProperties", "").split(";") if p]
    # Public properties that reach the elevated part of the install; wixl fails if the source
    # defines this property itself, because MajorUpgrade generates it too.
    secure += [p for p in SECURE_PROPERTIES if p not in secure]
    queries = [
        update("Property", {"Value": ";".join(secure)}, Property="SecureCustomProperties"),
        # The installer's values are written only when given (lunaris-agent.wxs).
        update(
            "Component",
            {"Condition": INSTALLER_VALUES_CONDITION},
            Component=INSTALLER_VALUES_COMPONENT,
        ),
    ]
    # A rebuild of the same version replaces the installed one (WiX's AllowSameVersionUpgrades;
    # each build has its own ProductCode, so it would otherwise install beside it and fail on
    # the service that exists already). Attributes is part of the table's key: replace the row.
    [older] = [r for r in msi_rows(tools, msi, "Upgrade") if r["ActionProperty"] == UPGRADE]
    queries += [
        delete("Upgrade", ActionProperty=UPGRADE),
        insert(
            "Upgrade",
            UpgradeCode=older["UpgradeCode"],
            VersionMax=older["VersionMax"],
            Attributes=int(older["Attributes"]) | VERSION_MAX_INCLUSIVE,
            ActionProperty=UPGRADE,
        ),
    ]
    sequence = msi_table(tools, msi, "InstallExecuteSequence")
    if "MsiConfigureServices" not in sequence:
        # Applies MsiServiceConfig*: after the service is installed, before it is started.
        between = (int(sequence["InstallServices"]) + int(sequence["StartServices"])) // 2
        queries.append(
            insert(
                "InstallExecuteSequence",
                Action="MsiConfigureServices",
                Condition="VersionNT >= 600",
                Sequence=between,
            )
        )
    for query in queries:
        run([tools.msibuild, str(msi), "-q", query])

    delays = "[~]".join(str(delay) for delay in RESTART_DELAYS_MS)
    restarts = "[~]".join("1" for _ in RESTART_DELAYS_MS)  # SC_ACTION_RESTART
    tables = {
        # Restart the service after a failure: 10 s, 1 min, then every 5 min.
        "MsiServiceConfigFailureActions": Table(
            columns=[
                ("MsiServiceConfigFailureActions", "s72"),
                ("Name", "s255"),
                ("Event", "i2"),
                ("ResetPeriod", "I4"),
                ("RebootMessage", "S255"),
                ("Command", "S255"),
                ("Actions", "S255"),
                ("DelayActions", "S255"),
                ("Component_", "s72"),
            ],
            rows=[
                # Event 1|4: on install and on repair.
                (
                    *("AgentRecovery", SERVICE_NAME, "5", str(FAILURE_COUNT_RESET_S)),
                    *("", "", restarts, delays, SERVICE_COMPONENT),
                )
            ],
        ),
        # ...also when the service stops itself with an error code, not only on a crash.
        "MsiServiceConfig": Table(
            columns=[
                ("MsiServiceConfig", "s72"),
                ("Name", "s255"),
                ("Event", "i2"),
                ("ConfigType", "i4"),
                ("Argument", "S0"),
                ("Component_", "s72"),
            ],
            rows=[
                # 4: SERVICE_CONFIG_FAILURE_ACTIONS_FLAG
                ("AgentFailureActionsFlag", SERVICE_NAME, "5", "4", "1", SERVICE_COMPONENT)
            ],
        ),
        # The data folder and the installer's key: SYSTEM and Administrators only, from the
        # moment they are created.
        "MsiLockPermissionsEx": Table(
            columns=[
                ("MsiLockPermissionsEx", "s72"),
                ("LockObject", "s72"),
                ("Table", "s32"),
                ("SDDL", "s0"),
                ("Condition", "S255"),
            ],
            rows=[
                ("LockDataDir", "DATADIR", "CreateFolder", DATA_DIR_SDDL, ""),
                *(
                    (f"Lock{row}", row, "Registry", REGISTRY_KEY_SDDL, "")
                    for row in INSTALLER_VALUE_ROWS
                ),
            ],
        ),
    }
    for name, table in tables.items():
        idt = work / f"{name}.idt"
        idt.write_text(table.idt(name), encoding="utf-8")
        run([tools.msibuild, str(msi), "-i", str(idt)])


@dataclass(frozen=True)
class Table:
    columns: list[tuple[str, str]]
    """(name, IDT type): s72 is a string of at most 72, S a nullable one, i2/I4 integers."""
    rows: list[tuple[str, ...]]

    def idt(self, name: str) -> str:
        """The table in Windows Installer's text archive format (what msidb exports)."""
        key = self.columns[0][0]
        lines = [
            "\t".join(column for column, _ in self.columns),
            "\t".join(kind for _, kind in self.columns),
            f"{name}\t{key}",
            *("\t".join(row) for row in self.rows),
        ]
        return "\r\n".join(lines) + "\r\n"


# msibuild's SQL, built from values that sql() has checked: this file's constants and what the
# MSI's own tables hold, never input.


def sql(value: str | int) -> str:
    """A literal for msibuild's SQL."""
    if isinstance(value, int):
        return str(value)
    if "'" in value:
        raise BuildError(f"no quotes in MSI SQL values: {value!r}")
    return f"'{value}'"


def _where(match: Mapping[str, str]) -> str:
    return " AND ".join(f"`{column}` = {sql(value)}" for column, value in match.items())


def update(table: str, values: Mapping[str, str], **match: str) -> str:
    assignments = ", ".join(f"`{column}` = {sql(value)}" for column, value in values.items())
    return f"UPDATE `{table}` SET {assignments} WHERE {_where(match)}"  # noqa: S608


def delete(table: str, **match: str) -> str:
    return f"DELETE FROM `{table}` WHERE {_where(match)}"  # noqa: S608


def insert(table: str, **row: str | int) -> str:
    columns = ", ".join(f"`{column}`" for column in row)
    values = ", ".join(sql(value) for value in row.values())
    return f"INSERT INTO `{table}` ({columns}) VALUES ({values})"  # noqa: S608


def msi_rows(tools: Tools, msi: Path, table: str) -> list[dict[str, str]]:
    """A table's rows, as msiinfo exports it: column names, types, table name and keys, rows."""
    return table_rows(run([tools.msiinfo, "export", str(msi), table], capture=True))


def msi_table(tools: Tools, msi: Path, table: str) -> dict[str, str]:
    """A two-column view of a table: first column -> last column."""
    return {row[next(iter(row))]: row[next(reversed(row))] for row in msi_rows(tools, msi, table)}
