"""The fragments of a device revoked while a page shows it: answered so that htmx swaps them
away (a row is deleted, a panel says the device is gone), instead of a 404 htmx ignores."""

import httpx
import pytest
from fastapi import FastAPI

from tests.console.helpers import csrf_token, login
from tests.support import create_api_token, create_secret, create_user, register_device

ABSENT = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
async def admin(app: FastAPI, client: httpx.AsyncClient) -> httpx.AsyncClient:
    await create_user(app)
    assert (await login(client)).status_code == 303
    return client


async def revoked_device(app: FastAPI, client: httpx.AsyncClient) -> str:
    device = await register_device(client, await create_secret(app), hostname="GONE-PC")
    token = await create_api_token(app, "admin")
    response = await client.post(
        f"/api/devices/{device.device_id}/revoke", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    return device.device_id


async def test_a_revoked_devices_row_is_deleted_and_its_list_told(app, admin):
    device_id = await revoked_device(app, admin)
    response = await admin.get(f"/devices/{device_id}/fragments/row")
    assert response.status_code == 200
    assert response.headers["HX-Reswap"] == "delete"
    assert response.headers["HX-Trigger"] == "lunaris:device-gone"
    assert response.text == ""
    assert "GONE-PC" not in (await admin.get("/devices")).text


async def test_a_revoked_devices_panels_say_it_is_gone_and_keep_listening(app, admin):
    device_id = await revoked_device(app, admin)
    overview = await admin.get(f"/devices/{device_id}/fragments/overview")
    assert overview.status_code == 200
    assert "This device is gone" in overview.text
    assert "GONE-PC" not in overview.text
    for fragment in ("overview", "updates", "history"):
        text = (await admin.get(f"/devices/{device_id}/fragments/{fragment}")).text
        assert f'id="device-{fragment}"' in text
        # Enrolled again, the device announces itself and the panel comes back.
        assert f'data-live="device:{device_id}"' in text
        assert f'data-live-src="/devices/{device_id}/fragments/{fragment}"' in text
        assert (" hidden" in text) == (fragment != "overview")
    page = await admin.get(f"/devices/{device_id}", headers={"Accept": "text/html"})
    assert page.status_code == 404


async def test_a_device_never_known_is_gone_too_and_a_malformed_id_is_not_found(admin):
    assert (await admin.get(f"/devices/{ABSENT}/fragments/row")).headers["HX-Reswap"] == "delete"
    malformed = await admin.get("/devices/not-a-uuid/fragments/row")
    assert malformed.status_code == 404
    assert "HX-Reswap" not in malformed.headers


async def test_a_revoked_devices_commands_panel_hides_and_keeps_listening(app, admin):
    device_id = await revoked_device(app, admin)
    panel = await admin.get(f"/devices/{device_id}/commands")
    assert panel.status_code == 200
    assert 'id="device-commands"' in panel.text
    assert " hidden" in panel.text
    assert f"device:{device_id}" in panel.text  # enrolled again, it comes back
    assert f'data-live-src="/devices/{device_id}/commands"' in panel.text


async def test_an_admin_revokes_and_forgets_a_device_from_its_page(app, admin, browser_client):
    device = await register_device(admin, await create_secret(app), hostname="OLD-PC")
    page = await admin.get(f"/devices/{device.device_id}")
    assert "Revoke and forget" in page.text
    token = csrf_token(page.text)
    assert (await admin.post(f"/devices/{device.device_id}/revoke")).status_code == 403  # CSRF

    await create_user(app, "vera", "vera's password", role="viewer")
    assert (await login(browser_client, "vera", "vera's password")).status_code == 303
    viewer_page = await browser_client.get(f"/devices/{device.device_id}")
    assert "Revoke and forget" not in viewer_page.text
    refused = await browser_client.post(
        f"/devices/{device.device_id}/revoke", data={"csrf_token": csrf_token(viewer_page.text)}
    )
    assert refused.status_code == 403

    revoked = await admin.post(f"/devices/{device.device_id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 303
    assert revoked.headers["location"] == "/devices"
    assert "OLD-PC" not in (await admin.get("/devices")).text
    heartbeat = await admin.post("/api/agent/heartbeat", headers=device.headers)
    assert heartbeat.status_code == 401
    api_token = await create_api_token(app, "admin")
    audit = await admin.get(
        "/api/audit?action=device.revoke", headers={"Authorization": f"Bearer {api_token}"}
    )
    assert [e["target"] for e in audit.json()["items"]] == [f"device:{device.device_id}"]
