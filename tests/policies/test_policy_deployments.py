"""A policy's commands for one package version in one ring join one deployment, tick after
tick; another ring has its own; its failures are retried from it like any deployment's."""

import asyncio
from datetime import UTC, datetime

from sqlalchemy import select

from lunaris_server.audit.service import Actor
from lunaris_server.commands.models import Deployment
from lunaris_server.commands.scheduled import PolicyDeployment, join_deployments
from lunaris_server.policies import scheduler
from tests.policies.helpers import ROWS, finish, fleet, two_rings
from tests.support import app_state


async def test_ticks_join_one_deployment_per_version_and_ring(app, admin, clock):
    first = await fleet(app, admin, ["PILOT-1"], ROWS)
    policy = await two_rings(admin)
    state = app_state(app)
    assert await scheduler.tick_once(state) == 1
    # A second pilot reports the same version later: a later tick, the same deployment.
    pilots = first + await fleet(app, admin, ["PILOT-2"], ROWS)
    (desk,) = await fleet(app, admin, ["PC-1"], ROWS)
    clock.advance(minutes=1)
    assert await scheduler.tick_once(state) == 1

    listed = (await admin.get("/api/deployments", params={"kind": "policy"})).json()
    (pilot_ring,) = listed["items"]
    assert pilot_ring["title"] == "Policy Nightly: Zoom.Zoom 6.3, ring 1 (Pilot)"
    assert (pilot_ring["kind"], pilot_ring["packages"]) == ("policy", ["Zoom.Zoom"])
    url = f"/api/deployments/{pilot_ring['id']}"
    shown = (await admin.get(url)).json()
    assert shown["commands"]["total"] == 2

    await finish(admin, pilots[0], "succeeded")
    await finish(admin, pilots[1], "failed")
    assert (await admin.get(url)).json()["summary"]["text"] == "1 of 2 succeeded, 1 failed"
    retried = await admin.post(f"{url}/retry")
    assert retried.status_code == 201, retried.text
    assert retried.json()["created"] == 1
    shown = (await admin.get(url)).json()
    assert (shown["summary"]["total"], shown["summary"]["commands"]) == (2, 3)
    again = [c for c in shown["commands"]["items"] if c["retry_of"]]
    assert [(c["device_id"], c["packages"]) for c in again] == [
        (pilots[1].device_id, ["Zoom.Zoom"])
    ]

    version = {"package_identifier": "Zoom.Zoom", "source": "winget", "version": "6.3"}
    rollouts = f"/api/policies/{policy['id']}/rollouts"
    assert (await admin.post(f"{rollouts}/promote", json=version)).status_code == 200
    clock.advance(minutes=1)
    assert await scheduler.tick_once(state) == 1  # PC-1, in ring 2

    listed = (await admin.get("/api/deployments", params={"kind": "policy"})).json()
    assert len(listed["items"]) == 2
    everyone = next(d for d in listed["items"] if d["id"] != pilot_ring["id"])
    assert everyone["title"] == "Policy Nightly: Zoom.Zoom 6.3, ring 2 (Everyone)"
    shown = (await admin.get(f"/api/deployments/{everyone['id']}")).json()
    assert [c["device_id"] for c in shown["commands"]["items"]] == [desk.device_id]
    (rollout,) = (await admin.get(rollouts)).json()
    assert [r["deployment_id"] for r in rollout["rings"]] == [pilot_ring["id"], everyone["id"]]
    page = await admin.get(f"/policies/{policy['id']}")
    assert f'href="/deployments/{pilot_ring["id"]}"' in page.text
    assert f'href="/deployments/{everyone["id"]}"' in page.text


async def test_two_transactions_joining_a_new_deployment_find_one_row(app, backend):
    """Its id is derived from what it is and its row written ``ON CONFLICT DO NOTHING``:
    the second to create it (another process, at the same moment) waits for the first's
    commit and then joins its row."""
    version = PolicyDeployment(1, 0, "Zoom.Zoom", "winget", "6.3")
    assert version.id == PolicyDeployment(1, 0, "Zoom.Zoom", "winget", "6.3").id
    assert version.id != PolicyDeployment(1, 1, "Zoom.Zoom", "winget", "6.3").id
    database = app_state(app).database
    actor = Actor("policy:1")
    first_at = datetime(2026, 11, 2, 21, tzinfo=UTC)
    second_at = datetime(2026, 11, 2, 22, tzinfo=UTC)
    async with database.session() as one, database.session() as two:
        await join_deployments(one, {version: "first"}, actor=actor, now=first_at)
        if backend == "postgresql":  # the second waits on the first's row until it commits
            racing = asyncio.create_task(
                join_deployments(two, {version: "second"}, actor=actor, now=second_at)
            )
            await asyncio.sleep(0.2)
            assert not racing.done()
            await one.commit()
            await racing
        else:  # SQLite: one writing transaction at a time
            await one.commit()
            await join_deployments(two, {version: "second"}, actor=actor, now=second_at)
        await two.commit()
    async with database.session() as session:
        rows = list(await session.scalars(select(Deployment)))
    assert [(d.id, d.title, d.kind) for d in rows] == [(version.id, "first", "policy")]
    assert rows[0].updated_at.replace(tzinfo=UTC) == second_at
