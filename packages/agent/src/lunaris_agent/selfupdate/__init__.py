"""The agent replacing itself with another version (UPDATE_AGENT; docs/agent.md,
"Self-update"): ``download`` (resumable, size and SHA-256 checked), ``signature`` (the pinned
publisher's Authenticode signature), ``launch`` (msiexec, detached), ``files`` (the files and
the marker that carries the command across the upgrade), ``installer_log`` (what msiexec's
log says), ``updater`` (the command from start to end)."""

from lunaris_agent.selfupdate.updater import SelfUpdater, SelfUpdateSettings, windows_self_update

__all__ = ["SelfUpdateSettings", "SelfUpdater", "windows_self_update"]
