"""The install test's self-update steps: the server offers a newer agent version and the
installed agent, as the Windows service, replaces itself with it through UPDATE_AGENT.

1. The server hashed the version's MSI when it was added; then one byte of the file flips on
   disk (its size and time kept, so the server still announces the hash it took): the agent
   downloads it, finds another SHA-256, refuses it and reports ``hash_mismatch``, and the old
   agent keeps running.
2. With the file whole again, the agent downloads it, starts msiexec detached and is stopped
   by the MSI's major upgrade; the service the new version installs starts, finishes the
   command with the version it runs, and heartbeats as that version under the same device id
   and token.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from install_wait import Failed, wait_for

if TYPE_CHECKING:
    from install_steps import InstallTest

UPGRADE_S: Final = 240
"""Download, msiexec's major upgrade (the old product removed, the new one installed) and
the new service's first heartbeat; Wine is slow at all three."""
FINAL: Final = frozenset({"succeeded", "failed", "partial", "expired", "cancelled"})


def self_update(test: InstallTest, device_id: str, token: str, installed: str) -> Path:
    """Runs both steps from ``installed`` (the version running now) to the next version;
    returns the MSI now installed."""
    from install_steps import bump  # the same numbering as the upgrade step's build

    version = bump(installed)
    newest = test.build(version, "newest")
    server = test.server
    with test.step(f"the server offers {version}; a download that does not match is refused"):
        added = server.call("PUT", f"/api/agent-versions/{version}", body=newest.read_bytes())
        test.note(f"agent version {version}: {added['size_bytes']} bytes, {added['sha256'][:16]}")
        device = server.get(f"/api/devices/{device_id}")
        if "self_update" not in device["capabilities"]:
            raise Failed(f"the installed agent does not say self_update: {device['capabilities']}")
        stored = server.downloads / added["file_name"]
        whole = stored.read_bytes()
        flip_a_byte(stored, whole)
        command = queue(test, device_id, version)
        refused = finished(test, command["id"], "the agent to refuse the download")
        outcomes = [(r["outcome"], r["package_identifier"]) for r in refused["results"]]
        if refused["status"] != "failed" or outcomes != [("hash_mismatch", "Lunaris.Agent")]:
            raise Failed(f"a corrupted download was not refused: {refused}")
        keep_time(stored, whole)
        if server.get(f"/api/devices/{device_id}")["agent_version"] != installed:
            raise Failed("the agent changed after refusing the download")
        test.facts.append("corrupted download refused (hash_mismatch)")
    with test.step(f"the agent updates itself to {version} (UPDATE_AGENT)"):
        before = server.get(f"/api/devices/{device_id}")
        command = queue(test, device_id, version)
        done = finished(test, command["id"], "the agent to update itself", timeout=UPGRADE_S)
        if done["status"] != "succeeded":
            raise Failed(f"the self-update ended {done['status']}: {done}\n{test.diagnostics()}")
        test.note(f"sc query: STATE {test.agent.wait_for_state('RUNNING')}")

        def reporting() -> dict[str, Any] | None:
            now = server.get(f"/api/devices/{device_id}")
            moved = now["last_seen_at"] != before["last_seen_at"]
            return now if moved and now["agent_version"] == version else None

        wait_for(f"heartbeats from agent {version}", reporting, timeout=60)
        config = test.agent.config()
        if (config.get("device_id"), config.get("device_token")) != (device_id, token):
            raise Failed(f"the self-update changed the device id or token: {config}")
        if [d["id"] for d in server.devices()] != [device_id]:
            raise Failed(f"the server's devices after the self-update: {server.devices()}")
        versions = wait_for(
            "the new version under Uninstall",
            lambda: [version] if test.agent.installed_versions() == [version] else None,
            timeout=15,
        )
        test.facts.append(f"self-update to {versions[0]} kept device {device_id[:8]}")
    return newest


def queue(test: InstallTest, device_id: str, version: str) -> dict[str, Any]:
    command: dict[str, Any] = test.server.call(
        "POST", f"/api/devices/{device_id}/agent-update", json_body={"version": version}
    )
    return command


def finished(test: InstallTest, command_id: str, what: str, timeout: float = 60) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        command: dict[str, Any] = test.server.get(f"/api/commands/{command_id}")
        return command if command["status"] in FINAL else None

    try:
        return wait_for(what, final, timeout=timeout)
    except Failed:
        command = test.server.get(f"/api/commands/{command_id}")
        raise Failed(f"{what}: the command is {command['status']}\n{test.diagnostics()}") from None


def flip_a_byte(path: Path, whole: bytes) -> None:
    """One byte of the file changes on disk, its size and modification time do not (what a
    bad disk or a copy gone wrong does)."""
    middle = len(whole) // 2
    keep_time(path, whole[:middle] + bytes([whole[middle] ^ 0xFF]) + whole[middle + 1 :])


def keep_time(path: Path, content: bytes) -> None:
    stat = path.stat()
    path.write_bytes(content)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
