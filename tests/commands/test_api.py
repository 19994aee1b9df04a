"""Remote actions through the console API and the agent API, in-process: create, hand over,
progress, results, history, audit, cancel, expiry, roles, bad input."""

from datetime import timedelta
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from lunaris_server.commands.sweeper import sweep_once
from lunaris_server.updates.models import UpdateEvent
from tests.commands.helpers import (
    Events,
    Tokens,
    create_command,
    enrolled,
    heartbeat,
    progress,
    result,
)
from tests.support import FakeClock, api_login, app_state

create = create_command


async def detail(client: httpx.AsyncClient, tokens: Tokens, command_id: str) -> dict:
    response = await client.get(f"/api/commands/{command_id}", headers=tokens.viewer)
    assert response.status_code == 200, response.text
    return response.json()


async def command_events(app: FastAPI, command_id: str) -> list[UpdateEvent]:
    async with app_state(app).database.session() as session:
        rows = await session.scalars(
            select(UpdateEvent).where(UpdateEvent.command_id == command_id).order_by(UpdateEvent.id)
        )
        return list(rows)


async def audit_actions(client: httpx.AsyncClient, tokens: Tokens) -> list[str]:
    response = await client.get("/api/audit", headers=tokens.admin, params={"limit": 500})
    return [entry["action"] for entry in response.json()["items"]]


async def test_a_command_runs_through_its_whole_lifecycle(
    app, client, tokens, secret, events: Events
):
    device = await enrolled(client, secret, ["Git.Git", "7zip.7zip", "Mozilla.Firefox"])
    await events.drain()
    created = await create(client, tokens, device.device_id, ["Git.Git", "7zip.7zip"])
    command_id = created["id"]
    assert created["status"] == "queued"
    assert created["packages"] == ["Git.Git", "7zip.7zip"]
    assert created["hostname"] == "PC-0001"
    assert created["created_by"] == "user:admin"
    assert await events.commands() == [(command_id, "queued")]

    answer = await heartbeat(client, device)
    assert [c["command_id"] for c in answer["commands"]] == [command_id]
    assert answer["commands"][0]["packages"] == ["Git.Git", "7zip.7zip"]
    assert answer["commands"][0]["kind"] == "RUN_UPDATES"
    assert (await detail(client, tokens, command_id))["status"] == "sent"
    assert await events.commands() == [(command_id, "sent")]

    step = await progress(client, device, command_id, 1, package_started="Git.Git")
    assert step == {"status": "running"}
    shown = await detail(client, tokens, command_id)
    assert (shown["status"], shown["current_package"]) == ("running", "Git.Git")
    assert shown["started_at"] is not None
    await progress(client, device, command_id, 2, result=result("Git.Git", installer_exit_code=0))
    await progress(client, device, command_id, 3, package_started="7zip.7zip")
    await progress(
        client,
        device,
        command_id,
        4,
        result=result(
            "7zip.7zip",
            succeeded=False,
            installer_exit_code=2316632107,  # 0x8A15002B: more than a 32-bit INTEGER holds
            hresult="0x8A15002B",
            message="Installer failed with exit code: 1603",
        ),
    )
    # One package installed, one not: partial on the server. The agent is answered failed,
    # as it reported it (an agent older than "partial" could not read that).
    final = await progress(client, device, command_id, 5, status="failed")
    assert final == {"status": "failed"}
    assert [status for _, status in await events.commands()] == ["running"] * 4 + ["partial"]

    shown = await detail(client, tokens, command_id)
    assert shown["status"] == "partial"
    assert shown["finished_at"] is not None
    assert shown["current_package"] is None
    assert [
        (r["package_identifier"], r["succeeded"], r["installer_exit_code"])
        for r in shown["results"]
    ] == [("Git.Git", True, 0), ("7zip.7zip", False, 2316632107)]
    assert shown["results"][1]["message"] == "Installer failed with exit code: 1603"
    assert shown["results"][0]["duration_s"] == 12.5

    history = await command_events(app, command_id)
    assert [(e.kind, e.package_identifier) for e in history] == [
        ("install_started", "Git.Git"),
        ("install_succeeded", "Git.Git"),
        ("install_started", "7zip.7zip"),
        ("install_failed", "7zip.7zip"),
    ]
    assert (history[1].from_version, history[1].to_version, history[1].source) == (
        "1.0",
        "2.0",
        "winget",
    )
    assert history[3].details is not None
    assert history[3].details["hresult"] == "0x8A15002B"
    # The history is the device's, as the console shows it.
    listed = await client.get(f"/api/devices/{device.device_id}/events", headers=tokens.viewer)
    assert {e["command_id"] for e in listed.json()["items"]} >= {command_id}

    # Finished: no longer handed over.
    assert (await heartbeat(client, device))["commands"] == []
    assert "command.create" in await audit_actions(client, tokens)


async def test_progress_is_applied_once_per_step(app, client, tokens, secret, events):
    device = await enrolled(client, secret, ["Git.Git"])
    command_id = (await create(client, tokens, device.device_id, ["Git.Git"]))["id"]
    await heartbeat(client, device)
    await progress(client, device, command_id, 1, package_started="Git.Git")
    await progress(client, device, command_id, 2, result=result("Git.Git"))
    await events.drain()
    # The agent's spool sends a step again after a lost answer: acknowledged, ignored.
    again = await progress(client, device, command_id, 2, result=result("Git.Git", False))
    assert again == {"status": "running"}
    older = await progress(client, device, command_id, 1, package_started="Git.Git")
    assert older == {"status": "running"}
    assert await events.commands() == []
    shown = await detail(client, tokens, command_id)
    assert [r["succeeded"] for r in shown["results"]] == [True]
    assert [e.kind for e in await command_events(app, command_id)] == [
        "install_started",
        "install_succeeded",
    ]
    await progress(client, device, command_id, 3, status="succeeded")
    assert (await progress(client, device, command_id, 3, status="succeeded")) == {
        "status": "succeeded"
    }


async def test_statuses_only_move_forward(client, tokens, secret):
    device = await enrolled(client, secret, ["Git.Git"])
    command_id = (await create(client, tokens, device.device_id, None))["id"]
    # Progress before the server saw it handed over (a push raced the "sent" mark): running.
    assert (await progress(client, device, command_id, 1))["status"] == "running"
    shown = await detail(client, tokens, command_id)
    assert shown["sent_at"] is not None
    assert (await progress(client, device, command_id, 2, status="succeeded"))[
        "status"
    ] == "succeeded"
    # A later step cannot take it back to running or over to failed.
    assert (await progress(client, device, command_id, 3))["status"] == "succeeded"
    assert (await progress(client, device, command_id, 4, status="failed"))["status"] == "succeeded"
    assert (await detail(client, tokens, command_id))["status"] == "succeeded"


async def test_progress_for_another_devices_command_is_unknown(client, tokens, secret):
    mine = await enrolled(client, secret, ["Git.Git"])
    other = await enrolled(client, secret, ["Git.Git"], hostname="PC-0002")
    command_id = (await create(client, tokens, mine.device_id, ["Git.Git"]))["id"]
    refused = await progress(client, other, command_id, 1, expect=404)
    unknown = await progress(client, other, "9b3a3c0e-3f0e-4d55-8a3a-4f3e2b1c0d9e", 1, expect=404)
    assert refused["error"]["code"] == unknown["error"]["code"] == "not_found"
    assert refused["error"]["message"].startswith("no command with id")
    assert (await detail(client, tokens, command_id))["status"] == "queued"
    # Without a device token, or with a bad step, nothing happens either.
    anonymous = await client.post(
        f"/api/agent/commands/{command_id}/progress", json={"sequence": 1, "status": "running"}
    )
    assert anonymous.status_code == 401
    bad = await progress(client, mine, command_id, 0, expect=422)
    assert bad["error"]["code"] == "invalid_request"
    wrong = await client.post(
        f"/api/agent/commands/{command_id}/progress",
        json={"sequence": 1, "status": "cancelled"},
        headers=mine.headers,
    )
    assert wrong.status_code == 422
    assert (await detail(client, tokens, command_id))["status"] == "queued"


async def test_commands_not_started_in_time_expire_once(
    app, client, tokens, secret, clock: FakeClock, events
):
    device = await enrolled(client, secret, ["Git.Git", "7zip.7zip", "Mozilla.Firefox"])
    sent = (await create(client, tokens, device.device_id, ["Git.Git"]))["id"]
    assert len((await heartbeat(client, device))["commands"]) == 1
    queued = (await create(client, tokens, device.device_id, ["7zip.7zip"]))["id"]
    cancelled = (await create(client, tokens, device.device_id, ["Mozilla.Firefox"]))["id"]
    assert (await client.post(f"/api/commands/{cancelled}/cancel", headers=tokens.admin)).is_success
    await events.drain()

    clock.advance(hours=23, minutes=59)
    assert await sweep_once(app_state(app)) == 0
    clock.advance(minutes=2)
    # Past its expiry a command is no longer handed over, even before the sweep.
    assert (await heartbeat(client, device))["commands"] == []
    state = app_state(app)
    assert await sweep_once(state) == 2
    assert sorted(await events.commands()) == sorted([(sent, "expired"), (queued, "expired")])
    assert await sweep_once(state) == 0  # exactly once
    shown = await detail(client, tokens, sent)
    assert shown["status"] == "expired"
    assert shown["message"] == "no agent started this command before it expired"
    assert (await detail(client, tokens, queued))["status"] == "expired"
    assert (await detail(client, tokens, cancelled))["status"] == "cancelled"

    # The agent ran it anyway (it had it before the expiry; its clock differs): what happened
    # is recorded, the command stays expired.
    assert (await progress(client, device, sent, 1, package_started="Git.Git"))[
        "status"
    ] == "expired"
    await progress(client, device, sent, 2, result=result("Git.Git"))
    final = await progress(client, device, sent, 3, status="succeeded")
    assert final == {"status": "expired"}
    shown = await detail(client, tokens, sent)
    assert shown["status"] == "expired"
    assert shown["current_package"] is None
    assert shown["message"] == "the agent reported it succeeded after it was expired"
    assert [r["package_identifier"] for r in shown["results"]] == ["Git.Git"]
    assert [e.kind for e in await command_events(app, sent)] == [
        "install_started",
        "install_succeeded",
    ]


async def test_expiry_follows_the_setting(app, client, tokens, secret, clock):
    app_state(app).settings.command_expiry_s = 3600
    device = await enrolled(client, secret, ["Git.Git"])
    created = await create(client, tokens, device.device_id, None)
    assert created["expires_at"].startswith(
        (clock.now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    )


async def test_only_a_queued_command_can_be_cancelled(client, tokens, secret, events):
    device = await enrolled(client, secret, ["Git.Git"])
    first = (await create(client, tokens, device.device_id, None))["id"]
    await events.drain()
    cancelled = await client.post(f"/api/commands/{first}/cancel", headers=tokens.admin)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["message"] == "cancelled by user:admin"
    assert await events.commands() == [(first, "cancelled")]
    again = await client.post(f"/api/commands/{first}/cancel", headers=tokens.admin)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    assert "cancelled" in again.json()["error"]["message"]
    # A cancelled command never goes out.
    assert (await heartbeat(client, device))["commands"] == []

    second = (await create(client, tokens, device.device_id, None))["id"]
    assert len((await heartbeat(client, device))["commands"]) == 1
    sent = await client.post(f"/api/commands/{second}/cancel", headers=tokens.admin)
    assert sent.status_code == 409
    assert (await detail(client, tokens, second))["status"] == "sent"
    missing = await client.post(
        "/api/commands/9b3a3c0e-3f0e-4d55-8a3a-4f3e2b1c0d9e/cancel", headers=tokens.admin
    )
    assert missing.status_code == 404
    assert (await audit_actions(client, tokens)).count("command.cancel") == 1


async def test_viewers_read_and_admins_act(client, tokens, secret):
    device = await enrolled(client, secret, ["Git.Git"])
    body = {"kind": "RUN_UPDATES", "packages": None}
    refused = [
        await client.post(
            f"/api/devices/{device.device_id}/commands", json=body, headers=tokens.viewer
        ),
        await client.post("/api/updates/Git.Git/run", headers=tokens.viewer),
    ]
    assert [r.status_code for r in refused] == [403, 403]
    assert refused[0].json()["error"]["code"] == "forbidden"
    anonymous = await client.post(f"/api/devices/{device.device_id}/commands", json=body)
    assert anonymous.status_code == 401
    listed = await client.get("/api/commands", headers=tokens.viewer)
    assert listed.json()["total"] == 0

    command_id = (await create(client, tokens, device.device_id, None))["id"]
    cancel = await client.post(f"/api/commands/{command_id}/cancel", headers=tokens.viewer)
    assert cancel.status_code == 403
    assert (await detail(client, tokens, command_id))["status"] == "queued"
    assert (await client.get("/api/commands", headers=tokens.viewer)).json()["total"] == 1
    assert (await client.get("/api/commands")).status_code == 401


async def test_the_console_session_works_too(client, tokens, secret):
    device = await enrolled(client, secret, ["Git.Git"])
    await api_login(client)
    response = await client.post(
        f"/api/devices/{device.device_id}/commands",
        json={"kind": "RUN_UPDATES", "packages": ["Git.Git"]},
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"kind": "RUN_UPDATES"}, 422, "invalid_request"),  # "all" must be asked for
        ({"kind": "REBOOT", "packages": None}, 422, "invalid_request"),
        ({"kind": "RUN_UPDATES", "packages": []}, 422, "invalid_request"),
        ({"kind": "RUN_UPDATES", "packages": [""]}, 422, "invalid_request"),
        ({"kind": "RUN_UPDATES", "packages": ["x" * 257]}, 422, "invalid_request"),
        ({"kind": "RUN_UPDATES", "packages": ["Git.Git"] * 1001}, 422, "invalid_request"),
        ({"kind": "RUN_UPDATES", "packages": None, "surprise": 1}, 422, "invalid_request"),
        ({"kind": "RUN_UPDATES", "packages": ["Not.Waiting"]}, 422, "invalid_input"),
        ({"kind": "RUN_UPDATES", "packages": ["Git.Git", "Not.Waiting"]}, 422, "invalid_input"),
        ({"kind": "RUN_UPDATES", "packages": ["Microsoft.VisualStudio…"]}, 422, "invalid_input"),
        ({"kind": "RUN_UPDATES", "packages": [" Git.Git"]}, 422, "invalid_input"),
        ({"kind": "RUN_UPDATES", "packages": ["Local App 1.0"]}, 422, "invalid_input"),
        ({"kind": "RUN_UPDATES", "packages": ["--all"]}, 422, "invalid_input"),
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(client, tokens, secret, body, status, code):
    device = await enrolled(client, secret, ["Git.Git"])
    truncated = {
        "updates": [
            {
                "package_identifier": "Git.Git",
                "name": "Git",
                "installed_version": "1.0",
                "available_version": "2.0",
            },
            {
                "package_identifier": "Microsoft.VisualStudio…",
                "name": "Visual Studio",
                "installed_version": "17.0",
                "available_version": "17.1",
                "truncated": True,
            },
        ]
    }
    assert (
        await client.post("/api/agent/update-report", json=truncated, headers=device.headers)
    ).status_code == 200
    response = await client.post(
        f"/api/devices/{device.device_id}/commands", json=body, headers=tokens.admin
    )
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert (await client.get("/api/commands", headers=tokens.admin)).json()["total"] == 0


async def test_unknown_devices_and_bad_ids_are_refused(client, tokens):
    body = {"kind": "RUN_UPDATES", "packages": None}
    unknown = await client.post(
        "/api/devices/9b3a3c0e-3f0e-4d55-8a3a-4f3e2b1c0d9e/commands",
        json=body,
        headers=tokens.admin,
    )
    assert unknown.status_code == 404
    malformed = await client.post(
        "/api/devices/not-a-uuid/commands", json=body, headers=tokens.admin
    )
    assert malformed.status_code == 422
    assert (await client.get("/api/commands/not-a-uuid", headers=tokens.admin)).status_code == 422
    bad_status = await client.get("/api/commands", params={"status": "done"}, headers=tokens.admin)
    assert bad_status.status_code == 422


async def test_listed_packages_are_deduplicated_in_order(client, tokens, secret):
    device = await enrolled(client, secret, ["Git.Git", "7zip.7zip"])
    created = await create(client, tokens, device.device_id, ["7zip.7zip", "Git.Git", "7zip.7zip"])
    assert created["packages"] == ["7zip.7zip", "Git.Git"]


@pytest.mark.parametrize(
    "package",
    ["Notepad++.Notepad++", "Vendor.A&B=C;D", "Vendor/Slashed.App", "Ünïcødé.Äpp?#%"],
)
async def test_a_package_runs_on_every_device_waiting_for_it(
    app, client, tokens, secret, events, package
):
    waiting = [
        await enrolled(client, secret, [package, "Git.Git"], hostname="PC-A"),
        await enrolled(client, secret, [package], hostname="PC-B"),
    ]
    bystander = await enrolled(client, secret, ["Git.Git"], hostname="PC-C")
    await events.drain()
    response = await client.post(
        f"/api/updates/{quote(package, safe='')}/run", headers=tokens.admin
    )
    assert response.status_code == 201, response.text
    run = response.json()
    assert (run["package_identifier"], run["total"]) == (package, 2)
    assert sorted(c["device_id"] for c in run["items"]) == sorted(d.device_id for d in waiting)
    assert {c["hostname"] for c in run["items"]} == {"PC-A", "PC-B"}
    assert all(c["packages"] == [package] for c in run["items"])
    assert len(await events.commands()) == 2
    for device in waiting:
        handed = (await heartbeat(client, device))["commands"]
        assert [c["packages"] for c in handed] == [[package]]
    assert (await heartbeat(client, bystander))["commands"] == []
    assert "command.create_for_package" in await audit_actions(client, tokens)


async def test_a_package_nobody_waits_for_is_refused(client, tokens, secret):
    await enrolled(client, secret, ["Git.Git"])
    response = await client.post("/api/updates/Nobody.Has.This/run", headers=tokens.admin)
    assert response.status_code == 404
    assert "no device is waiting" in response.json()["error"]["message"]
    spaces = await client.post(f"/api/updates/{quote('Local App')}/run", headers=tokens.admin)
    assert spaces.status_code == 422
    assert spaces.json()["error"]["code"] == "invalid_input"
    assert (await client.get("/api/commands", headers=tokens.admin)).json()["total"] == 0


async def test_the_list_is_newest_first_and_filters(client, tokens, secret, clock):
    a = await enrolled(client, secret, ["Git.Git", "7zip.7zip"], hostname="PC-A")
    b = await enrolled(client, secret, ["Git.Git"], hostname="PC-B")
    ids = []
    for device, packages in ((a, ["Git.Git"]), (b, None), (a, ["7zip.7zip"])):
        clock.advance(minutes=1)
        ids.append((await create(client, tokens, device.device_id, packages))["id"])
    await client.post(f"/api/commands/{ids[0]}/cancel", headers=tokens.admin)

    everything = (await client.get("/api/commands", headers=tokens.viewer)).json()
    assert [c["id"] for c in everything["items"]] == ids[::-1]
    assert (everything["total"], everything["limit"], everything["offset"]) == (3, 50, 0)
    of_a = (
        await client.get("/api/commands", params={"device_id": a.device_id}, headers=tokens.viewer)
    ).json()
    assert [c["id"] for c in of_a["items"]] == [ids[2], ids[0]]
    cancelled = (
        await client.get("/api/commands", params={"status": "cancelled"}, headers=tokens.viewer)
    ).json()
    assert [c["id"] for c in cancelled["items"]] == [ids[0]]
    both = await client.get(
        "/api/commands",
        params={"device_id": a.device_id, "status": "queued"},
        headers=tokens.viewer,
    )
    assert [c["id"] for c in both.json()["items"]] == [ids[2]]
    paged = (
        await client.get("/api/commands", params={"limit": 1, "offset": 1}, headers=tokens.viewer)
    ).json()
    assert ([c["id"] for c in paged["items"]], paged["total"]) == ([ids[1]], 3)


async def test_a_heartbeat_hands_commands_over_until_the_agent_starts_them(
    app, client, tokens, secret, events, clock
):
    device = await enrolled(client, secret, ["Git.Git", "7zip.7zip"])
    first = (await create(client, tokens, device.device_id, ["7zip.7zip"]))["id"]
    clock.advance(seconds=1)
    second = (await create(client, tokens, device.device_id, ["Git.Git"]))["id"]
    await events.drain()
    handed = (await heartbeat(client, device))["commands"]
    assert [c["command_id"] for c in handed] == [first, second]  # oldest first
    assert handed[0]["packages"] == ["7zip.7zip"]
    sent_at = (await detail(client, tokens, first))["sent_at"]
    assert sorted(await events.commands()) == sorted([(first, "sent"), (second, "sent")])

    # The answer may have been lost: the next heartbeat hands them over again, and they are
    # marked sent once (the agent ignores an id it has seen).
    clock.advance(minutes=1)
    again = (await heartbeat(client, device))["commands"]
    assert [c["command_id"] for c in again] == [first, second]
    assert (await detail(client, tokens, first))["sent_at"] == sent_at
    assert await events.commands() == []

    await progress(client, device, first, 1)
    assert [c["command_id"] for c in (await heartbeat(client, device))["commands"]] == [second]
