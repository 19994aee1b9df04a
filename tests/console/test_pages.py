"""The console's pages over HTTP (in-process): status codes, login, CSRF, roles, CSV."""

import csv
import io
import re

import httpx
import pytest
from fastapi import FastAPI

from lunaris_server.console.paging import PER_PAGE
from tests.console.helpers import csrf_token, login, page_token
from tests.support import create_secret, create_user, register_device, update_row

PAGES = ["/", "/devices", "/updates", "/settings", "/settings/tokens"]
ADMIN_PAGES = ["/settings/users", "/settings/audit"]


async def fleet(app: FastAPI, client: httpx.AsyncClient) -> list[str]:
    """Three devices: two with updates (one of them also failed its last scan), one clean."""
    secret = await create_secret(app)
    berlin = await register_device(client, secret, hostname="BER-LAPTOP-01")
    munich = await register_device(client, secret, hostname="MUC-DESK-02")
    clean = await register_device(client, secret, hostname="=HYPERLINK(evil)")
    rows = [update_row("Git.Git", "2.46.2", "2.47.1"), update_row("7zip.7zip", "23.01", "24.08")]
    for device, updates in ((berlin, rows), (munich, rows[:1]), (clean, [])):
        response = await client.post(
            "/api/agent/update-report", json={"updates": updates}, headers=device.headers
        )
        assert response.status_code == 200
    failed = {"scan_error": {"code": "timeout", "message": "winget hung"}}
    await client.post("/api/agent/update-report", json=failed, headers=munich.headers)
    return [berlin.device_id, munich.device_id, clean.device_id]


@pytest.mark.parametrize("path", [*PAGES, *ADMIN_PAGES, "/devices.csv", "/updates.csv"])
async def test_logged_out_pages_redirect_to_login(client, path):
    response = await client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    htmx = await client.get(path, headers={"HX-Request": "true"})
    assert htmx.headers["HX-Redirect"].startswith("/login")


async def test_login_keeps_where_you_were_going_and_only_on_this_site(app, client):
    await create_user(app)
    response = await client.get("/devices?status=online")
    assert response.headers["location"] == "/login?next=%2Fdevices%3Fstatus%3Donline"
    page = await client.get(response.headers["location"])
    assert 'name="next" value="/devices?status=online"' in page.text
    token = csrf_token(page.text)
    form = {"username": "admin", "password": "correct horse", "csrf_token": token}
    ok = await client.post("/login", data={**form, "next": "//evil.example/x"})
    assert (ok.status_code, ok.headers["location"]) == (303, "/")
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie


async def test_a_wrong_password_shows_the_form_again(app, client):
    await create_user(app)
    response = await login(client, password="wrong password")
    assert response.status_code == 401
    assert "Wrong username or password" in response.text
    assert "lunaris_session" not in client.cookies
    assert (await client.get("/")).status_code == 303


async def test_login_without_csrf_token_is_refused(app, client):
    await create_user(app)
    await client.get("/login")
    response = await client.post("/login", data={"username": "admin", "password": "correct horse"})
    assert response.status_code == 403
    assert "lunaris_session" not in client.cookies


async def test_logout_ends_the_session(admin):
    token = await page_token(admin)
    response = await admin.post("/logout", data={"csrf_token": token})
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert (await admin.get("/")).status_code == 303


@pytest.mark.parametrize("path", [*PAGES, *ADMIN_PAGES])
async def test_every_page_renders_for_an_admin(app, admin, path):
    await fleet(app, admin)
    response = await admin.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text
    assert 'src="/static/htmx-2.0.11.min.js?v=' in response.text


async def test_empty_fleet_tells_a_new_admin_what_to_do(admin):
    for path in ("/", "/devices"):
        text = (await admin.get(path)).text
        assert "No devices yet" in text
        assert "Create an enrollment secret" in text
    assert "Nothing waiting" in (await admin.get("/updates")).text


async def test_dashboard_figures(app, admin):
    await fleet(app, admin)
    text = (await admin.get("/dashboard/stats")).text
    for stat, value in [
        ("devices", 3),
        ("online", 3),
        ("offline", 0),
        ("with_updates", 2),
        ("pending_updates", 3),
        ("scan_errors", 1),
    ]:
        assert f'data-stat="{stat}"' in text
        assert f'data-value="{value}"' in text.split(f'data-stat="{stat}"')[1].split("</a>")[0]
    charts = (await admin.get("/dashboard/charts")).text
    assert "<svg" in charts
    assert "/updates/devices?package=Git.Git&amp;source=winget" in charts


async def test_devices_search_filters_and_sort(app, admin):
    await fleet(app, admin)
    page = (await admin.get("/devices?q=ber")).text
    assert "BER-LAPTOP-01" in page
    assert "MUC-DESK-02" not in page
    fragment = await admin.get("/devices?q=muc", headers={"HX-Request": "true"})
    assert "<html" not in fragment.text
    assert 'id="devices-table"' in fragment.text
    assert "MUC-DESK-02" in fragment.text
    assert fragment.headers["vary"] == "HX-Request"
    errors = (await admin.get("/devices?has_scan_error=yes")).text
    assert ("MUC-DESK-02" in errors, "BER-LAPTOP-01" in errors) == (True, False)
    by_updates = (await admin.get("/devices?sort=-updates_count")).text
    assert by_updates.index("BER-LAPTOP-01") < by_updates.index("MUC-DESK-02")
    assert "No devices match" in (await admin.get("/devices?q=nothing-like-this")).text
    assert (await admin.get("/devices?sort=bogus")).status_code == 422


async def test_device_page_and_fragments(app, admin):
    berlin, munich, _ = await fleet(app, admin)
    page = (await admin.get(f"/devices/{berlin}")).text
    assert "BER-LAPTOP-01" in page
    assert "2.47.1" in page
    assert "Detected" in page  # the history timeline
    failed = (await admin.get(f"/devices/{munich}")).text
    assert "The last scan failed" in failed
    assert "winget hung" in failed
    for fragment in ("row", "overview", "updates", "history"):
        response = await admin.get(f"/devices/{berlin}/fragments/{fragment}")
        assert response.status_code == 200
        assert "<html" not in response.text
        assert f'data-live="device:{berlin}"' in response.text


async def test_unknown_pages_are_html_404s_and_the_api_keeps_json(admin):
    for path in (
        "/devices/00000000-0000-4000-8000-000000000000",
        "/devices/not-a-uuid",
        "/no-such-page",
    ):
        response = await admin.get(path, headers={"Accept": "text/html"})
        assert response.status_code == 404
        assert "Nothing here" in response.text
    api = await admin.get("/api/devices/00000000-0000-4000-8000-000000000000")
    assert api.json()["error"]["code"] == "not_found"
    asked_json = await admin.get("/no-such-page", headers={"Accept": "application/json"})
    assert asked_json.json()["error"]["code"] == "not_found"


async def test_updates_page_and_the_devices_waiting_for_one_package(app, admin):
    await fleet(app, admin)
    page = (await admin.get("/updates")).text
    assert "Git.Git" in page
    assert "7zip.7zip" in page
    assert "Git.Git" not in (await admin.get("/updates?q=7zip")).text
    waiting = (await admin.get("/updates/devices?package=Git.Git&source=winget")).text
    assert "BER-LAPTOP-01" in waiting
    assert "MUC-DESK-02" in waiting
    only_berlin = (await admin.get("/updates/devices?package=7zip.7zip&source=winget")).text
    assert "MUC-DESK-02" not in only_berlin


async def test_the_devices_waiting_for_a_package_are_paged_by_device(app, admin):
    secret = await create_secret(app)
    two_installs = [
        update_row("Git.Git", "2.31.0", "2.47.1"),
        update_row("Git.Git", "2.40.0", "2.47.1"),
    ]
    for n in range(PER_PAGE + 3):
        device = await register_device(admin, secret, hostname=f"PC-{n:03}")
        rows = two_installs if n == PER_PAGE - 1 else two_installs[:1]
        rows = [*rows, update_row("Local.Tool", "1.0", "1.1", source=None)] if n < 2 else rows
        response = await admin.post(
            "/api/agent/update-report", json={"updates": rows}, headers=device.headers
        )
        assert response.status_code == 200
    first = (await admin.get("/updates/devices?package=Git.Git&source=winget")).text
    assert f"{PER_PAGE + 3} devices waiting" in first
    hosts = re.findall(r'class="strong" href="/devices/[^"]+">([^<]+)<', first)
    # The last device of the page has two installs: both rows, and no device cut in half.
    assert hosts == [f"PC-{n:03}" for n in range(PER_PAGE)] + [f"PC-{PER_PAGE - 1:03}"]
    second = (await admin.get("/updates/devices?package=Git.Git&source=winget&page=2")).text
    assert re.findall(r'class="strong" href="/devices/[^"]+">([^<]+)<', second) == [
        f"PC-{n:03}" for n in range(PER_PAGE, PER_PAGE + 3)
    ]
    # No source: the table links without one, and the page finds the rows.
    no_source = (await admin.get("/updates/devices?package=Local.Tool")).text
    assert "2 devices waiting" in no_source
    assert '/updates/devices?package=Local.Tool"' in (await admin.get("/updates")).text


async def test_csv_exports_follow_the_filters_and_are_spreadsheet_safe(app, admin):
    await fleet(app, admin)
    response = await admin.get("/devices.csv?has_updates=no")
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["hostname"] for row in rows] == ["'=HYPERLINK(evil)"]
    everything = list(csv.DictReader(io.StringIO((await admin.get("/devices.csv")).text)))
    assert len(everything) == 3
    assert {r["hostname"]: r["updates"] for r in everything}["BER-LAPTOP-01"] == "2"
    updates = list(csv.DictReader(io.StringIO((await admin.get("/updates.csv")).text)))
    assert [(r["package_identifier"], r["devices"]) for r in updates] == [
        ("Git.Git", "2"),
        ("7zip.7zip", "1"),
    ]


async def test_a_viewer_reads_but_cannot_act(app, admin, viewer):
    await fleet(app, admin)
    for path in PAGES:
        assert (await viewer.get(path)).status_code == 200
    settings = (await viewer.get("/settings")).text
    assert "Create secret" not in settings
    assert "/settings/users" not in settings
    for path in ADMIN_PAGES:
        refused = await viewer.get(path)
        assert refused.status_code == 403
        assert "You are not allowed to do that" in refused.text
    token = await page_token(viewer)
    for path, form in [
        ("/settings/enrollment-secrets", {"name": "sneaky"}),
        ("/settings/users", {"username": "mallory", "password": "long enough", "role": "admin"}),
        ("/settings/users/1/disable", {}),
    ]:
        response = await viewer.post(path, data={**form, "csrf_token": token})
        assert response.status_code == 403
    assert "sneaky" not in (await admin.get("/settings")).text


async def test_console_posts_need_the_sessions_csrf_token(admin, viewer):
    missing = await admin.post("/settings/enrollment-secrets", data={"name": "x"})
    assert missing.status_code == 403
    someone_elses = await page_token(viewer)
    forged = await admin.post(
        "/settings/enrollment-secrets", data={"name": "x", "csrf_token": someone_elses}
    )
    assert forged.status_code == 403
    good = await admin.post(
        "/settings/enrollment-secrets",
        data={"name": "Berlin rollout", "max_uses": "50", "csrf_token": await page_token(admin)},
    )
    assert good.status_code == 303  # shown once on the page: test_post_redirect_get.py
    assert "Berlin rollout" in (await admin.get("/settings")).text
    header = await admin.post(
        "/settings/tokens",
        data={"name": "via header"},
        headers={"X-CSRF-Token": await page_token(admin)},
    )
    assert header.status_code == 303


async def test_enrollment_secret_revoke_and_bad_input(admin):
    token = await page_token(admin)
    bad = await admin.post(
        "/settings/enrollment-secrets", data={"name": "x", "max_uses": "0", "csrf_token": token}
    )
    assert bad.status_code == 422
    assert "Max uses must be" in bad.text
    await admin.post("/settings/enrollment-secrets", data={"name": "temp", "csrf_token": token})
    revoked = await admin.post("/settings/enrollment-secrets/1/revoke", data={"csrf_token": token})
    assert revoked.status_code == 303
    assert "revoked" in (await admin.get("/settings")).text


async def test_admin_rotates_an_enrollment_secret_from_settings(admin, viewer):
    token = await page_token(admin)
    first = await admin.post(
        "/settings/enrollment-secrets", data={"name": "Rollout", "csrf_token": token}
    )
    old_secret = re.search(r"lne_[A-Za-z0-9_-]+", (await admin.get(first.headers["location"])).text)
    assert old_secret
    refused = await viewer.post(
        "/settings/enrollment-secrets/1/rotate", data={"csrf_token": await page_token(viewer)}
    )
    assert refused.status_code == 403
    rotated = await admin.post("/settings/enrollment-secrets/1/rotate", data={"csrf_token": token})
    assert rotated.status_code == 303
    shown = (await admin.get(rotated.headers["location"])).text
    assert "shown only once" in shown
    new_secret = re.search(r"lne_[A-Za-z0-9_-]+", shown)
    assert new_secret
    assert new_secret.group() != old_secret.group()
    listed = (await admin.get("/settings")).text
    assert listed.count("Rollout") == 2
    assert "revoked" in listed
    again = await admin.post("/settings/enrollment-secrets/1/rotate", data={"csrf_token": token})
    assert again.status_code == 409
    assert "cannot be rotated" in again.text


async def test_admin_manages_users(admin, browser_client):
    token = await page_token(admin)
    added = await admin.post(
        "/settings/users",
        data={
            "username": "bob",
            "password": "bob's password",
            "role": "viewer",
            "csrf_token": token,
        },
    )
    assert added.status_code == 303
    duplicate = await admin.post(
        "/settings/users",
        data={"username": "bob", "password": "another one", "role": "viewer", "csrf_token": token},
    )
    assert duplicate.status_code == 409
    assert "already exists" in duplicate.text
    assert (await login(browser_client, "bob", "bob's password")).status_code == 303
    assert (await browser_client.get("/settings/users")).status_code == 403
    await admin.post("/settings/users/2/role", data={"role": "admin", "csrf_token": token})
    assert (await browser_client.get("/settings/users")).status_code == 200
    await admin.post("/settings/users/2/disable", data={"csrf_token": token})
    assert (await browser_client.get("/")).status_code == 303  # the session ended
    self_disable = await admin.post("/settings/users/1/disable", data={"csrf_token": token})
    assert self_disable.status_code == 409
    self_demote = await admin.post(
        "/settings/users/1/role", data={"role": "viewer", "csrf_token": token}
    )
    assert self_demote.status_code == 409
    await admin.post("/settings/users/2/enable", data={"csrf_token": token})
    assert (await login(browser_client, "bob", "bob's password")).status_code == 303
    audit = (await admin.get("/settings/audit")).text
    for action in ("user.add", "user.set_role", "user.disable", "user.enable"):
        assert action in audit


async def test_api_tokens_are_shown_once_and_can_be_revoked(admin):
    token = await page_token(admin)
    created = await admin.post("/settings/tokens", data={"name": "report", "csrf_token": token})
    shown = (await admin.get(created.headers["location"])).text
    plaintext = shown.split('id="new-token" class="copy-source secret">')[1].split("<")[0]
    assert plaintext.startswith("lna_")
    me = await admin.get("/api/auth/me", headers={"Authorization": f"Bearer {plaintext}"})
    assert me.status_code == 200
    assert plaintext not in (await admin.get("/settings/tokens")).text
    await admin.post("/settings/tokens/1/revoke", data={"csrf_token": token})
    me = await admin.get("/api/auth/me", headers={"Authorization": f"Bearer {plaintext}"})
    assert me.status_code == 401
    assert (
        await admin.post("/settings/tokens/99/revoke", data={"csrf_token": token})
    ).status_code == 404


async def test_agent_download_is_offered_once_built(app, admin, settings):
    page = (await admin.get("/settings")).text
    assert "infra/installer/build" in page
    assert "msiexec /i lunaris-agent.msi /qn API_URL=http://127.0.0.1:8000/api" in page
    downloads = settings.resolved_agent_downloads_dir
    downloads.mkdir(parents=True)
    (downloads / "lunaris-agent-0.1.0.msi").write_bytes(b"MSI")
    page = (await admin.get("/settings")).text
    assert 'href="/downloads/lunaris-agent-0.1.0.msi"' in page
    download = await admin.get("/downloads/lunaris-agent-0.1.0.msi")
    assert (download.status_code, download.content) == (200, b"MSI")
    assert (await admin.get("/downloads/..%2Fsecret_key")).status_code == 404


async def test_static_files_are_cacheable(client):
    response = await client.get("/static/app.css")
    assert response.status_code == 200
    assert "immutable" in response.headers["cache-control"]
    assert (await client.get("/static/htmx-2.0.11.min.js")).status_code == 200


async def test_an_id_beyond_any_row_is_a_clear_error_not_a_server_error(admin):
    token = await page_token(admin)
    huge = 2**63
    for path in (
        f"/settings/enrollment-secrets/{huge}/revoke",
        f"/settings/enrollment-secrets/{huge}/rotate",
        f"/settings/users/{huge}/disable",
        f"/settings/tokens/{huge}/revoke",
    ):
        response = await admin.post(path, data={"csrf_token": token})
        assert response.status_code == 400, path
        assert "cannot use" in response.text
