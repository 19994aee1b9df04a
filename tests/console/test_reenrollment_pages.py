"""The device page shows an agent asking to enroll the device again; an admin approves or
refuses it there, and revokes a device with or without leave to enroll again."""

import httpx
import pytest
from fastapi import FastAPI

from tests.console.helpers import login, page_token
from tests.support import create_secret, create_user, register_body


@pytest.fixture
async def admin(app: FastAPI, client: httpx.AsyncClient) -> httpx.AsyncClient:
    await create_user(app)
    assert (await login(client)).status_code == 303
    return client


async def enrolled_and_asked(app: FastAPI, http: httpx.AsyncClient) -> tuple[str, dict]:
    secret = await create_secret(app)
    body = register_body(secret, hostname="PC-REAL")
    token = (await http.post("/api/agent/register", json=body)).json()["device_token"]
    heartbeat = {"Authorization": f"Bearer {token}"}
    assert (await http.post("/api/agent/heartbeat", json={}, headers=heartbeat)).is_success
    asking = {**body, "hostname": "PC-REIMAGED", "registration_key": "new-pc"}
    assert (await http.post("/api/agent/register", json=asking)).status_code == 409
    return body["device_id"], asking


async def test_an_admin_approves_on_the_device_page(app, admin):
    device_id, asking = await enrolled_and_asked(app, admin)
    page = (await admin.get(f"/devices/{device_id}")).text
    assert "Asks to enroll again" in page
    assert "PC-REIMAGED" in page
    form = f'action="/devices/{device_id}/reenrollments/'
    start = page.index(form) + len(form)
    request_id = page[start : page.index("/", start)]
    token = await page_token(admin, f"/devices/{device_id}")
    decided = await admin.post(
        f"/devices/{device_id}/reenrollments/{request_id}/approve", data={"csrf_token": token}
    )
    assert (decided.status_code, decided.headers["location"]) == (303, f"/devices/{device_id}")
    after = (await admin.get(f"/devices/{device_id}")).text
    assert "Approved: waiting for the agent to come back" in after
    assert f"/reenrollments/{request_id}/approve" not in after
    admitted = await admin.post("/api/agent/register", json=asking)
    assert admitted.status_code == 200
    assert "Asks to enroll again" not in (await admin.get(f"/devices/{device_id}")).text


async def test_a_decision_needs_the_csrf_token(app, admin):
    device_id, _ = await enrolled_and_asked(app, admin)
    page = (await admin.get(f"/devices/{device_id}")).text
    form = f'action="/devices/{device_id}/reenrollments/'
    start = page.index(form) + len(form)
    request_id = page[start : page.index("/", start)]
    forged = await admin.post(f"/devices/{device_id}/reenrollments/{request_id}/approve")
    assert forged.status_code == 403
    assert "Asks to enroll again" in (await admin.get(f"/devices/{device_id}")).text


async def test_revoking_with_block_keeps_the_device_out(app, admin):
    secret = await create_secret(app)
    body = register_body(secret)
    assert (await admin.post("/api/agent/register", json=body)).is_success
    token = await page_token(admin, f"/devices/{body['device_id']}")
    revoked = await admin.post(
        f"/devices/{body['device_id']}/revoke", data={"csrf_token": token, "reenrollment": "block"}
    )
    assert revoked.status_code == 303
    refused = await admin.post("/api/agent/register", json=body)
    assert refused.status_code == 403
    bad = await admin.post(
        f"/devices/{body['device_id']}/revoke", data={"csrf_token": token, "reenrollment": "x"}
    )
    assert bad.status_code == 422
