"""The daily history: one snapshot a UTC day for the fleet and each group, written once
however often (or by however many processes) the job runs, kept 400 days, and read back by
the API; and the console's card and page, which a viewer sees too."""

import asyncio
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, select

from lunaris_server.compliance import history
from lunaris_server.compliance.models import ComplianceDay
from tests.compliance.helpers import add_policy, crafted_fleet
from tests.console.helpers import login
from tests.support import FakeClock, api_login, app_state, create_user


@pytest.fixture
async def admin(app: FastAPI, client: httpx.AsyncClient, clock: FakeClock) -> httpx.AsyncClient:
    await create_user(app)
    await api_login(client)
    return client


async def rows(app: FastAPI) -> list[tuple]:
    async with app_state(app).database.session() as session:
        found = await session.execute(
            select(ComplianceDay.day, ComplianceDay.group_id, ComplianceDay.compliant).order_by(
                ComplianceDay.day, ComplianceDay.group_id.is_not(None), ComplianceDay.group_id
            )
        )
        return [tuple(row) for row in found]


async def test_a_day_is_written_once_for_the_fleet_and_each_group(app, admin, clock):
    fleet = await crafted_fleet(app, admin)
    state = app_state(app)
    assert await history.snapshot_once(state) is True
    assert await history.snapshot_once(state) is False  # the same day: nothing more
    clock.advance(hours=10)
    assert await history.snapshot_once(state) is False
    today = clock.now.date()
    groups = sorted([fleet["lab"], fleet["four"], fleet["everyone"]])
    assert [(d, g) for d, g, _ in await rows(app)] == [(today, None)] + [(today, g) for g in groups]

    clock.advance(days=1)
    assert await history.snapshot_once(state) is True
    await api_login(admin)
    answer = await admin.get("/api/compliance/history", params={"days": 2})
    assert answer.status_code == 200, answer.text
    days = answer.json()
    assert [d["day"] for d in days] == [str(today), str(today + timedelta(days=1))]
    assert (days[0]["devices"], days[0]["compliant"], days[0]["missing"]) == (5, 3, 2)
    assert days[0]["compliant_percent"] == 60.0
    for group_id in groups:  # one pass for all groups counts as each group's own count
        kept = await admin.get("/api/compliance/history", params={"group_id": group_id})
        now = await admin.get("/api/compliance", params={"group_id": group_id})
        figures = {k: v for k, v in now.json().items() if k not in ("group_id", "at")}
        assert {k: v for k, v in kept.json()[-1].items() if k != "day"} == figures
    lab = await admin.get("/api/compliance/history", params={"group_id": fleet["lab"]})
    assert [(d["devices"], d["compliant"]) for d in lab.json()] == [(1, 1), (1, 1)]
    assert len((await admin.get("/api/compliance/history", params={"days": 1})).json()) == 1
    unknown = await admin.get("/api/compliance/history", params={"group_id": 999})
    assert unknown.status_code == 404


async def test_runs_at_the_same_moment_write_a_day_once(app, admin, clock):
    """On PostgreSQL both runs read and count at once; the second's claim waits for the
    first's commit and inserts nothing."""
    await crafted_fleet(app, admin)
    state = app_state(app)
    results = await asyncio.gather(*(history.snapshot_once(state) for _ in range(3)))
    assert sorted(results) == [False, False, True]
    assert len(await rows(app)) == 4  # the fleet and its three groups, once


async def test_400_days_are_kept(app, admin, clock):
    state = app_state(app)
    old = clock.now.date() - timedelta(days=400)
    async with state.database.session() as session:
        await session.execute(
            insert(ComplianceDay),
            [
                {
                    "day": old + timedelta(days=n),
                    "group_id": None,
                    "taken_at": clock.now,
                    "devices": 0,
                    "compliant": 0,
                    "overdue": 0,
                    "waiting": 0,
                    "age_0_7": 0,
                    "age_8_30": 0,
                    "age_over_30": 0,
                }
                for n in (0, 1)
            ],
        )
        await session.commit()
    assert await history.snapshot_once(state) is True
    assert [d for d, _, _ in await rows(app)] == [old + timedelta(days=1), clock.now.date()]
    async with state.database.session() as session:
        assert await session.scalar(select(func.count()).select_from(ComplianceDay)) == 2


async def test_the_dashboard_card_and_the_page(app, admin, client, clock):
    fleet = await crafted_fleet(app, admin)
    await add_policy(admin, "Everyone", fleet["everyone"], sla_days=30)
    await history.snapshot_once(app_state(app))
    await create_user(app, "viewer", role="viewer")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as viewer:
        assert (await login(viewer, "viewer")).status_code == 303
        page = await viewer.get("/")
        assert page.status_code == 200
        html = page.text
        assert 'data-live-src="/dashboard/compliance"' in html
        assert "60.0%" in html
        assert 'data-figure="overdue"' in html
        assert "/api/compliance/devices.csv?figure=age_over_30" in html
        assert "chart-lines" in html  # the 90-day chart, from the first snapshot on
        card = await viewer.get("/dashboard/compliance", headers={"HX-Request": "true"})
        assert card.status_code == 200
        assert card.text.lstrip().startswith('<section id="compliance"')

        lab = await viewer.get("/compliance", params={"group_id": fleet["lab"]})
        assert lab.status_code == 200
        assert "Compliance: <bdi>Lab</bdi>" in lab.text
        assert f'data-live-src="/compliance?group_id={fleet["lab"]}"' in lab.text
        assert f"figure=missing&amp;group_id={fleet['lab']}" in lab.text
        # Every group's latest snapshot, side by side: Four has PC-4, not compliant.
        assert f'<tr data-group="{fleet["four"]}">' in lab.text
        assert '<td class="num">0.0%</td>' in lab.text
        fragment = await viewer.get(
            "/compliance", params={"group_id": fleet["four"]}, headers={"HX-Request": "true"}
        )
        assert fragment.status_code == 200
        assert fragment.text.lstrip().startswith('<section id="compliance"')
        assert "hx-disable" in fragment.text
        assert (await viewer.get("/compliance", params={"group_id": 999})).status_code == 404
        assert (await viewer.get("/compliance", params={"group_id": 0})).status_code == 400


async def test_consoles_share_a_count_for_half_a_minute(app, admin, clock):
    fleet = await crafted_fleet(app, admin)
    card = await admin.get("/dashboard/compliance", headers={"HX-Request": "true"})
    assert "60.0%" in card.text
    pc5 = fleet["devices"]["PC-5"].device_id  # type: ignore[index]
    assert (await admin.post(f"/api/devices/{pc5}/revoke")).status_code == 200
    assert (await admin.get("/api/compliance")).json()["compliant_percent"] == 50.0  # fresh
    card = await admin.get("/dashboard/compliance", headers={"HX-Request": "true"})
    assert "60.0%" in card.text  # counted 0 s ago
    clock.advance(seconds=31)
    card = await admin.get("/dashboard/compliance", headers={"HX-Request": "true"})
    assert "50.0%" in card.text
