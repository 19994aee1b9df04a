"""The MSI that infra/installer/build makes, read back table by table with msiinfo: what
Windows Installer will do with it, checked against what the agent expects."""

import subprocess
from pathlib import Path, PureWindowsPath
from types import ModuleType

import pytest

import lunaris_agent
from lunaris_agent import installer_values
from lunaris_agent.windows.data_dir import ADMINISTRATORS_ONLY, protected_dacl_sddl
from tests.installer.helpers import VERSION, Built

pytestmark = pytest.mark.e2e

UPGRADE_CODE = "{F46E01E0-BF3F-4B6F-AC51-ABFB2F95D599}"
"""Never changes: it is how a new version finds the old one to upgrade."""

# ServiceControl.Event bits (msidbServiceControlEvent*)
START_ON_INSTALL, STOP_ON_INSTALL, STOP_ON_UNINSTALL, DELETE_ON_UNINSTALL = 0x1, 0x2, 0x20, 0x80
START_ON_UNINSTALL, DELETE_ON_INSTALL = 0x10, 0x8
OWN_PROCESS, AUTO_START, ERROR_NORMAL = 0x10, 2, 1
COMPONENT_64BIT = 0x100
VERSION_MAX_INCLUSIVE = 0x200


def table(msi: Path, name: str) -> list[dict[str, str]]:
    """Rows of an MSI table as dicts (msiinfo's text archive: names, types, keys, rows)."""
    text = subprocess.run(
        ["msiinfo", "export", str(msi), name], capture_output=True, text=True, check=True
    ).stdout
    lines = text.split("\r\n") if "\r\n" in text else text.splitlines()
    columns = lines[0].split("\t")
    return [dict(zip(columns, line.split("\t"), strict=True)) for line in lines[3:] if line]


def one(rows: list[dict[str, str]], **match: str) -> dict[str, str]:
    found = [row for row in rows if all(row[key] == value for key, value in match.items())]
    assert len(found) == 1, f"{match}: {found or rows}"
    return found[0]


def sequence_numbers(msi: Path) -> dict[str, int]:
    return {row["Action"]: int(row["Sequence"]) for row in table(msi, "InstallExecuteSequence")}


def installed_paths(msi: Path) -> dict[str, str]:
    """Where each file lands, below the folder property it starts from -> its component."""
    directories = {row["Directory"]: row for row in table(msi, "Directory")}

    def path_of(directory: str) -> PureWindowsPath:
        row = directories[directory]
        parent = row["Directory_Parent"]
        name = row["DefaultDir"].split(":")[-1].split("|")[-1]
        if not parent or parent == "TARGETDIR":
            return PureWindowsPath(directory)
        return path_of(parent) / name

    components = {row["Component"]: row for row in table(msi, "Component")}
    paths = {}
    for file in table(msi, "File"):
        directory = components[file["Component_"]]["Directory_"]
        name = file["FileName"].split("|")[-1]
        paths[str(path_of(directory) / name)] = file["Component_"]
    return paths


def test_the_build_prints_the_msi_path_named_for_its_version(built: Built) -> None:
    assert built.msi.name == f"lunaris-agent-{VERSION}-x64.msi"
    assert built.msi.is_file()
    assert "Authenticode" in built.output


def test_a_64_bit_per_machine_package_that_upgrades_older_versions(built: Built) -> None:
    properties = {row["Property"]: row["Value"] for row in table(built.msi, "Property")}
    assert properties["ProductVersion"] == VERSION
    assert properties["UpgradeCode"] == UPGRADE_CODE
    assert properties["ALLUSERS"] == "1"
    suminfo = subprocess.run(
        ["msiinfo", "suminfo", str(built.msi)], capture_output=True, text=True, check=True
    ).stdout
    assert "Template: x64;1033" in suminfo
    upgrades = table(built.msi, "Upgrade")
    older = one(upgrades, ActionProperty="WIX_UPGRADE_DETECTED")
    assert (older["UpgradeCode"], older["VersionMax"]) == (UPGRADE_CODE, VERSION)
    # ...up to and including this version: a rebuild replaces the installed one.
    assert int(older["Attributes"]) & VERSION_MAX_INCLUSIVE
    one(upgrades, ActionProperty="WIX_DOWNGRADE_DETECTED")
    sequence = {
        row["Action"]: int(row["Sequence"]) for row in table(built.msi, "InstallExecuteSequence")
    }
    # The old version goes first, so nothing of it is left to mix with the new one.
    assert (
        sequence["InstallValidate"]
        < sequence["RemoveExistingProducts"]
        < sequence["InstallInitialize"]
    )


def test_public_properties_reach_the_install_and_the_secret_stays_out_of_the_log(
    built: Built,
) -> None:
    properties = {row["Property"]: row["Value"] for row in table(built.msi, "Property")}
    assert properties["MsiHiddenProperties"].split(";") == ["ENROLLMENT_SECRET"]
    secure = properties["SecureCustomProperties"].split(";")
    public = {"API_URL", "ENROLLMENT_SECRET", "TAGS", "UPDATE_PUBLISHER"}
    assert {*public, "WIX_UPGRADE_DETECTED"} <= set(secure)
    conditions = [row["Condition"] for row in table(built.msi, "LaunchCondition")]
    assert "Installed OR API_URL OR WIX_UPGRADE_DETECTED" in conditions


def test_folders_in_program_files_and_programdata(built: Built) -> None:
    directories = {row["Directory"]: row for row in table(built.msi, "Directory")}
    assert directories["INSTALLDIR"]["Directory_Parent"] == "ProgramFiles64Folder"
    assert directories["INSTALLDIR"]["DefaultDir"] == "LunarisAgent"
    assert directories["PYTHONDIR"]["Directory_Parent"] == "INSTALLDIR"
    assert directories["PYTHONDIR"]["DefaultDir"] == "python"
    assert directories["DATADIR"]["Directory_Parent"] == "CommonAppDataFolder"
    assert directories["DATADIR"]["DefaultDir"] == "LunarisAgent"
    one(table(built.msi, "CreateFolder"), Directory_="DATADIR")


def test_the_service_is_python_exe_hosting_the_agent_as_localsystem(
    built: Built, service_module: ModuleType
) -> None:
    service = one(table(built.msi, "ServiceInstall"), Name=service_module.SERVICE_NAME)
    assert service["DisplayName"] == service_module.DISPLAY_NAME
    assert service["Description"] == service_module.DESCRIPTION
    assert int(service["ServiceType"]) == OWN_PROCESS
    assert int(service["StartType"]) == AUTO_START
    assert int(service["ErrorControl"]) == ERROR_NORMAL
    assert service["StartName"] == "LocalSystem"
    assert service["Password"] == ""
    assert service["Arguments"] == service_module.SERVICE_ARGUMENTS
    # The service's binary is its component's key file: python.exe of the bundled runtime.
    component = one(table(built.msi, "Component"), Component=service["Component_"])
    key_file = one(table(built.msi, "File"), File=component["KeyPath"])
    assert (key_file["FileName"], component["Directory_"]) == ("python.exe", "PYTHONDIR")
    assert int(component["Attributes"]) & COMPONENT_64BIT


def test_the_service_starts_on_install_and_is_stopped_and_removed_on_uninstall(
    built: Built, service_module: ModuleType
) -> None:
    control = one(table(built.msi, "ServiceControl"), Name=service_module.SERVICE_NAME)
    event = int(control["Event"])
    assert event & START_ON_INSTALL
    assert event & STOP_ON_INSTALL  # an upgrade or repair replaces a stopped python.exe
    assert event & STOP_ON_UNINSTALL
    assert event & DELETE_ON_UNINSTALL
    assert not event & (START_ON_UNINSTALL | DELETE_ON_INSTALL)
    assert control["Wait"] == "1"
    assert control["Component_"] == "AgentService"


def test_the_recovery_policy_is_the_one_service_install_sets(
    built: Built, service_module: ModuleType
) -> None:
    failure = one(
        table(built.msi, "MsiServiceConfigFailureActions"), Name=service_module.SERVICE_NAME
    )
    assert failure["Actions"].split("[~]") == ["1"] * len(service_module.RESTART_DELAYS_MS)
    delays = tuple(int(delay) for delay in failure["DelayActions"].split("[~]"))
    assert delays == service_module.RESTART_DELAYS_MS
    assert int(failure["ResetPeriod"]) == service_module.FAILURE_COUNT_RESET_S
    flag = one(table(built.msi, "MsiServiceConfig"), Name=service_module.SERVICE_NAME)
    assert (flag["ConfigType"], flag["Argument"]) == ("4", "1")  # FAILURE_ACTIONS_FLAG: on
    sequence = {
        row["Action"]: int(row["Sequence"]) for row in table(built.msi, "InstallExecuteSequence")
    }
    assert (
        sequence["InstallServices"] < sequence["MsiConfigureServices"] < sequence["StartServices"]
    )


def test_installer_values_go_to_the_key_the_agent_reads_and_only_admins_may_read_it(
    built: Built,
) -> None:
    registry = table(built.msi, "Registry")
    for name, value in (
        (installer_values.API_URL_VALUE, "[API_URL]"),
        (installer_values.ENROLLMENT_SECRET_VALUE, "[ENROLLMENT_SECRET]"),
        (installer_values.TAGS_VALUE, "[TAGS]"),
        (installer_values.UPDATE_PUBLISHER_VALUE, "[UPDATE_PUBLISHER]"),
    ):
        row = one(registry, Name=name)
        assert (row["Root"], row["Key"], row["Value"]) == (
            "2",  # HKLM
            installer_values.REGISTRY_KEY,
            value,
        )
        assert row["Component_"] == "InstallerValues"
    component = one(table(built.msi, "Component"), Component="InstallerValues")
    # Written only when given: an upgrade without properties keeps the agent's configuration.
    assert component["Condition"] == "API_URL OR ENROLLMENT_SECRET OR TAGS OR UPDATE_PUBLISHER"
    # Every value the agent reads, and nothing else, is in the key.
    assert sorted(row["Name"] for row in registry) == sorted(installer_values.VALUE_NAMES)
    locks = table(built.msi, "MsiLockPermissionsEx")
    for row in registry:
        lock = one(locks, LockObject=row["Registry"], Table="Registry")
        assert lock["SDDL"] == "D:P(A;CI;KA;;;SY)(A;CI;KA;;;BA)"


def test_the_data_folder_gets_the_acl_the_agent_sets(built: Built) -> None:
    lock = one(table(built.msi, "MsiLockPermissionsEx"), LockObject="DATADIR")
    assert lock["Table"] == "CreateFolder"
    assert lock["SDDL"] == protected_dacl_sddl(ADMINISTRATORS_ONLY)


@pytest.mark.parametrize(
    "path",
    [
        r"lunaris-agent.cmd",
        r"python\python.exe",
        r"python\python313.dll",
        r"python\python313.zip",
        r"python\python313._pth",
        r"python\vcruntime140.dll",
        r"python\Lib\site-packages\lunaris_agent\__main__.py",
        r"python\Lib\site-packages\lunaris_agent\windows\service.py",
        r"python\Lib\site-packages\lunaris_agent\installer_values.py",
        r"python\Lib\site-packages\lunaris_protocol\__init__.py",
        r"python\Lib\site-packages\pywin32.pth",
        r"python\Lib\site-packages\pywin32_system32\pywintypes313.dll",
        r"python\Lib\site-packages\win32\servicemanager.pyd",
        r"python\Lib\site-packages\win32\win32service.pyd",
        r"python\Lib\site-packages\pydantic_core\_pydantic_core.cp313-win_amd64.pyd",
        r"python\Lib\site-packages\httpx\__init__.py",
    ],
)
def test_key_files_are_in_the_package(built: Built, path: str) -> None:
    # C:\Program Files\LunarisAgent\...
    assert f"ProgramFiles64Folder\\LunarisAgent\\{path}" in installed_paths(built.msi)


def test_nothing_for_the_build_machine_or_unused_is_shipped(built: Built) -> None:
    paths = installed_paths(built.msi)
    unwanted = [
        path
        for path in paths
        if path.endswith(".pyc")
        or "site-packages\\bin\\" in path
        or "site-packages\\pythonwin\\" in path
        or path.endswith((".chm", "pythonservice.exe"))
    ]
    assert unwanted == []
    assert len(paths) > 500  # the whole runtime and every dependency, one component each


def test_the_runtime_looks_for_modules_in_its_own_folders_only(built: Built) -> None:
    pth = (built.bundle / "python" / "python313._pth").read_bytes()
    assert pth.split(b"\r\n") == [
        b"python313.zip",
        b".",
        b"Lib\\site-packages",
        b"import site",
        b"",
    ]
    script = (built.bundle / "lunaris-agent.cmd").read_text(encoding="ascii")
    assert '"%~dp0python\\python.exe" -B -m lunaris_agent %*' in script


def test_the_agent_reports_the_msis_version(built: Built) -> None:
    # A build of another version than the tree's: the agent in it says the MSI's, so an
    # agent that updated itself reports the version it installed.
    module = built.bundle / "python" / "Lib" / "site-packages" / "lunaris_agent" / "__init__.py"
    assert f'__version__ = "{VERSION}"' in module.read_text(encoding="utf-8")
    assert lunaris_agent.__version__ != VERSION
