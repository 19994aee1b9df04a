"""Builds the Lunaris Agent MSI on Linux: ``infra/installer/build [--version X.Y.Z]``.

1. The Windows Python runtime, fetched from a pinned source and verified file by file
   (:mod:`embedded_python`: pinned hashes, Authenticode signatures against pinned roots).
2. The agent and the protocol, built as wheels from this tree; their dependencies as
   ``win_amd64`` wheels at the versions and hashes in ``uv.lock``.
3. The bundle, laid out as it will be in ``C:\\Program Files\\LunarisAgent``::

       python\\              python.exe, python3XY.dll, the stdlib zip, ...
       python\\Lib\\site-packages\\   lunaris_agent, lunaris_protocol, pywin32, httpx, pydantic ...
       lunaris-agent.cmd    the agent's command line with its own Python

4. ``files.wxs`` (one component per file), ``wixl``, then ``msibuild`` for the few tables
   wixl cannot author (:func:`patch_msi`).

Progress goes to stderr; the MSI's path is printed alone on the last line of stdout.
Needs: uv (``python3 scripts/dev.py setup`` installs the pinned one), and Debian's ``wixl``,
``msitools`` and ``osslsigncode``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final
from xml.etree import ElementTree as ET

import embedded_python
from embedded_python import Runtime, Trust, VerificationError
from installer_common import HERE, ROOT, SERVICE_NAME, msi_file_name, progress_step, table_rows

PINS: Final = HERE / "pins.toml"
WXS: Final = HERE / "lunaris-agent.wxs"

MSI_TOOLS: Final = ("wixl", "msibuild", "msiinfo", "osslsigncode")
WINDOWS_X64: Final = "x86_64-pc-windows-msvc"
"""uv's name for the win_amd64 platform."""
MSI_VERSION: Final = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,5})")
"""ProductVersion: major.minor.build, at most 255.255.65535; a fourth field is ignored by
Windows Installer when it compares versions, so it is refused here."""
WIX_NAMESPACE: Final = "http://schemas.microsoft.com/wix/2006/wi"

SERVICE_COMPONENT: Final = "AgentService"
RESTART_DELAYS_MS: Final = (10_000, 60_000, 300_000)
FAILURE_COUNT_RESET_S: Final = 24 * 3600
"""The recovery policy `lunaris-agent service install` sets (lunaris_agent.windows.service)."""
SECURE_PROPERTIES: Final = ("API_URL", "ENROLLMENT_SECRET")
UPGRADE: Final = "WIX_UPGRADE_DETECTED"
VERSION_MAX_INCLUSIVE: Final = 0x200
DATA_DIR_SDDL: Final = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
"""SYSTEM and Administrators only, nothing inherited: what the agent itself sets on the folder
(lunaris_agent.windows.data_dir.protected_dacl_sddl)."""
REGISTRY_KEY_SDDL: Final = "D:P(A;CI;KA;;;SY)(A;CI;KA;;;BA)"
INSTALLER_VALUES_COMPONENT: Final = "InstallerValues"
INSTALLER_VALUES_CONDITION: Final = "API_URL OR ENROLLMENT_SECRET"
INSTALLER_VALUE_ROWS: Final = ("InstallerApiUrl", "InstallerEnrollmentSecret")

AUTHORED_FILES: Final = frozenset({"python/python.exe"})
"""Files lunaris-agent.wxs authors itself: the service belongs to python.exe's component."""
DIRECTORY_IDS: Final = {PurePosixPath("."): "INSTALLDIR", PurePosixPath("python"): "PYTHONDIR"}
"""Bundle folders that lunaris-agent.wxs defines; files.wxs refers to them."""

TRIMMED: Final = (
    # Linux entry-point scripts and the lock file that uv writes for the host.
    "bin",
    ".lock",
    # pywin32's GUI (Pythonwin), help file, ADO/ISAPI/COM-server packages, C headers and
    # import libraries, tests and demos: none of it is used, and all of it is attack surface.
    "PyWin32.chm",
    "pythonwin",
    "adodbapi",
    "isapi",
    "win32/Demos",
    "win32/test",
    "win32/include",
    "win32/libs",
    "win32/pythonservice.exe",  # python.exe hosts the service itself
    "win32com/demos",
    "win32com/test",
    "win32com/HTML",
    "win32com/include",
    "win32com/libs",
    "win32comext/*/demos",
    "win32comext/*/test",
)

COMMAND_SCRIPT: Final = (
    "@echo off\r\n"
    "rem The agent's command line, run by the agent's own Python: lunaris-agent.cmd status\r\n"
    '"%~dp0python\\python.exe" -B -m lunaris_agent %*\r\n'
)
"""``-B``: commands run by an administrator must not leave ``__pycache__`` in Program Files,
where the MSI does not own it and would leave it behind at uninstall."""


class BuildError(Exception):
    """A step failed; the message says which and why."""


@dataclass(frozen=True)
class Options:
    version: str
    output_dir: Path
    work_dir: Path
    cache_dir: Path
    python_zip: str | None = None
    python_zip_sha256: str | None = None


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    started = time.monotonic()
    try:
        msi = build(options)
    except (BuildError, VerificationError) as error:
        print(f"build: {error}", file=sys.stderr)
        return 1
    size_mb = msi.stat().st_size / 1_048_576
    say(f"built {msi.name} ({size_mb:.1f} MB) in {time.monotonic() - started:.1f} s")
    print(msi)
    return 0


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="infra/installer/build",
        description="Build dist/lunaris-agent-VERSION-x64.msi; print its path on the last line.",
    )
    parser.add_argument(
        "--version",
        help="the MSI's ProductVersion, major.minor.build (default: lunaris-agent's version); "
        "an upgrade needs a higher one",
    )
    parser.add_argument("--output-dir", type=Path, default=ROOT / "dist")
    parser.add_argument(
        "--work-dir", type=Path, default=ROOT / "build" / "installer", help="emptied first"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        / "lunaris-installer",
        help="downloads, kept under their SHA-256 and checked on every use",
    )
    parser.add_argument(
        "--python-zip",
        metavar="URL_OR_PATH",
        help="python.org's python-3.X.Y-embed-amd64.zip instead of the pinned runtime",
    )
    parser.add_argument("--python-zip-sha256", metavar="HEX", help="required with --python-zip")
    args = parser.parse_args(argv)
    if (args.python_zip is None) != (args.python_zip_sha256 is None):
        parser.error("--python-zip and --python-zip-sha256 go together")
    version = args.version or agent_version()
    if not msi_version_ok(version):
        parser.error(f"--version must be major.minor.build (max 255.255.65535), not {version!r}")
    return Options(
        version=version,
        output_dir=args.output_dir.resolve(),
        work_dir=args.work_dir.resolve(),
        cache_dir=args.cache_dir.resolve(),
        python_zip=args.python_zip,
        python_zip_sha256=args.python_zip_sha256,
    )


def msi_version_ok(version: str) -> bool:
    match = MSI_VERSION.fullmatch(version)
    if match is None:
        return False
    major, minor, build_number = (int(part) for part in match.groups())
    return major <= 255 and minor <= 255 and build_number <= 65535


def agent_version() -> str:
    with (ROOT / "packages" / "agent" / "pyproject.toml").open("rb") as handle:
        version: str = tomllib.load(handle)["project"]["version"]
    return version


def build(options: Options) -> Path:
    tools = Tools.find()
    with PINS.open("rb") as handle:
        pins = tomllib.load(handle)
    work = options.work_dir
    if work.exists():
        shutil.rmtree(work)
    bundle = work / "bundle"
    site_packages = bundle / "python" / "Lib" / "site-packages"

    with step("Python runtime: fetch, check pinned hashes and Authenticode signatures"):
        runtime = python_runtime(options, pins, work / "runtime")
        say(f"  {runtime.source}: Python {runtime.python_version}, {len(runtime.signers)} signed")
        for signer, count in Counter(runtime.signers.values()).items():
            say(f"    {count:3d} signed by {signer}")
        shutil.copytree(runtime.directory, bundle / "python")
        # Where the embeddable Python looks for modules: its own folder and site-packages,
        # never the working directory or PYTHONPATH; `import site` runs pywin32.pth.
        (bundle / "python" / runtime.pth_name).write_bytes(
            b"\r\n".join(
                [
                    f"python3{runtime.minor}.zip".encode(),
                    b".",
                    b"Lib\\site-packages",
                    b"import site",
                    b"",
                ]
            )
        )
    with step("packages: the agent from this tree, its dependencies as locked (win_amd64)"):
        install_packages(tools, site_packages, runtime.python_version, work)
        trim(site_packages)
        (bundle / "lunaris-agent.cmd").write_bytes(COMMAND_SCRIPT.encode("ascii"))
        check_names(bundle)
    with step("MSI: files.wxs, wixl, msibuild"):
        fragment = files_fragment(bundle, authored=AUTHORED_FILES, directory_ids=DIRECTORY_IDS)
        ET.ElementTree(fragment).write(work / "files.wxs", encoding="utf-8", xml_declaration=True)
        unpatched = work / "agent.msi"
        run(
            [
                tools.wixl,
                "--arch",
                "x64",
                "--define",
                f"Version={options.version}",
                # wixl wants a relative source folder (it fails on absolute ones).
                "--define",
                "BundleDir=bundle",
                "--output",
                unpatched.name,
                str(WXS),
                "files.wxs",
            ],
            cwd=work,
        )
        patch_msi(tools, unpatched, work)
        options.output_dir.mkdir(parents=True, exist_ok=True)
        msi = options.output_dir / msi_file_name(options.version)
        partial = msi.with_suffix(".msi.partial")
        shutil.copyfile(unpatched, partial)
        partial.replace(msi)
    return msi


@dataclass(frozen=True)
class Tools:
    uv: str
    wixl: str
    msibuild: str
    msiinfo: str
    osslsigncode: str

    @classmethod
    def find(cls) -> Tools:
        pinned_uv = ROOT / ".tools" / "bin" / "uv"
        found = {
            "uv": str(pinned_uv) if pinned_uv.exists() else shutil.which("uv"),
            **{name: shutil.which(name) for name in MSI_TOOLS},
        }
        missing = sorted(name for name, path in found.items() if path is None)
        if missing:
            raise BuildError(
                f"missing {', '.join(missing)}: `apt-get install -y wixl msitools osslsigncode` "
                "and `python3 scripts/dev.py setup` (the pinned uv)"
            )
        return cls(**{name: str(path) for name, path in found.items()})


def python_runtime(options: Options, pins: Mapping[str, Any], directory: Path) -> Runtime:
    trust = Trust.from_pins(pins, HERE)
    if options.python_zip is not None and options.python_zip_sha256 is not None:
        files = embedded_python.zip_distribution(
            options.python_zip, options.python_zip_sha256, options.cache_dir
        )
        source = options.python_zip
    else:
        files = embedded_python.pinned_distribution(pins, options.cache_dir)
        source = f"pinned CPython {pins['python']['release']}"
    return embedded_python.unpack_verified(files, directory, trust, source=source)


def install_packages(tools: Tools, site_packages: Path, python_version: str, work: Path) -> None:
    requirements = work / "requirements.txt"
    # --locked: refuse a uv.lock that no longer matches the pyproject files.
    run(
        [
            tools.uv,
            "export",
            "--package",
            "lunaris-agent",
            "--no-dev",
            "--no-emit-workspace",
            "--locked",
            "--no-header",
            "--quiet",
            "--output-file",
            str(requirements),
        ],
        cwd=ROOT,
    )
    target = [
        "--target",
        str(site_packages),
        "--python-platform",
        WINDOWS_X64,
        "--python-version",
        python_version,
        "--no-deps",
        "--quiet",
    ]
    # Binary wheels only, and only those whose hashes uv.lock records.
    run(
        [
            *(tools.uv, "pip", "install", *target),
            *("--only-binary", ":all:", "--require-hashes", "--requirement", str(requirements)),
        ],
        cwd=ROOT,
    )
    wheels = work / "wheels"
    for package in ("lunaris-protocol", "lunaris-agent"):
        run(
            [tools.uv, "build", "--package", package, "--wheel", "--out-dir", str(wheels), "-q"],
            cwd=ROOT,
        )
    run([tools.uv, "pip", "install", *target, *map(str, sorted(wheels.glob("*.whl")))], cwd=ROOT)


def trim(site_packages: Path) -> None:
    for pattern in TRIMMED:
        for path in site_packages.glob(pattern):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def check_names(bundle: Path) -> None:
    """Windows folds case: two names that differ only in case would be one file there."""
    seen: dict[str, Path] = {}
    for path in bundle.rglob("*"):
        key = path.relative_to(bundle).as_posix().casefold()
        if key in seen:
            raise BuildError(f"{path} and {seen[key]} would be the same file on Windows")
        seen[key] = path


def files_fragment(
    bundle: Path, *, authored: Iterable[str], directory_ids: Mapping[PurePosixPath, str]
) -> ET.Element:
    """A WiX fragment with one component per file (the file is its key path), in the
    ``BundleFiles`` component group; what heat does, with ids derived from the paths, so the
    same tree gives the same ids in every build."""
    ET.register_namespace("", WIX_NAMESPACE)
    wix = ET.Element(_wix("Wix"))
    fragment = ET.SubElement(wix, _wix("Fragment"))
    group = ET.SubElement(fragment, _wix("ComponentGroup"), Id="BundleFiles")
    directories: dict[PurePosixPath, ET.Element] = {}
    skipped = set(authored)

    def directory(path: PurePosixPath) -> ET.Element:
        if path not in directories:
            if path in directory_ids:
                element = ET.SubElement(fragment, _wix("DirectoryRef"), Id=directory_ids[path])
            else:
                element = ET.SubElement(
                    directory(path.parent), _wix("Directory"), Id=_id("dir", path), Name=path.name
                )
            directories[path] = element
        return directories[path]

    for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
        relative = PurePosixPath(path.relative_to(bundle).as_posix())
        if str(relative) in skipped:
            continue
        component = ET.SubElement(
            directory(relative.parent),
            _wix("Component"),
            Id=_id("cmp", relative),
            Guid="*",
            Win64="yes",
        )
        ET.SubElement(
            component,
            _wix("File"),
            Id=_id("fil", relative),
            Name=relative.name,
            Source=f"$(var.BundleDir)/{relative}",
            KeyPath="yes",
        )
        ET.SubElement(group, _wix("ComponentRef"), Id=component.get("Id", ""))
    return wix


def _wix(tag: str) -> str:
    return f"{{{WIX_NAMESPACE}}}{tag}"


def _id(prefix: str, path: PurePosixPath) -> str:
    """An MSI identifier (letters, digits, underscores; at most 72) unique to the path."""
    digest = hashlib.sha1(str(path).casefold().encode(), usedforsecurity=False)
    return f"{prefix}{digest.hexdigest()[:32].upper()}"


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


def run(command: Sequence[str], *, cwd: Path | None = None, capture: bool = False) -> str:
    """Runs a tool; its output goes to stderr (or is returned); a failure stops the build."""
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    result = subprocess.run(
        list(command),
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE if capture else sys.stderr,
        stderr=subprocess.PIPE if capture else sys.stderr,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        details = f"\n{result.stderr.strip()}" if capture and result.stderr else ""
        raise BuildError(f"{Path(command[0]).name} failed (exit {result.returncode}){details}")
    return result.stdout if capture else ""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def step(title: str) -> AbstractContextManager[None]:
    return progress_step(title, out=sys.stderr, done="    done in {:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
