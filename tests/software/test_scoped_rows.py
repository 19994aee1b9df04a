"""Rows in users' profiles (the agent's per-user scans): a package waiting, or installed,
for the machine and for two users is three rows that change apart; a user's row that goes
is that user's history; rows without a scope are the machine's; the API and the device's
pages say whose a row is."""

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from lunaris_server.software.models import DeviceSoftware
from lunaris_server.updates.models import DeviceUpdate, UpdateEvent
from tests.console.helpers import login
from tests.software.helpers import assert_counts_fresh, installed, report_list
from tests.support import (
    RegisteredDevice,
    app_state,
    create_secret,
    create_user,
    register_device,
    update_row,
)

ADA, BOB = "AzureAD\\ada", "AzureAD\\bob"


def for_user(row: dict[str, Any], user: str) -> dict[str, Any]:
    return {**row, "scope": "user", "user": user}


async def report(client: httpx.AsyncClient, device: RegisteredDevice, rows: list[dict]) -> dict:
    sent = await client.post(
        "/api/agent/update-report", json={"updates": rows}, headers=device.headers
    )
    assert sent.status_code == 200, sent.text
    answer: dict[str, Any] = sent.json()
    return answer


async def stored_updates(app: FastAPI, device_id: str) -> list[tuple[str, str, str, str]]:
    async with app_state(app).database.session() as session:
        rows = await session.scalars(
            select(DeviceUpdate).where(DeviceUpdate.device_id == device_id)
        )
        return sorted(
            (r.package_identifier, r.installed_version, r.scope, r.user_account) for r in rows
        )


async def events(app: FastAPI, device_id: str) -> list[tuple[str, str, object]]:
    async with app_state(app).database.session() as session:
        rows = await session.scalars(
            select(UpdateEvent).where(UpdateEvent.device_id == device_id).order_by(UpdateEvent.id)
        )
        return [(e.kind, e.from_version or "", (e.details or {}).get("user")) for e in rows]


async def test_a_waiting_update_for_the_machine_and_two_users_is_three_rows(app, client):
    device = await register_device(client, await create_secret(app))
    spotify = update_row("Spotify.Spotify", "1.2.40", "1.2.52", name="Spotify")
    first = await report(client, device, [spotify, for_user(spotify, ADA), for_user(spotify, BOB)])
    assert first["added"] == 3
    assert await stored_updates(app, device.device_id) == [
        ("Spotify.Spotify", "1.2.40", "machine", ""),
        ("Spotify.Spotify", "1.2.40", "user", ADA),
        ("Spotify.Spotify", "1.2.40", "user", BOB),
    ]
    # Ada updates hers, Bob's moves on a version: the machine's row is left alone.
    moved = update_row("Spotify.Spotify", "1.2.45", "1.2.52", name="Spotify")
    second = await report(client, device, [spotify, for_user(moved, BOB)])
    assert (second["removed"], second["changed"], second["unchanged"]) == (1, 1, 1)
    assert await stored_updates(app, device.device_id) == [
        ("Spotify.Spotify", "1.2.40", "machine", ""),
        ("Spotify.Spotify", "1.2.45", "user", BOB),
    ]
    history = await events(app, device.device_id)
    assert ("resolved", "1.2.40", ADA) in history
    assert ("version_changed", "1.2.45", BOB) in history
    assert next(e for e in history if e[0] == "detected")[2] is None  # the machine's: no user

    await create_user(app)
    assert (await login(client)).status_code == 303
    shown = await client.get(f"/api/devices/{device.device_id}/updates")
    assert shown.status_code == 200, shown.text
    assert sorted((u["scope"], u["user"]) for u in shown.json()["items"]) == [
        ("machine", None),
        ("user", BOB),
    ]
    page = (await client.get(f"/devices/{device.device_id}")).text
    assert page.count('data-scope="user"') == 1
    assert "for <bdi>AzureAD\\bob</bdi>" in page


async def test_an_app_installed_for_the_machine_and_a_user_is_two_rows(app, client):
    device = await register_device(client, await create_secret(app))
    vlc = installed("VideoLAN.VLC", "3.0.20", "VLC media player", source="winget")
    assert (await report_list(client, device, [vlc, for_user(vlc, ADA)]))["added"] == 2
    newer = installed("VideoLAN.VLC", "3.0.21", "VLC media player", source="winget")
    outcome = await report_list(client, device, [vlc, for_user(newer, ADA)])
    assert (outcome["changed"], outcome["unchanged"]) == (1, 1)
    async with app_state(app).database.session() as session:
        rows = await session.scalars(
            select(DeviceSoftware).where(DeviceSoftware.device_id == device.device_id)
        )
        assert sorted((r.version, r.scope, r.user_account) for r in rows) == [
            ("3.0.20", "machine", ""),
            ("3.0.21", "user", ADA),
        ]
    # The fleet counts a device once per app, and once per version it has.
    titles, versions = await assert_counts_fresh(app_state(app).database)
    assert titles["VideoLAN.VLC"] == 1
    assert versions[("VideoLAN.VLC", "3.0.21")] == 1

    await create_user(app)
    assert (await login(client)).status_code == 303
    listed = await client.get(f"/api/devices/{device.device_id}/software")
    assert sorted((s["scope"], s["user"]) for s in listed.json()["items"]) == [
        ("machine", None),
        ("user", ADA),
    ]
    page = (await client.get(f"/devices/{device.device_id}/installed")).text
    assert "for <bdi>AzureAD\\ada</bdi>" in page


async def test_an_apps_page_and_its_api_filter_by_where_it_is_installed(app, client):
    secret = await create_secret(app)
    vlc = installed("VideoLAN.VLC", "3.0.20", "VLC media player", source="winget")
    machine = await register_device(client, secret, hostname="PC-MACHINE")
    await report_list(client, machine, [vlc])
    profiles = await register_device(client, secret, hostname="PC-PROFILES")
    await report_list(client, profiles, [for_user(vlc, ADA), for_user(vlc, BOB)])
    await create_user(app)
    assert (await login(client)).status_code == 303

    def hosts(response: httpx.Response) -> list[tuple[str, str, str | None]]:
        assert response.status_code == 200, response.text
        return sorted((d["hostname"], d["scope"], d["user"]) for d in response.json()["items"])

    api = "/api/software/VideoLAN.VLC/devices"
    assert len(hosts(await client.get(api))) == 3
    assert hosts(await client.get(api, params={"scope": "user"})) == [
        ("PC-PROFILES", "user", ADA),
        ("PC-PROFILES", "user", BOB),
    ]
    only_machine = await client.get(api, params={"scope": "machine"})
    assert hosts(only_machine) == [("PC-MACHINE", "machine", None)]
    assert only_machine.json()["total"] == 1
    assert (await client.get(api, params={"scope": "everyone"})).status_code == 422

    page = await client.get("/software/VideoLAN.VLC", params={"scope": "user"})
    assert page.status_code == 200
    assert "PC-PROFILES" in page.text
    assert "PC-MACHINE" not in page.text
    assert 'data-total="2"' in page.text
    exported = await client.get("/software/VideoLAN.VLC/devices.csv", params={"scope": "user"})
    lines = exported.text.strip().splitlines()
    assert lines[0].endswith(",scope,user")
    assert len(lines) == 3
    assert all(",user,AzureAD\\" in line for line in lines[1:])
