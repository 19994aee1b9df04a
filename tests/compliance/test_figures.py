"""Compliance figures on a crafted fleet: ignored updates (a fleet rule, a group's glob over
the fleet's exact rule) are not missing, revoked devices do not count, a group's figures
count its devices, ages fall in their buckets at 7/8 and 30/31 days, and overdue follows
the SLA of the policy each device takes. The CSV lists the rows behind each figure, escaped."""

import csv
import io

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, literal, select

from lunaris_server.compliance.ignored import Ignored
from lunaris_server.devices.models import Device
from lunaris_server.policies.models import Policy
from lunaris_server.updates.models import DeviceUpdate
from tests.compliance.helpers import DAYS_8, add_policy, crafted_fleet, report
from tests.support import (
    FakeClock,
    api_login,
    app_state,
    create_secret,
    create_user,
    register_device,
)


@pytest.fixture
async def admin(app: FastAPI, client: httpx.AsyncClient, clock: FakeClock) -> httpx.AsyncClient:
    await create_user(app)
    await api_login(client)
    return client


def figures(body: dict) -> tuple[int, ...]:
    keys = ("devices", "compliant", "missing", "waiting", "age_0_7", "age_8_30", "age_over_30")
    return (*(body[k] for k in keys), body["overdue"])


async def test_the_fleet_and_each_group(app, admin):
    fleet = await crafted_fleet(app, admin)
    now = (await admin.get("/api/compliance")).json()
    assert figures(now) == (5, 3, 2, 4, 1, 2, 1, 0)
    assert now["compliant_percent"] == 60.0
    assert now["group_id"] is None

    lab = (await admin.get("/api/compliance", params={"group_id": fleet["lab"]})).json()
    assert figures(lab) == (1, 1, 0, 0, 0, 0, 0, 0)
    four = (await admin.get("/api/compliance", params={"group_id": fleet["four"]})).json()
    assert figures(four) == (1, 0, 1, 2, 0, 1, 1, 0)

    missing = await admin.get("/api/compliance", params={"group_id": 999})
    assert missing.status_code == 404


async def test_a_device_not_scanned_yet_counts_and_is_not_compliant(app, admin):
    """Enrolled and never scanned, or whose only scans failed: counted among the devices,
    not compliant, and not missing (no update is known to wait). A device whose scan fails
    after one that worked keeps what that one found."""
    fleet = await crafted_fleet(app, admin)
    secret = await create_secret(app)
    await register_device(admin, secret, hostname="PC-NEW")
    failing = await register_device(admin, secret, hostname="PC-FAILS")
    failed = {"updates": [], "scan_error": {"code": "winget_missing", "message": "no winget"}}
    for _ in range(2):
        sent = await admin.post("/api/agent/update-report", json=failed, headers=failing.headers)
        assert sent.status_code == 200, sent.text
    pc5 = fleet["devices"]["PC-5"]  # type: ignore[index]
    sent = await admin.post("/api/agent/update-report", json=failed, headers=pc5.headers)
    assert sent.status_code == 200, sent.text

    now = (await admin.get("/api/compliance")).json()
    assert figures(now) == (7, 3, 2, 4, 1, 2, 1, 0)
    assert now["not_scanned"] == 2
    assert now["compliant_percent"] == 42.9
    everyone = (await admin.get("/api/compliance", params={"group_id": fleet["everyone"]})).json()
    assert (everyone["devices"], everyone["not_scanned"]) == (7, 2)

    listed = await admin.get("/api/devices", params={"scanned": "false"})
    assert sorted(d["hostname"] for d in listed.json()["items"]) == ["PC-FAILS", "PC-NEW"]
    up_to_date = await admin.get("/api/devices", params={"has_updates": "false"})
    assert [d["hostname"] for d in up_to_date.json()["items"]] == ["PC-5"]
    scan_ok = await admin.get("/api/devices", params={"has_scan_error": "false"})
    assert "PC-NEW" not in {d["hostname"] for d in scan_ok.json()["items"]}


async def test_overdue_follows_the_sla_of_the_policy_a_device_takes(app, admin):
    fleet = await crafted_fleet(app, admin)
    await add_policy(admin, "Everyone", fleet["everyone"], sla_days=30)
    # PC-4's updates waited 30 days 23 hours and 31 days: past 30; PC-1's 8 days are not.
    assert (await admin.get("/api/compliance")).json()["overdue"] == 1
    policy = await add_policy(admin, "Week", fleet["everyone"], sla_days=7, priority=1)
    assert (await admin.get("/api/compliance")).json()["overdue"] == 2  # PC-1 too now
    # A policy first in order without an SLA: PC-4 takes it, and is never overdue.
    await add_policy(admin, "Four first", fleet["four"], priority=0)
    assert (await admin.get("/api/compliance")).json()["overdue"] == 1
    got = await admin.get(f"/api/policies/{policy['id']}")
    assert got.json()["sla_days"] == 7


async def test_bad_input_is_refused_and_changes_nothing(app, admin):
    fleet = await crafted_fleet(app, admin)
    for params in (
        {"group_id": 0},
        {"group_id": 2**31},
        {"group_id": "x"},
        {"figure": "everything"},
        {"colour": "red"},
    ):
        answer = await admin.get("/api/compliance/devices.csv", params=params)
        assert answer.status_code == 422, (params, answer.text)
    for params in ({"days": 0}, {"days": 401}, {"group_id": -1}, {"unknown": 1}):
        answer = await admin.get("/api/compliance/history", params=params)
        assert answer.status_code == 422, (params, answer.text)
    for sla in (-1, 366, "soon"):
        body = {"name": "Bad", "rings": [{"group_id": fleet["everyone"]}], "sla_days": sla}
        assert (await admin.post("/api/policies", json=body)).status_code == 422
    async with app_state(app).database.session() as session:
        assert await session.scalar(select(func.count()).select_from(Policy)) == 0


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_the_rows_behind_each_figure_as_csv(app, admin):
    fleet = await crafted_fleet(app, admin)
    await add_policy(admin, "Everyone", fleet["everyone"], sla_days=30)

    async def rows(figure: str, **params: object) -> list[tuple[str, str]]:
        answer = await admin.get("/api/compliance/devices.csv", params={"figure": figure, **params})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/csv")
        return sorted((r["hostname"], r["package_identifier"]) for r in read_csv(answer.text))

    assert await rows("missing") == [
        ("PC-1", "Git.Git"),
        ("PC-1", "Zoom.Zoom"),
        ("PC-4", "Git.Git"),
        ("PC-4", "Zoom.Zoom"),
    ]
    assert await rows("age_0_7") == [("PC-1", "Zoom.Zoom")]
    assert await rows("age_8_30") == [("PC-1", "Git.Git"), ("PC-4", "Git.Git")]
    assert await rows("age_over_30") == [("PC-4", "Zoom.Zoom")]
    assert await rows("overdue") == [("PC-4", "Git.Git"), ("PC-4", "Zoom.Zoom")]
    assert await rows("missing", group_id=fleet["lab"]) == []

    answer = await admin.get("/api/compliance/devices.csv", params={"figure": "age_over_30"})
    (row,) = read_csv(answer.text)
    assert row["name"] == "'=HYPERLINK(1)"  # a formula stays text
    assert (row["age_days"], row["overdue"], row["source"]) == ("31", "yes", "winget")


async def test_missing_is_what_each_device_page_does_not_call_ignored(app, admin):
    """Devices in two groups whose rules for one package have the same rank: the older rule
    decides (updates/rules.py). The count agrees with every device's own decisions."""
    secret = await create_secret(app)
    devices = [await register_device(admin, secret, hostname=f"PC-{n}") for n in range(1, 5)]
    for name, members in (("A", devices[:2]), ("B", devices[1:3])):
        listed = [device.device_id for device in members]
        group = await admin.post("/api/groups", json={"name": name, "device_ids": listed})
        assert group.status_code == 201, group.text
        rule = {"package": "Zoom.Zoom", "group_id": group.json()["id"]}
        rule["action"] = "ignore" if name == "A" else "manual"  # A's is older
        assert (await admin.post("/api/package-rules", json=rule)).status_code == 201
    for device in devices:
        await report(app, admin, device, {"Zoom.Zoom": DAYS_8})
    ignored_on = set()
    for device in devices:
        decisions = await admin.get(f"/api/devices/{device.device_id}/update-decisions")
        if [d["state"] for d in decisions.json()] == ["ignored"]:
            ignored_on.add(device.device_id)
    assert ignored_on == {devices[0].device_id, devices[1].device_id}
    now = (await admin.get("/api/compliance")).json()
    assert (now["devices"], now["compliant"], now["waiting"]) == (4, 2, 2)
    answer = await admin.get("/api/compliance/devices.csv", params={"figure": "missing"})
    assert {r["device_id"] for r in read_csv(answer.text)} == {
        devices[2].device_id,
        devices[3].device_id,
    }


async def test_thousands_of_ignored_packages_fit_one_statement(app, admin):
    """An ignore glob can name every package of a large fleet, times the membership keys:
    more than the databases take as bound parameters, and as row values PostgreSQL cannot
    plan."""
    fleet = await crafted_fleet(app, admin)
    ignored = Ignored(
        [(f"Vendor.App{n}", "winget") for n in range(20_000)] + [("Zoom.Zoom", "winget")],
        [(f"Vendor.App{n}", "winget", "1") for n in range(20_000)],
        [],
    )
    devices = select(Device.id, literal("1").label("key")).subquery()
    statement = (
        select(func.count())
        .select_from(DeviceUpdate)
        .join(devices, devices.c.id == DeviceUpdate.device_id)
        .where(ignored.condition(devices.c.key))
    )
    async with app_state(app).database.session() as session:
        assert await session.scalar(statement) == 2  # Zoom on PC-1 and PC-4
    assert fleet
