"""Rows the migration tests write, with the columns every revision since 0004 has."""

from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DEVICE = "5d4c3b2a-0000-4000-8000-000000000001"


def device_row(device_id: str = DEVICE) -> dict[str, Any]:
    return {
        "id": device_id,
        "hostname": "PC-0001",
        "os_version": "",
        "agent_version": "",
        "token_hash": "0" * 64,
        "enrolled_at": NOW,
        "last_seen_at": NOW,
        "announced_status": "online",
        "updates_count": 0,
    }


def command_row(command_id: str, status: str, device_id: str = DEVICE) -> dict[str, Any]:
    return {
        "id": command_id,
        "device_id": device_id,
        "kind": "RUN_UPDATES",
        "packages": ["Git.Git"],
        "status": status,
        "created_by": "user:admin",
        "created_at": NOW,
        "expires_at": NOW + timedelta(days=1),
        "updated_at": NOW,
        "last_sequence": 3,
        "message": "",
    }
