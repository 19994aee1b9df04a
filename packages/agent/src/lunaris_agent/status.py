"""Facts that change at every contact with the server, kept in ``state.json`` beside the config
so the config file (which holds the token) is rewritten only when it really changes; and the
summary ``lunaris-agent status`` prints."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lunaris_agent.config import AgentConfig
from lunaris_agent.spool import Spool


@dataclass(frozen=True)
class ContactState:
    last_contact_at: datetime | None = None
    last_error: str | None = None
    """The last failure to reach the server, cleared by the next success."""
    spool_error: str | None = None
    """Why the spool cannot be written (what waits is kept in memory), while it cannot."""

    @classmethod
    def load(cls, path: Path) -> ContactState:
        try:
            data = json.loads(path.read_bytes())
            contact = data.get("last_contact_at")
            return cls(
                last_contact_at=datetime.fromisoformat(contact) if contact else None,
                last_error=data.get("last_error"),
                spool_error=data.get("spool_error"),
            )
        except (OSError, ValueError, TypeError, AttributeError):
            return cls()  # a missing or damaged state file only costs the status display

    def save(self, path: Path) -> None:
        data = {
            "last_contact_at": None
            if self.last_contact_at is None
            else self.last_contact_at.isoformat(),
            "last_error": self.last_error,
            "spool_error": self.spool_error,
        }
        # Not fsynced: losing the last minute of this file to a power cut costs nothing.
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps(data), encoding="utf-8")
        temporary.replace(path)


def describe(config: AgentConfig) -> list[str]:
    """``lunaris-agent status``: what a support engineer asks first."""
    state = ContactState.load(config.state_path)
    spool = Spool(config.spool_dir)
    if config.device_token:
        enrollment = "registered"
    elif config.enrollment_secret:
        enrollment = "not registered yet (enrollment secret present)"
    else:
        enrollment = "not registered, and no enrollment secret: run `lunaris-agent configure`"
    last_contact = state.last_contact_at.isoformat() if state.last_contact_at else "never"
    lines = [
        f"config:        {config.path}",
        f"server:        {config.api_url}",
        f"device id:     {config.device_id or '(made at first start)'}",
        f"enrollment:    {enrollment}",
        f"heartbeat:     every {config.heartbeat_interval_s} s",
        f"scan:          every {config.scan_interval_s} s",
        f"winget:        {config.winget_path or 'found automatically'}",
        f"tags:          {', '.join(config.tags) or '(none)'}",
        f"last contact:  {last_contact}",
        f"spool:         {spool.count()} unsent, {spool.size_bytes()} bytes in {config.spool_dir}",
        f"logs:          {config.log_dir}",
    ]
    if state.last_error:
        lines.append(f"last error:    {state.last_error}")
    if state.spool_error:
        lines.append(f"spool error:   {state.spool_error}")
    return lines
