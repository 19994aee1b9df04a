"""A crafted fleet for the compliance tests: devices whose updates have waited chosen ages,
an ignore rule for the fleet and one for a group, a revoked device."""

from datetime import datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from lunaris_server.updates.models import DeviceUpdate
from tests.support import RegisteredDevice, app_state, create_secret, register_device, update_row


async def report(
    app: FastAPI,
    client: httpx.AsyncClient,
    device: RegisteredDevice,
    ages: dict[str, timedelta],
    *,
    names: dict[str, str] | None = None,
) -> None:
    """Reports the packages, then dates each as first seen ``age`` before now."""
    rows = [update_row(p, name=(names or {}).get(p, p.split(".")[-1])) for p in ages]
    sent = await client.post(
        "/api/agent/update-report", json={"updates": rows}, headers=device.headers
    )
    assert sent.status_code == 200, sent.text
    state = app_state(app)
    now: datetime = state.clock()
    async with state.database.session() as session:
        for package, age in ages.items():
            await session.execute(
                update(DeviceUpdate)
                .where(
                    DeviceUpdate.device_id == device.device_id,
                    DeviceUpdate.package_identifier == package,
                )
                .values(first_seen_at=now - age)
            )
        await session.commit()


DAYS_7 = timedelta(days=7, hours=23)  # 7 whole days: still 0-7
DAYS_8 = timedelta(days=8)
DAYS_30 = timedelta(days=30, hours=23)
DAYS_31 = timedelta(days=31)


async def crafted_fleet(app: FastAPI, admin: httpx.AsyncClient) -> dict[str, object]:
    """PC-1: Zoom 7 days, Git 8 days, Edge (ignored by the fleet's rule);
    PC-2: Edge only (compliant); PC-3 ("Lab"): Git, ignored by the Lab's rule (compliant);
    PC-4: Git 30 days, Zoom 31 days (named like a formula); PC-5: nothing (a scan that
    found nothing);
    PC-6: revoked, with Git."""
    secret = await create_secret(app)
    devices = {
        name: await register_device(admin, secret, hostname=name)
        for name in ("PC-1", "PC-2", "PC-3", "PC-4", "PC-5", "PC-6")
    }
    lab = await admin.post("/api/groups", json={"name": "Lab", "hostname_glob": "PC-3"})
    four = await admin.post("/api/groups", json={"name": "Four", "hostname_glob": "PC-4"})
    everyone = await admin.post("/api/groups", json={"name": "Everyone", "hostname_glob": "PC-*"})
    for made in (lab, four, everyone):
        assert made.status_code == 201, made.text
    for rule in (
        {"package": "Microsoft.Edge", "action": "ignore"},
        {"package": "Git.*", "action": "ignore", "group_id": lab.json()["id"]},
        {"package": "Git.Git", "action": "manual"},  # the fleet's exact rule: Lab's glob wins
    ):
        made = await admin.post("/api/package-rules", json=rule)
        assert made.status_code == 201, made.text
    await report(
        app,
        admin,
        devices["PC-1"],
        {"Zoom.Zoom": DAYS_7, "Git.Git": DAYS_8, "Microsoft.Edge": DAYS_31},
    )
    await report(app, admin, devices["PC-2"], {"Microsoft.Edge": DAYS_31})
    await report(app, admin, devices["PC-3"], {"Git.Git": DAYS_31})
    await report(
        app,
        admin,
        devices["PC-4"],
        {"Git.Git": DAYS_30, "Zoom.Zoom": DAYS_31},
        names={"Zoom.Zoom": "=HYPERLINK(1)"},
    )
    await report(app, admin, devices["PC-5"], {})
    await report(app, admin, devices["PC-6"], {"Git.Git": DAYS_31})
    revoked = await admin.post(f"/api/devices/{devices['PC-6'].device_id}/revoke")
    assert revoked.status_code == 200, revoked.text
    return {
        "devices": devices,
        "lab": lab.json()["id"],
        "four": four.json()["id"],
        "everyone": everyone.json()["id"],
    }


async def add_policy(
    admin: httpx.AsyncClient, name: str, group_id: int, **fields: object
) -> dict[str, object]:
    body = {"name": name, "rings": [{"group_id": group_id}], **fields}
    made = await admin.post("/api/policies", json=body)
    assert made.status_code == 201, made.text
    result: dict[str, object] = made.json()
    return result
