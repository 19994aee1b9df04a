"""NUL, other control characters (Unicode Cc) and format characters (Cf: bidi overrides,
zero-width spaces) are refused in identifiers on every database: SQLite stored a NUL that
PostgreSQL refused, and an id that looks like another one is a way to fool an admin.
Display names may hold format characters; the pages isolate them (``<bdi>``)."""

import pytest
from sqlalchemy import func, select

from lunaris_server.updates.models import DeviceUpdate
from tests.support import (
    api_login,
    app_state,
    create_api_token,
    create_secret,
    create_user,
    register_body,
    register_device,
    update_row,
)

NUL, BELL, RLO, ZWSP = "\x00", "\x07", "\u202e", "\u200b"


async def stored_updates(app) -> int:
    async with app_state(app).database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(DeviceUpdate)) or 0)


@pytest.mark.parametrize(
    "row",
    [
        update_row(f"Git{NUL}Git"),
        update_row(f"{RLO}tiG.tiG"),
        update_row(f"Git{ZWSP}.Git"),
        update_row("Git.Git", installed=f"1.0{BELL}"),
        update_row("Git.Git", available=f"2.0{RLO}"),
        update_row("Git.Git", source=f"win{NUL}get"),
    ],
)
async def test_a_report_with_an_invisible_character_in_an_identifier_is_refused(app, client, row):
    device = await register_device(client, await create_secret(app))
    response = await client.post(
        "/api/agent/update-report", json={"updates": [row]}, headers=device.headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"
    assert await stored_updates(app) == 0


@pytest.mark.parametrize("hostname", [f"PC{NUL}1", f"PC-{RLO}1", f"PC{ZWSP}1", "PC\t1"])
async def test_registering_with_an_invisible_character_in_the_hostname_is_refused(
    app, client, hostname
):
    body = register_body(await create_secret(app), hostname=hostname)
    response = await client.post("/api/agent/register", json=body)
    assert response.status_code == 422, response.text


async def test_names_of_secrets_and_tokens_refuse_them_in_the_api(app, client):
    await create_user(app, "admin")
    api_token = await create_api_token(app, "admin")
    headers = {"Authorization": f"Bearer {api_token}"}
    for name in (f"Berlin{NUL}", f"Berlin{RLO}office", f"Ber{ZWSP}lin"):
        secret = await client.post("/api/enrollment-secrets", json={"name": name}, headers=headers)
        assert secret.status_code == 422, (name, secret.text)
        token = await client.post("/api/auth/tokens", json={"name": name}, headers=headers)
        assert token.status_code == 422, (name, token.text)
    listed = await client.get("/api/enrollment-secrets", headers=headers)
    assert listed.json() == []


async def test_names_of_secrets_refuse_them_in_the_console_too(app, client):
    from tests.console.helpers import login, page_token

    await create_user(app, "admin")
    await login(client)
    token = await page_token(client, "/settings")
    response = await client.post(
        "/settings/enrollment-secrets",
        data={"csrf_token": token, "name": f"Berlin{RLO}office"},
    )
    assert response.status_code in (400, 422), response.text
    await api_login(client)
    assert (await client.get("/api/enrollment-secrets")).json() == []


async def test_a_package_name_may_hold_a_bidi_override_and_is_shown_isolated(app, client):
    await create_user(app, "admin")
    device = await register_device(client, await create_secret(app))
    name = f"Files {RLO}exe.txt"
    report = await client.post(
        "/api/agent/update-report",
        json={"updates": [update_row("Vendor.Files", name=name)]},
        headers=device.headers,
    )
    assert report.status_code == 200, report.text
    await api_login(client)
    page = await client.get(f"/devices/{device.device_id}")
    assert f"<bdi>{name}</bdi>" in page.text
    fleet = await client.get("/updates")
    assert f"<bdi>{name}</bdi>" in fleet.text
