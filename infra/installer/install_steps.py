"""The install test's steps, in order: install (after a refused one), the running service,
the first scan, a scan with a winget stand-in, the upgrade and the uninstall."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Any, Final

from install_checks import INSTALLER_KEY, InstalledAgent, msi_log_errors, read_msi_log
from install_machine import Machine, Wine
from install_self_update import self_update
from install_server import HEARTBEAT_S, Server
from install_wait import WAIT_S, Failed, wait_for
from installer_common import HERE, ROOT, progress_step, table_rows, version_in_file_name

WINGET_SAMPLE: Final = ROOT / "tests" / "agent" / "winget_samples" / "001-upgrade-basic"
WINGET_STAND_IN: Final = """\
import sys
from pathlib import Path

sys.stdout.buffer.write((Path(__file__).parent / "winget-output.txt").read_bytes())
"""
MSI_FAILED: Final = 1603
TAGS: Final = "Kiosk,berlin"
"""Given to the install as TAGS; the agent keeps them as the protocol's rule writes them."""
EXPECTED_TAGS: Final = ["berlin", "kiosk"]


@dataclass
class InstallTest:
    machine: Machine
    server: Server
    msi: Path
    newer: Path | None
    work: Path
    facts: list[str] = field(default_factory=list)
    current_step: str = "start"
    agent: InstalledAgent = field(init=False)

    def __post_init__(self) -> None:
        self.agent = InstalledAgent(self.machine, note=self.note)

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.current_step = title
        with progress_step(title, out=sys.stdout, done="    ok ({:.1f} s)"):
            yield

    def note(self, fact: str) -> None:
        print(f"    {fact}", flush=True)

    def run(self) -> str:
        with self.step(f"a fresh {self.machine.name}, and lunaris-server with a fresh database"):
            # In parallel: each takes seconds of start-up, neither needs the other.
            with ThreadPoolExecutor(max_workers=1) as pool:
                server_started = pool.submit(self.server.start)
                self.machine.start()
                server_started.result()
            self.note(f"server {self.server.api_url}, enrollment secret for one use")
        with self.step("a first install without API_URL is refused"):
            self.msiexec("/i", self.msi, log="refused", expect=MSI_FAILED)
            if self.machine.program_files.exists() and any(self.machine.program_files.iterdir()):
                raise Failed("the refused install left files behind")
            self.agent.windows_only(
                "API base URL" in read_msi_log(self.work / "refused.log"),
                "the log says why",
                "Wine does not log launch condition messages",
            )
        with self.step(f"install {self.msi.name} silently with API_URL, ENROLLMENT_SECRET, TAGS"):
            self.msiexec(
                "/i",
                self.msi,
                f"API_URL={self.server.api_url}",
                f"ENROLLMENT_SECRET={self.server.enrollment_secret}",
                f"TAGS={TAGS}",
                log="install",
            )
        with self.step("the service runs, registers and heartbeats"):
            self.note(f"sc query: STATE {self.agent.wait_for_state('RUNNING')}")
            device = self.wait_for_heartbeats()
            device_id = device["id"]
            self.note(f"device {device_id} ({device['hostname']}, {device['os_version']})")
            config = self.agent.config()
            if config.get("device_id") != device_id or not config.get("device_token"):
                raise Failed(f"config.json does not hold the registered device: {config}")
            if "enrollment_secret" in config:
                raise Failed("config.json still holds the enrollment secret after registering")
            if self.agent.installer_key_present():
                raise Failed(f"{INSTALLER_KEY} is still there after the agent's first start")
            self.agent.check_windows_details(
                self.work / "install.log", self.server.enrollment_secret
            )
            self.facts.append("service RUNNING, registered and heartbeating")
            self.check_tags(device, "from TAGS")
        with self.step("a scan ran"):
            self.check_first_scan(device_id)
        with self.step("with a winget stand-in (lunaris-agent.cmd configure), its updates arrive"):
            self.use_winget_stand_in(device_id)
        token = self.agent.config()["device_token"]
        newer = self.newer or self.build_newer()
        with self.step(f"upgrade to {newer.name} without properties"):
            before = self.server.get(f"/api/devices/{device_id}")
            self.msiexec("/i", newer, log="upgrade")
            self.note(f"sc query: STATE {self.agent.wait_for_state('RUNNING')}")
            # Wine writes the registry back lazily: a `reg query` right after msiexec can read
            # it before the new product's entry is there (seen now and then as an empty list).
            expected = [msi_version(newer)]

            def upgraded() -> list[str] | None:
                return expected if self.agent.installed_versions() == expected else None

            try:
                versions = wait_for("the new version under Uninstall", upgraded, timeout=15)
            except Failed:
                found = self.agent.installed_versions()
                raise Failed(f"Lunaris Agent versions after the upgrade: {found}") from None
            config = self.agent.config()
            if (config.get("device_id"), config.get("device_token")) != (device_id, token):
                raise Failed(f"the upgrade changed the device id or token: {config}")
            self.wait_for_contact_after(device_id, before["last_seen_at"])
            if [d["id"] for d in self.server.devices()] != [device_id]:
                raise Failed(f"the server's devices after the upgrade: {self.server.devices()}")
            self.facts.append(f"upgrade to {versions[0]} kept device {device_id[:8]}")
            # The new version's first report: the tags stay, in config.json and on the server.
            scanned = self.wait_for_scan_after(device_id, before["last_scan_at"])
            self.check_tags(scanned, "kept by the upgrade")
        installed = self_update(self, device_id, token, msi_version(newer))
        with self.step("uninstall"):
            self.machine.before_uninstall(self.agent)
            self.msiexec("/x", installed, log="uninstall")
            query = self.agent.service_query()
            if "STATE" in query:
                raise Failed(f"the service is still there:\n{query}")
            left = self.agent.files_left()
            if left:
                raise Failed(f"files left in Program Files: {', '.join(left[:5])}")
            if self.agent.installed_versions():
                raise Failed("Lunaris Agent is still listed under Uninstall")
            kept = self.agent.config()
            if kept.get("device_id") != device_id:
                raise Failed(f"ProgramData's config.json after uninstall: {kept}")
            self.facts.append("uninstall removed service and files, kept ProgramData")
        return "; ".join(self.facts)

    # -- the steps' parts ---------------------------------------------------------------------

    def msiexec(self, action: str, msi: Path, *properties: str, log: str, expect: int = 0) -> None:
        log_path = self.work / f"{log}.log"
        log_path.unlink(missing_ok=True)
        result = self.machine.run(
            "msiexec",
            action,
            self.machine.windows_path(msi),
            "/qn",
            *properties,
            "/l*v",
            self.machine.windows_path(log_path),
            console=True,
        )
        if result.returncode != self.machine.exit_status(expect):
            raise Failed(
                f"msiexec {action} exited with {result.returncode}, not {expect}\n"
                + msi_log_errors(log_path)
            )

    def wait_for_heartbeats(self) -> dict[str, Any]:
        """The one device, once its last contact has moved (two heartbeats seen)."""
        first = wait_for("the device to register", lambda: self.server.devices() or None)
        if len(first) != 1:
            raise Failed(f"expected one device, the server has {len(first)}")
        return self.wait_for_contact_after(first[0]["id"], first[0]["last_seen_at"])

    def wait_for_contact_after(self, device_id: str, seen: str) -> dict[str, Any]:
        def moved() -> dict[str, Any] | None:
            device: dict[str, Any] = self.server.get(f"/api/devices/{device_id}")
            return device if device["last_seen_at"] != seen else None

        return wait_for("a heartbeat", moved, timeout=HEARTBEAT_S * 15)

    def wait_for_scan_after(self, device_id: str, scanned: str | None) -> dict[str, Any]:
        def reported() -> dict[str, Any] | None:
            device: dict[str, Any] = self.server.get(f"/api/devices/{device_id}")
            return device if device["last_scan_at"] != scanned else None

        return wait_for("an update report", reported)

    def check_tags(self, device: dict[str, Any], how: str) -> None:
        """config.json holds the tags given as TAGS, and the server has them as the device's
        agent tags."""
        in_config = self.agent.config().get("tags")
        if in_config != EXPECTED_TAGS:
            raise Failed(f"config.json's tags are {in_config}, not {EXPECTED_TAGS} (TAGS={TAGS})")
        if device["agent_tags"] != EXPECTED_TAGS:
            raise Failed(f"the server's agent tags are {device['agent_tags']}, not {EXPECTED_TAGS}")
        self.note(f"tags {', '.join(EXPECTED_TAGS)}: in config.json and the server's agent tags")
        self.facts.append(f"agent tags {how}")

    def check_first_scan(self, device_id: str) -> None:
        def scanned() -> dict[str, Any] | None:
            device: dict[str, Any] = self.server.get(f"/api/devices/{device_id}")
            return device if device["scan_error"] or device["last_scan_at"] else None

        # A real winget's first run can take minutes (it updates its sources).
        timeout = WAIT_S if isinstance(self.machine, Wine) else 5 * WAIT_S
        device = wait_for("a scan result or scan error", scanned, timeout=timeout)
        error = device["scan_error"]
        if isinstance(self.machine, Wine):
            # Wine has no winget: the agent must say so, not report an empty list.
            if not error or error["code"] != "winget_not_found":
                raise Failed(f"expected the scan error winget_not_found, got {device}")
            self.note(f"scan error {error['code']}: {error['message'][:70]}...")
            self.facts.append("scan error winget_not_found reported")
        elif error:
            self.note(f"scan error {error['code']}: {error['message']}")
        else:
            self.note(f"scan: {device['updates_count']} updates")

    def use_winget_stand_in(self, device_id: str) -> None:
        folder = self.work / "winget"
        folder.mkdir(exist_ok=True)
        (folder / "winget.py").write_text(WINGET_STAND_IN, encoding="utf-8")
        shutil.copy(WINGET_SAMPLE.with_suffix(".txt"), folder / "winget-output.txt")
        expected = json.loads(WINGET_SAMPLE.with_suffix(".expected.json").read_text("utf-8"))
        expected_ids = sorted({row["package_identifier"] for row in expected["updates"]})

        self.agent.service("stop")
        self.agent.wait_for_state("STOPPED")
        cli = PureWindowsPath(self.machine.windows_path(self.machine.program_files))
        result = self.machine.run(
            "cmd",
            "/c",
            str(cli / "lunaris-agent.cmd"),
            "configure",
            "--api-url",
            self.server.api_url,
            "--winget-path",
            self.machine.windows_path(folder / "winget.py"),
        )
        if result.returncode != 0:
            raise Failed(f"lunaris-agent.cmd configure failed:\n{result.stdout}{result.stderr}")
        self.agent.service("start")
        self.agent.wait_for_state("RUNNING")

        def updates() -> list[str] | None:
            device = self.server.get(f"/api/devices/{device_id}")
            if device["scan_error"] is not None or device["updates_count"] == 0:
                return None
            rows = self.server.get(f"/api/devices/{device_id}/updates")["items"]
            return sorted({row["package_identifier"] for row in rows})

        found = wait_for("the stand-in's updates on the server", updates)
        if found != expected_ids:
            raise Failed(f"the server shows {found}, the stand-in printed {expected_ids}")
        self.note(f"{len(found)} packages: {', '.join(found)}")
        self.facts.append(f"stand-in scan: {len(found)} updates")

    def build_newer(self) -> Path:
        return self.build(bump(msi_version(self.msi)), "newer")

    def build(self, version: str, name: str) -> Path:
        with self.step(f"build {version} (infra/installer/build)"):
            result = subprocess.run(
                [
                    str(HERE / "build"),
                    "--version",
                    version,
                    "--output-dir",
                    str(self.work / name),
                    "--work-dir",
                    str(self.work / f"build-{name}"),
                ],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            progress = result.stderr.strip().splitlines()
            if result.returncode != 0:
                raise Failed(f"the build of {version} failed:\n" + "\n".join(progress[-15:]))
            self.note(progress[-1] if progress else "built")
            return Path(result.stdout.strip().splitlines()[-1])

    def diagnostics(self) -> str:
        parts = [f"--- agent log\n{self.agent.log_tail(30)}"]
        if self.server.log_path.exists():
            tail = self.server.log_path.read_text(errors="replace").splitlines()[-20:]
            parts.append("--- server log\n" + "\n".join(tail))
        console = self.machine.console_log().splitlines()[-20:]
        if console:
            parts.append(f"--- {self.machine.name} console\n" + "\n".join(console))
        return "\n".join(parts)


def msi_version(msi: Path) -> str:
    """The ProductVersion: from the build's file name, else from the MSI (msiinfo)."""
    named = version_in_file_name(msi.name)
    if named is not None:
        return named
    output = subprocess.run(
        ["msiinfo", "export", str(msi), "Property"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    versions = [row["Value"] for row in table_rows(output) if row["Property"] == "ProductVersion"]
    if not versions:
        raise Failed(f"{msi.name} has no ProductVersion")
    return versions[0]


def bump(version: str) -> str:
    major, minor, build = (int(part) for part in version.split("."))
    return f"{major}.{minor + 1}.0" if build >= 65535 else f"{major}.{minor}.{build + 1}"
