"""A winget stand-in for end-to-end tests with real agent processes: a script the agent runs
as winget, which lists what its ``state.json`` holds as upgradable (and, for ``winget list``,
as installed, with what it installed since) and "installs" a package by removing it,
succeeding, failing or asking for a reboot as each package says; with
``--version`` it installs that version if the (simulated) source has it, and says "No version
found matching" as winget does otherwise. Every install is logged."""

import json
from pathlib import Path

STAND_IN = """\
import json
import sys
from pathlib import Path

here = Path(__file__).parent
state_path = here / "state.json"
packages = json.loads(state_path.read_text())
args = sys.argv[1:]
installed_path = here / "installed.json"
installed = json.loads(installed_path.read_text()) if installed_path.exists() else {}

if args[:1] == ["list"]:
    rows = [("Name", "Id", "Version", "Source")] + [
        (p["name"], p["id"], p["installed"], "winget") for p in packages
    ] + [(identifier, identifier, version, "winget") for identifier, version in installed.items()]
    widths = [max(len(row[i]) for row in rows) + 1 for i in range(4)]
    lines = ["".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-" * sum(widths))
    print("\\n".join(lines))
    sys.exit(0)

if "--id" not in args:
    if not packages:
        print("No installed package found matching input criteria.")
        sys.exit(0)
    rows = [("Name", "Id", "Version", "Available", "Source")] + [
        (p["name"], p["id"], p["installed"], p["available"], "winget") for p in packages
    ]
    widths = [max(len(row[i]) for row in rows) + 1 for i in range(5)]
    lines = ["".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-" * sum(widths))
    print("\\n".join(lines))
    print(f"{len(packages)} upgrades available.")
    sys.exit(0)

wanted = args[args.index("--id") + 1]
version = args[args.index("--version") + 1] if "--version" in args else None
with (here / "installs.log").open("a") as log:
    log.write(wanted + "\\n")
with (here / "versions.log").open("a") as log:
    log.write(f"{wanted} {version or 'newest'}\\n")
package = next((p for p in packages if p["id"] == wanted), None)
if package is None:
    print("No available upgrade found.")
    sys.exit(1)
if version is not None and version not in package.get("in_source", [package["available"]]):
    print(f"No version found matching: {version}")
    sys.exit(0x8A150017)  # NO_MANIFEST_FOUND (POSIX keeps its low byte)
print(f"Found {package['name']} [{package['id']}] Version {version or package['available']}")
print("Starting package install...")
if package["behaviour"] == "fail":
    print("Installer failed with exit code: 1603")
    sys.exit(1)
print("Successfully installed")
if package["behaviour"] == "reboot":
    print("Restart your PC to finish installation.")
packages.remove(package)
state_path.write_text(json.dumps(packages))
installed[package["id"]] = version or package["available"]
installed_path.write_text(json.dumps(installed))
"""


class Winget:
    """A winget stand-in: lists what ``state.json`` holds, and "installs" by removing it."""

    def __init__(self, directory: Path, packages: list[dict[str, str]]) -> None:
        directory.mkdir(parents=True)
        self.path = directory / "winget.py"
        self.path.write_text(STAND_IN, encoding="utf-8")
        (directory / "state.json").write_text(json.dumps(packages))
        self.installs_path = directory / "installs.log"

    def installs(self) -> list[str]:
        if not self.installs_path.exists():
            return []
        return self.installs_path.read_text().split()

    def versions_asked(self) -> list[str]:
        """``<id> <version>`` (``newest`` when no ``--version`` was given) per install."""
        path = self.installs_path.with_name("versions.log")
        return path.read_text().splitlines() if path.exists() else []

    def publish(self, identifier: str, *, newest: str, in_source: list[str]) -> None:
        """The source changes: ``newest`` is listed as available, ``in_source`` installable."""
        state = self.installs_path.with_name("state.json")
        packages = json.loads(state.read_text())
        for entry in packages:
            if entry["id"] == identifier:
                entry.update(available=newest, in_source=in_source)
        state.write_text(json.dumps(packages))


def package(
    identifier: str,
    behaviour: str = "success",
    *,
    installed: str = "1.0.0",
    available: str = "2.0.0",
) -> dict[str, str]:
    """One upgradable package of the stand-in; ``behaviour``: success, fail or reboot."""
    return {
        "id": identifier,
        "name": identifier.split(".")[-1],
        "installed": installed,
        "available": available,
        "behaviour": behaviour,
    }
