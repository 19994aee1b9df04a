"""Tags and groups for the pages scenario's fleet: every device gets one to three tags (a
site and a department, some a role; a third of them from the agent's config), and twenty
groups of every kind of rule are defined, as an admin of a large fleet would have them."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select

from lunaris_server.db.engine import Database
from lunaris_server.devices.models import Device, DeviceGroup, DeviceGroupMember, DeviceTag

SITES = ("berlin", "munich", "hamburg", "vienna", "zurich")
DEPARTMENTS = ("finance", "it", "sales", "support", "engineering", "hr")
ROLES = ("kiosk", "laptop", "desktop", "vip")

GROUPS: list[dict[str, Any]] = [
    *({"name": f"Site {site}", "tags": [site]} for site in SITES),
    *({"name": f"Dept {dept}", "tags": [dept], "tag_source": "admin"} for dept in DEPARTMENTS),
    {"name": "Berlin finance", "tags": ["berlin", "finance"], "tags_match": "all"},
    {"name": "Kiosks or VIPs", "tags": ["kiosk", "vip"], "tags_match": "any"},
    {"name": "Hostnames PC-01*", "hostname_glob": "PC-01*"},
    {"name": "Hostnames *7", "hostname_glob": "*7"},
    {"name": "Windows 11", "os_contains": "windows 11"},
    {"name": "IT pilot", "tags": ["it"], "hostname_glob": "PC-0*", "tag_source": "admin"},
    {"name": "Listed 500", "listed": 500},
    {"name": "Listed 50 or kiosks", "tags": ["kiosk"], "listed": 50},
    {"name": "Sales laptops", "tags": ["sales", "laptop"], "tags_match": "all"},
]
"""Twenty groups; the pages scenario opens the first of each kind by name."""


async def seed_groups(url: str, *, batch: int = 5_000) -> dict[str, int]:
    """Tags for every device and the groups above; returns each group's id by name."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    database = Database(url)
    try:
        async with database.session() as session:
            device_ids = list(await session.scalars(select(Device.id).order_by(Device.id)))
            tags: list[dict[str, str]] = []
            for device_id in device_ids:
                source = "agent" if rng.random() < 0.33 else "admin"
                chosen = {rng.choice(SITES), rng.choice(DEPARTMENTS)}
                if rng.random() < 0.3:
                    chosen.add(rng.choice(ROLES))
                tags.extend({"device_id": device_id, "source": source, "tag": t} for t in chosen)
            for start in range(0, len(tags), batch):
                await session.execute(insert(DeviceTag), tags[start : start + batch])
            ids: dict[str, int] = {}
            for spec in GROUPS:
                listed = spec.get("listed", 0)
                rule = {k: v for k, v in spec.items() if k not in ("name", "listed")}
                group = DeviceGroup(
                    name=spec["name"],
                    description="",
                    tags_match=rule.pop("tags_match", "any"),
                    tag_source=rule.pop("tag_source", "any"),
                    created_at=now,
                    created_by="bench",
                    updated_at=now,
                    updated_by="bench",
                    **rule,
                )
                session.add(group)
                await session.flush()
                ids[spec["name"]] = group.id
                if listed:
                    await session.execute(
                        insert(DeviceGroupMember),
                        [
                            {"group_id": group.id, "device_id": d, "added_at": now, "added_by": "b"}
                            for d in rng.sample(device_ids, listed)
                        ],
                    )
            await session.commit()
        async with database.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.exec_driver_sql(
                "VACUUM ANALYZE" if database.engine.dialect.name == "postgresql" else "ANALYZE"
            )
        return ids
    finally:
        await database.dispose()
