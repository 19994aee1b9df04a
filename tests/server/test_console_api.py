"""The console JSON API: authentication, roles, device lists and the fleet view."""

import pytest

from lunaris_server.devices.last_seen import LastSeenWriter
from tests.support import (
    api_login,
    app_state,
    create_api_token,
    create_secret,
    create_user,
    register_device,
    update_row,
)


async def login(client, username="admin", password="correct horse"):
    return await api_login(client, username, password)


async def report(client, device, rows):
    response = await client.post(
        "/api/agent/update-report", json={"updates": rows}, headers=device.headers
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "path",
    ["/api/devices", "/api/updates", "/api/auth/me", "/api/audit", "/api/enrollment-secrets"],
)
async def test_console_api_needs_authentication(client, path):
    response = await client.get(path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


async def test_login_sets_http_only_cookie_and_logout_clears_it(app, client):
    await create_user(app)
    response = await login(client)
    cookie = response.headers["set-cookie"]
    assert "lunaris_session=" in cookie
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    assert (await client.get("/api/auth/me")).json()["username"] == "admin"
    assert (await client.post("/api/auth/logout")).status_code == 204
    assert (await client.get("/api/auth/me")).status_code == 401


async def test_wrong_password_and_unknown_user_are_refused_alike(app, client):
    await create_user(app)
    wrong = await client.post("/api/auth/login", json={"username": "admin", "password": "nope"})
    unknown = await client.post("/api/auth/login", json={"username": "ghost", "password": "x"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert "set-cookie" not in wrong.headers
    # Failed logins are audited.
    await login(client)
    audit = (await client.get("/api/audit", params={"action": "auth.login_failed"})).json()
    assert audit["total"] == 2


async def test_tampered_cookie_is_refused(app, client):
    await create_user(app)
    await login(client)
    value = client.cookies["lunaris_session"]
    client.cookies.set("lunaris_session", value[:-2] + ("A" if value[-1] != "A" else "B") + "x")
    assert (await client.get("/api/auth/me")).status_code == 401


async def test_session_expires(app, client, clock):
    await create_user(app)
    await login(client)
    clock.advance(hours=11, minutes=59)
    assert (await client.get("/api/auth/me")).status_code == 200
    clock.advance(minutes=2)
    response = await client.get("/api/auth/me")
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


async def test_viewer_reads_but_cannot_act(app, client):
    await create_user(app, "viewer", "viewer-password", role="viewer")
    await login(client, "viewer", "viewer-password")
    assert (await client.get("/api/devices")).status_code == 200
    response = await client.post("/api/enrollment-secrets", json={"name": "x"})
    assert response.status_code == 403
    assert (await client.get("/api/audit")).status_code == 403


async def test_api_token_authenticates_as_its_user(app, client):
    await create_user(app)
    token = await create_api_token(app, "admin")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/devices", headers=headers)).status_code == 200
    assert (await client.get("/api/auth/me", headers=headers)).json()["username"] == "admin"
    bad = {"Authorization": "Bearer lna_wrong"}
    assert (await client.get("/api/devices", headers=bad)).status_code == 401


async def test_device_token_is_not_a_console_token(app, client):
    secret = await create_secret(app)
    device = await register_device(client, secret)
    assert (await client.get("/api/devices", headers=device.headers)).status_code == 401


async def fleet(app, client, clock):
    """Five devices: two offline, three with updates, one with a scan error."""
    secret = await create_secret(app)
    devices = {}
    for name in ("alpha", "bravo", "charlie", "delta", "echo"):
        devices[name] = await register_device(client, secret, hostname=f"PC-{name.upper()}")
    await report(
        client,
        devices["alpha"],
        [update_row("Git.Git", "2.31.0", "2.33.0"), update_row("7zip.7zip", "19.00", "23.01")],
    )
    await report(client, devices["bravo"], [update_row("Git.Git", "2.32.0", "2.34.1")])
    await report(client, devices["charlie"], [update_row("Git.Git", "2.31.0", "2.9.9")])
    await client.post(
        "/api/agent/update-report",
        json={"updates": [], "scan_error": {"code": "0x8A15000F", "message": "source missing"}},
        headers=devices["echo"].headers,
    )
    # delta and echo go quiet; the others keep heartbeating.
    clock.advance(minutes=10)
    for name in ("alpha", "bravo", "charlie"):
        await client.post("/api/agent/heartbeat", json={}, headers=devices[name].headers)
    await app_state(app).part(LastSeenWriter).flush()
    await create_user(app)
    await login(client)
    return devices


async def test_device_list_status_filters_and_counts(app, client, clock):
    await fleet(app, client, clock)
    page = (await client.get("/api/devices")).json()
    assert page["total"] == 5
    assert [d["hostname"] for d in page["items"]] == [
        "PC-ALPHA",
        "PC-BRAVO",
        "PC-CHARLIE",
        "PC-DELTA",
        "PC-ECHO",
    ]
    by_host = {d["hostname"]: d for d in page["items"]}
    assert by_host["PC-ALPHA"]["status"] == "online"
    assert by_host["PC-DELTA"]["status"] == "offline"
    assert by_host["PC-ALPHA"]["updates_count"] == 2
    assert by_host["PC-ECHO"]["scan_error"]["code"] == "0x8A15000F"
    assert set(by_host["PC-ALPHA"]) >= {
        "id",
        "hostname",
        "os_version",
        "agent_version",
        "status",
        "last_seen_at",
        "updates_count",
    }

    async def hosts(**params):
        body = (await client.get("/api/devices", params=params)).json()
        return [d["hostname"] for d in body["items"]], body["total"]

    assert await hosts(status="offline") == (["PC-DELTA", "PC-ECHO"], 2)
    assert await hosts(status="online", has_updates="true") == (
        ["PC-ALPHA", "PC-BRAVO", "PC-CHARLIE"],
        3,
    )
    # DELTA never reported and ECHO's only scan failed: neither is up to date, nor scanned.
    assert await hosts(has_updates="false") == ([], 0)
    assert await hosts(scanned="false") == (["PC-DELTA", "PC-ECHO"], 2)
    assert await hosts(scanned="true") == (["PC-ALPHA", "PC-BRAVO", "PC-CHARLIE"], 3)
    assert await hosts(has_scan_error="true") == (["PC-ECHO"], 1)
    assert await hosts(q="cha") == (["PC-CHARLIE"], 1)
    assert await hosts(q="pc-") == (
        ["PC-ALPHA", "PC-BRAVO", "PC-CHARLIE", "PC-DELTA", "PC-ECHO"],
        5,
    )
    assert await hosts(q="%") == ([], 0)


async def test_device_search_by_id_prefix(app, client, clock):
    devices = await fleet(app, client, clock)
    prefix = devices["bravo"].device_id[:8]
    body = (await client.get("/api/devices", params={"q": prefix})).json()
    assert [d["id"] for d in body["items"]] == [devices["bravo"].device_id]


async def test_device_list_sorts_and_paginates_without_overlap(app, client, clock):
    await fleet(app, client, clock)
    body = (await client.get("/api/devices", params={"sort": "-updates_count"})).json()
    counts = [d["updates_count"] for d in body["items"]]
    assert counts == sorted(counts, reverse=True)
    assert body["items"][0]["hostname"] == "PC-ALPHA"

    seen = []
    for offset in range(0, 5, 2):
        page = (
            await client.get(
                "/api/devices", params={"limit": 2, "offset": offset, "sort": "status"}
            )
        ).json()
        assert page["total"] == 5
        assert (page["limit"], page["offset"]) == (2, offset)
        seen += [d["id"] for d in page["items"]]
    assert len(seen) == len(set(seen)) == 5

    bad = await client.get("/api/devices", params={"sort": "password"})
    assert bad.status_code == 422
    assert "cannot sort devices" in bad.json()["error"]["message"]
    assert (await client.get("/api/devices", params={"limit": 0})).status_code == 422
    assert (await client.get("/api/devices", params={"limit": 501})).status_code == 422
    assert (await client.get("/api/devices", params={"status": "asleep"})).status_code == 422


async def test_fleet_updates_aggregate_across_devices(app, client, clock):
    await fleet(app, client, clock)
    body = (await client.get("/api/updates")).json()
    assert body["total"] == 2
    git, seven_zip = body["items"]
    assert git["package_identifier"] == "Git.Git"
    assert git["devices"] == 3
    assert git["installed_versions"] == ["2.32.0", "2.31.0"]
    # Version order, not string order: 2.34.1 > 2.9.9.
    assert git["available_version"] == "2.34.1"
    assert (seven_zip["package_identifier"], seven_zip["devices"]) == ("7zip.7zip", 1)

    filtered = (await client.get("/api/updates", params={"q": "7zip"})).json()
    assert [i["package_identifier"] for i in filtered["items"]] == ["7zip.7zip"]
    by_name = (await client.get("/api/updates", params={"sort": "package_identifier"})).json()
    assert [i["package_identifier"] for i in by_name["items"]] == ["7zip.7zip", "Git.Git"]
    paged = (await client.get("/api/updates", params={"limit": 1, "offset": 1})).json()
    assert (paged["total"], [i["package_identifier"] for i in paged["items"]]) == (2, ["7zip.7zip"])
    assert (await client.get("/api/updates", params={"source": "msstore"})).json()["total"] == 0


async def test_device_detail_updates_and_history(app, client, clock):
    devices = await fleet(app, client, clock)
    alpha = devices["alpha"]
    detail = (await client.get(f"/api/devices/{alpha.device_id}")).json()
    assert (detail["hostname"], detail["updates_count"]) == ("PC-ALPHA", 2)
    updates = (await client.get(f"/api/devices/{alpha.device_id}/updates")).json()
    assert [u["package_identifier"] for u in updates["items"]] == ["7zip.7zip", "Git.Git"]
    await report(client, alpha, [update_row("Git.Git", "2.31.0", "2.33.0")])
    history = (await client.get(f"/api/devices/{alpha.device_id}/events")).json()
    assert history["total"] == 3
    assert history["items"][0]["kind"] == "resolved"
    assert history["items"][0]["package_identifier"] == "7zip.7zip"
    assert (await client.get("/api/devices/not-a-uuid")).status_code == 422


async def test_an_admin_revokes_a_device(app, client, clock):
    devices = await fleet(app, client, clock)
    alpha = devices["alpha"]
    await create_user(app, "vera", "viewer password", role="viewer")
    await login(client, "vera", "viewer password")
    assert (await client.post(f"/api/devices/{alpha.device_id}/revoke")).status_code == 403
    await login(client)
    response = await client.post(f"/api/devices/{alpha.device_id}/revoke")
    assert response.status_code == 200
    assert response.json()["hostname"] == "PC-ALPHA"
    listed = (await client.get("/api/devices")).json()
    assert alpha.device_id not in [d["id"] for d in listed["items"]]
    assert (await client.get(f"/api/devices/{alpha.device_id}")).status_code == 404
    # Its updates leave the fleet figures; its token no longer works.
    git = (await client.get("/api/updates", params={"q": "Git.Git"})).json()["items"][0]
    assert git["devices"] == 2
    heartbeat = await client.post("/api/agent/heartbeat", json={}, headers=alpha.headers)
    assert heartbeat.status_code == 401
    audit = (await client.get("/api/audit")).json()["items"]
    assert audit[0]["action"] == "device.revoke"
    missing = "/api/devices/00000000-0000-4000-8000-000000000000/revoke"
    assert (await client.post(missing)).status_code == 404
