"""Deployments through the console API and the agent API, in-process: each bulk action is one
deployment with the right commands and counts of the devices it left out, its summary
follows its commands' statuses (offline devices' waiting ones apart), the list pages and
filters, and bad input, viewers and unknown ids are refused without a change."""

from typing import Any

import httpx
from fastapi import FastAPI

from lunaris_server.commands.sweeper import sweep_once
from tests.commands.deploying import audit_entries, commands_by_device, deploy, shown
from tests.commands.helpers import Events, Tokens, enrolled, finish, heartbeat, progress
from tests.support import FakeClock, app_state


async def test_updates_on_a_selection_are_one_deployment(client, tokens, secret, events: Events):
    both = await enrolled(client, secret, ["Git.Git", "7zip.7zip"], hostname="PC-BOTH")
    one = await enrolled(client, secret, ["Git.Git"], hostname="PC-ONE")
    none = await enrolled(client, secret, [], hostname="PC-NONE")
    busy = await enrolled(client, secret, ["Git.Git"], hostname="PC-BUSY")
    other = await enrolled(client, secret, ["Git.Git"], hostname="PC-NOT-SELECTED")
    open_one = await client.post(
        f"/api/devices/{busy.device_id}/commands",
        json={"kind": "RUN_UPDATES", "packages": ["Git.Git"]},
        headers=tokens.admin,
    )
    assert open_one.status_code == 201
    assert open_one.json()["deployment_id"] is None  # one device's command is in none
    await events.drain()

    picked = [d.device_id for d in (both, one, none, busy)]
    run = await deploy(client, tokens, {"device_ids": picked}, packages=None)
    assert (run["created"], run["skipped_busy"], run["skipped_up_to_date"]) == (2, 1, 1)
    deployment = run["deployment"]
    assert deployment["kind"] == "manual"
    assert deployment["title"] == "Every waiting update on 4 selected devices"
    assert deployment["packages"] is None
    assert deployment["selection"] == {"device_ids": 4}
    assert (deployment["skipped_busy"], deployment["skipped_up_to_date"]) == (1, 1)
    assert deployment["created_by"] == "user:admin"
    summary = deployment["summary"]
    assert (summary["total"], summary["waiting"], summary["finished"]) == (2, 2, False)
    assert summary["by_status"]["queued"] == 2
    assert summary["by_status"]["partial"] == 0
    assert summary["text"] == "0 of 2 succeeded, 2 waiting"

    detail = await shown(client, tokens, deployment["id"])
    by_device = commands_by_device(detail)
    assert set(by_device) == {both.device_id, one.device_id}
    for (command,) in by_device.values():
        assert (command["packages"], command["status"]) == (None, "queued")
        assert (command["deployment_id"], command["retry_of"]) == (deployment["id"], None)
    assert detail["commands"]["total"] == 2
    # Each change is announced with its deployment, so the console's summary follows it.
    announced = [e["data"] for e in await events.drain() if e["type"] == "COMMAND_UPDATED"]
    assert {e["deployment_id"] for e in announced} == {deployment["id"]}
    assert len(announced) == 2
    # Handed over like any command; the device left out keeps only its own.
    answer = await heartbeat(client, both)
    assert [c["command_id"] for c in answer["commands"]] == [by_device[both.device_id][0]["id"]]
    assert len((await heartbeat(client, busy))["commands"]) == 1
    assert (await heartbeat(client, other))["commands"] == []
    # The commands list names the deployment and filters by it.
    listed = await client.get(
        "/api/commands", params={"deployment_id": deployment["id"]}, headers=tokens.viewer
    )
    assert listed.json()["total"] == 2

    entry = next(
        e for e in await audit_entries(client, tokens) if e["action"] == "deployment.create"
    )
    assert entry["target"] == f"deployment:{deployment['id']}"
    assert entry["details"]["commands"] == 2
    assert entry["details"]["skipped_busy"] == 1
    assert entry["details"]["skipped_up_to_date"] == 1
    assert entry["details"]["selection"] == {"device_ids": 4}


async def test_listed_packages_go_to_the_devices_waiting_for_them(client, tokens, secret):
    both = await enrolled(client, secret, ["Git.Git", "7zip.7zip", "Mozilla.Firefox"])
    git_only = await enrolled(client, secret, ["Git.Git"], hostname="PC-GIT")
    await enrolled(client, secret, ["Mozilla.Firefox"], hostname="PC-FOX")
    run = await deploy(
        client, tokens, {"matching": {}}, packages=["7zip.7zip", "Git.Git", "7zip.7zip"]
    )
    assert (run["created"], run["skipped_up_to_date"]) == (2, 1)
    assert run["deployment"]["packages"] == ["7zip.7zip", "Git.Git"]
    assert run["deployment"]["title"] == "7zip.7zip, Git.Git on 3 selected devices"
    assert run["deployment"]["selection"] == {"matching": {}}
    by_device = commands_by_device(await shown(client, tokens, run["deployment"]["id"]))
    assert by_device[both.device_id][0]["packages"] == ["7zip.7zip", "Git.Git"]
    assert by_device[git_only.device_id][0]["packages"] == ["Git.Git"]

    # The same again: every device waiting has an open command that installs it already.
    again = await deploy(client, tokens, {"matching": {}}, ["Git.Git"], expect=409)
    assert again["error"]["details"] == {"skipped_busy": 2, "skipped_up_to_date": 1}
    nothing = await deploy(client, tokens, {"matching": {"q": "PC-FOX"}}, ["Git.Git"], expect=409)
    assert nothing["error"]["details"] == {"skipped_busy": 0, "skipped_up_to_date": 1}
    listed = await client.get("/api/deployments", headers=tokens.viewer)
    assert listed.json()["total"] == 1


async def test_an_update_on_every_device_waiting_is_a_deployment(client, tokens, secret):
    devices = [await enrolled(client, secret, ["Git.Git"], hostname=f"PC-{n}") for n in range(3)]
    ran = await client.post("/api/updates/Git.Git/run?source=winget", headers=tokens.admin)
    assert ran.status_code == 201, ran.text
    deployment_id = ran.json()["deployment_id"]
    assert {c["deployment_id"] for c in ran.json()["items"]} == {deployment_id}
    detail = await shown(client, tokens, deployment_id)
    assert detail["title"] == "Git.Git from winget on every device waiting for it"
    assert (detail["packages"], detail["source"]) == (["Git.Git"], "winget")
    assert set(commands_by_device(detail)) == {d.device_id for d in devices}
    assert detail["summary"]["text"] == "0 of 3 succeeded, 3 waiting"
    entry = next(
        e
        for e in await audit_entries(client, tokens)
        if e["action"] == "command.create_for_package"
    )
    assert entry["details"]["deployment_id"] == deployment_id


async def test_the_summary_follows_the_commands_and_tells_offline_devices_apart(
    app: FastAPI, client, tokens, secret, clock: FakeClock
):
    done, broken, gone, slow = [
        await enrolled(client, secret, ["Git.Git", "7zip.7zip"], hostname=f"PC-{n}")
        for n in range(4)
    ]
    run = await deploy(
        client, tokens, {"device_ids": [d.device_id for d in (done, broken, gone, slow)]}
    )
    deployment_id = run["deployment"]["id"]
    ids = {
        d: c[0]["id"]
        for d, c in commands_by_device(await shown(client, tokens, deployment_id)).items()
    }

    for device in (done, broken):
        await heartbeat(client, device)
    summary = (await shown(client, tokens, deployment_id))["summary"]
    assert summary["text"] == "0 of 4 succeeded, 4 waiting"  # queued and sent alike
    assert summary["by_status"]["sent"] == 2

    await progress(client, done, ids[done.device_id], 1, package_started="Git.Git")
    summary = (await shown(client, tokens, deployment_id))["summary"]
    assert summary["text"] == "0 of 4 succeeded, 1 running, 3 waiting"

    await finish(client, done, ids[done.device_id], [("Git.Git", True), ("7zip.7zip", True)])
    answer = await finish(
        client, broken, ids[broken.device_id], [("Git.Git", True), ("7zip.7zip", False)]
    )
    assert answer == {"status": "failed"}  # as the agent reported it; partial on the server
    summary = (await shown(client, tokens, deployment_id))["summary"]
    assert summary["text"] == "1 of 4 succeeded, 1 partly succeeded, 2 waiting"
    assert (summary["by_status"]["succeeded"], summary["by_status"]["partial"]) == (1, 1)

    # Ten minutes on, only one of the two waiting devices is still heard from.
    last_seen = clock.now
    clock.advance(minutes=10)
    await client.post("/api/agent/update-report", json={"updates": []}, headers=slow.headers)
    summary = (await shown(client, tokens, deployment_id))["summary"]
    assert (summary["waiting"], summary["waiting_offline"]) == (2, 1)
    assert summary["offline_since"].startswith(last_seen.isoformat()[:19])
    assert summary["text"] == (
        "1 of 4 succeeded, 1 partly succeeded, 2 waiting (1 offline since 09:00 UTC)"
    )
    clock.advance(minutes=10)
    summary = (await shown(client, tokens, deployment_id))["summary"]
    assert summary["text"] == (
        "1 of 4 succeeded, 1 partly succeeded, 2 waiting (offline since 09:10 UTC)"
    )
    # Still silent the next day: the summary says which day.
    clock.advance(hours=20)
    summary = (await shown(client, tokens, deployment_id))["summary"]
    assert summary["text"].endswith("2 waiting (offline since Nov 02 09:10 UTC)")

    # Nobody picked them up: expired, and the deployment is finished.
    clock.advance(hours=5)
    await sweep_once(app_state(app))
    summary = (await shown(client, tokens, deployment_id))["summary"]
    assert summary["text"] == "1 of 4 succeeded, 1 partly succeeded, 2 expired"
    assert (summary["finished"], summary["waiting_offline"], summary["offline_since"]) == (
        True,
        0,
        None,
    )
    finished = await client.get(
        "/api/deployments", params={"active": "false"}, headers=tokens.viewer
    )
    assert [d["id"] for d in finished.json()["items"]] == [deployment_id]
    active = await client.get("/api/deployments", params={"active": "true"}, headers=tokens.viewer)
    assert active.json()["total"] == 0


async def test_the_list_is_newest_first_filtered_and_paged(client, tokens, secret, clock):
    devices = [
        await enrolled(client, secret, [f"Vendor.P{n}"], hostname=f"PC-{n}") for n in range(3)
    ]
    made = []
    for n, device in enumerate(devices):
        made.append(
            (await deploy(client, tokens, {"device_ids": [device.device_id]}))["deployment"]["id"]
        )
        clock.advance(seconds=1 + n)

    def listed(**params: Any) -> Any:
        return client.get("/api/deployments", params=params, headers=tokens.viewer)

    page = (await listed()).json()
    assert [d["id"] for d in page["items"]] == made[::-1]
    assert (page["total"], page["limit"], page["offset"]) == (3, 50, 0)
    second = (await listed(limit=1, offset=1)).json()
    assert [d["id"] for d in second["items"]] == [made[1]]
    assert (await listed(kind="manual")).json()["total"] == 3
    assert (await listed(kind="policy")).json()["total"] == 0
    assert (await listed(active="true")).json()["total"] == 3
    for bad in ({"kind": "other"}, {"active": "maybe"}, {"limit": 0}, {"order": "asc"}):
        response = await listed(**bad)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["error"]["code"] == "invalid_request"
    assert (
        await client.get(f"/api/deployments/{made[0]}", params={"x": 1}, headers=tokens.viewer)
    ).status_code == 422


async def commands_and_deployments(client: httpx.AsyncClient, tokens: Tokens) -> tuple[int, int]:
    commands = await client.get("/api/commands", headers=tokens.viewer)
    deployments = await client.get("/api/deployments", headers=tokens.viewer)
    return commands.json()["total"], deployments.json()["total"]


async def test_bad_input_is_refused_and_changes_nothing(client, tokens, secret):
    device = await enrolled(client, secret, ["Git.Git"])
    picked = {"device_ids": [device.device_id]}
    unknown = "00000000-0000-4000-8000-000000000000"
    for body in (
        {"selection": picked},  # packages must be given (null for every update)
        {"packages": None},
        {"selection": {}, "packages": None},
        {"selection": {"device_ids": [], "packages": None}},
        {"selection": {"device_ids": [device.device_id], "matching": {}}, "packages": None},
        {"selection": {"device_ids": ["not-a-uuid"]}, "packages": None},
        {"selection": {"matching": {"colour": "red"}}, "packages": None},
        {"selection": picked, "packages": []},
        {"selection": picked, "packages": ["has space"]},
        {"selection": picked, "packages": ["x" * 257]},
        {"selection": picked, "packages": None, "surprise": 1},
        {"selection": {"device_ids": [unknown]}, "packages": None},
        {"selection": {"matching": {"group_id": 99}}, "packages": None},
    ):
        response = await client.post("/api/deployments", json=body, headers=tokens.admin)
        assert response.status_code in (404, 422), (body, response.text)
        assert response.json()["error"]["code"] in ("invalid_request", "invalid_input", "not_found")
    not_json = await client.post(
        "/api/deployments",
        content=b"{",
        headers={**tokens.admin, "Content-Type": "application/json"},
    )
    assert not_json.status_code == 400
    assert await commands_and_deployments(client, tokens) == (0, 0)

    missing = await client.get(f"/api/deployments/{unknown}", headers=tokens.viewer)
    assert missing.status_code == 404
    assert (
        await client.post(f"/api/deployments/{unknown}/retry", headers=tokens.admin)
    ).status_code == 404
    assert (await client.get("/api/deployments/nope", headers=tokens.viewer)).status_code == 422


async def test_viewers_read_and_cannot_write(client, tokens, secret):
    device = await enrolled(client, secret, ["Git.Git"])
    body = {"selection": {"device_ids": [device.device_id]}, "packages": None}
    refused = await client.post("/api/deployments", json=body, headers=tokens.viewer)
    assert refused.status_code == 403
    assert await commands_and_deployments(client, tokens) == (0, 0)
    deployment_id = (await deploy(client, tokens, body["selection"]))["deployment"]["id"]
    assert (
        await client.post(f"/api/deployments/{deployment_id}/retry", headers=tokens.viewer)
    ).status_code == 403
    assert (await client.get("/api/deployments", headers=tokens.viewer)).status_code == 200
    assert (
        await client.get(f"/api/deployments/{deployment_id}", headers=tokens.viewer)
    ).status_code == 200
    assert (await client.get("/api/deployments")).status_code == 401
    assert await commands_and_deployments(client, tokens) == (1, 1)


async def test_every_update_on_a_selection_is_what_the_package_rules_offer(client, tokens, secret):
    free = await enrolled(client, secret, ["Git.Git", "7zip.7zip"], hostname="PC-FREE")
    ruled = await enrolled(client, secret, ["Git.Git", "Oracle.JDK", "Zoom.Zoom"], hostname="PC-R")
    held_only = await enrolled(client, secret, ["Oracle.JDK"], hostname="PC-HELD")
    for spec in (
        {"package": "Oracle.*", "action": "ignore"},
        {"package": "Zoom.Zoom", "version_constraint": "<2"},  # the 2.0 waiting is held
    ):
        made = await client.post("/api/package-rules", json=spec, headers=tokens.admin)
        assert made.status_code == 201, made.text
    run = await deploy(client, tokens, {"matching": {}})
    # PC-HELD has nothing its rules offer: left out as up to date.
    assert (run["created"], run["skipped_up_to_date"]) == (2, 1)
    by_device = commands_by_device(await shown(client, tokens, run["deployment"]["id"]))
    assert by_device[free.device_id][0]["packages"] is None  # no rule holds anything back
    assert by_device[ruled.device_id][0]["packages"] == ["Git.Git"]
    assert by_device[ruled.device_id][0]["versions"] == {"Git.Git": "2.0"}
    assert held_only.device_id not in by_device


async def test_a_package_on_every_device_waiting_leaves_out_those_whose_rules_keep_it(
    client, tokens, secret
):
    free = await enrolled(client, secret, ["Git.Git"], hostname="PC-FREE")
    pinned = await enrolled(client, secret, ["Git.Git"], hostname="KIOSK-1")
    await enrolled(client, secret, ["Git.Git"], hostname="KIOSK-2")
    kiosks = await client.post(
        "/api/groups", json={"name": "Kiosks", "hostname_glob": "KIOSK-*"}, headers=tokens.admin
    )
    assert kiosks.status_code == 201, kiosks.text
    pin = {"package": "Git.*", "group_id": kiosks.json()["id"], "version_constraint": "<2"}
    made = await client.post("/api/package-rules", json=pin, headers=tokens.admin)
    assert made.status_code == 201, made.text

    ran = await client.post("/api/updates/Git.Git/run", headers=tokens.admin)
    assert ran.status_code == 201, ran.text
    assert (ran.json()["total"], ran.json()["skipped_by_rules"]) == (1, 2)
    assert [c["device_id"] for c in ran.json()["items"]] == [free.device_id]
    # Nobody else to run it on: the refusal says why.
    again = await client.post("/api/updates/Git.Git/run", headers=tokens.admin)
    assert again.status_code == 409, again.text
    assert again.json()["error"]["details"] == {"skipped": 1, "skipped_by_rules": 2}
    assert pinned.device_id not in {c["device_id"] for c in ran.json()["items"]}
