"""The console's software pages: the fleet's apps with a range, one app's versions and
devices, a device's Installed tab, and their CSV (streamed, ISO times, formulas defused)."""

import csv
import io

from tests.console.helpers import login as console_login
from tests.software.helpers import installed, report_list
from tests.support import create_secret, create_user, register_device

NOTEPAD = "Notepad++.Notepad++"


async def login(client, app, role="viewer"):
    await create_user(app, "someone", "someone-password-1", role=role)
    response = await console_login(client, "someone", "someone-password-1")
    assert response.status_code in (302, 303), response.text


async def seed(app, client):
    secret = await create_secret(app)
    devices = []
    for n, version in enumerate(["8.6.2", "8.7.9", "8.8", "Unknown"]):
        device = await register_device(client, secret, hostname=f"PC-{n}")
        rows = [installed(NOTEPAD, version, "Notepad++ (64-bit x64)", source="winget")]
        if n == 0:
            rows.append(installed("=cmd|' /C calc'!A0", "1.0", '=HYPERLINK("x")'))
        await report_list(client, device, rows)
        devices.append(device)
    return devices


async def test_the_software_page_lists_apps_and_a_range(app, client):
    await seed(app, client)
    await login(client, app)
    page = await client.get("/software")
    assert page.status_code == 200
    assert "Notepad++ (64-bit x64)" in page.text
    assert 'href="/software" aria-current="page"' in page.text
    ranged = await client.get("/software", params={"q": f"{NOTEPAD} < 8.8"})
    assert ranged.status_code == 200
    assert "Devices in range" in ranged.text
    # Three of four: 8.6.2, 8.7.9 and Unknown (older than any version to winget).
    assert f'href="/software/{NOTEPAD.replace("+", "%2B")}?version_lt=8.8">3</a>' in ranged.text


async def test_a_search_that_cannot_be_read_says_why(app, client):
    await seed(app, client)
    await login(client, app)
    page = await client.get("/software", params={"q": "Notepad++ <"})
    assert page.status_code == 200
    assert "That search cannot be read" in page.text
    assert "not a version comparison" in page.text


async def test_an_apps_page_shows_its_versions_and_the_devices_in_a_range(app, client):
    await seed(app, client)
    await login(client, app)
    page = await client.get(f"/software/{NOTEPAD}", params={"version_lt": "8.8"})
    assert page.status_code == 200, page.text
    assert "3 installs with a version <span hx-disable>&lt; 8.8</span>" in page.text
    assert page.text.index("PC-3") < page.text.index("PC-0") < page.text.index("PC-1")
    assert "PC-2" not in page.text.split('id="app-devices"')[1]
    assert (await client.get("/software/Nobody.Nothing")).status_code == 404


async def test_a_devices_installed_tab(app, client):
    devices = await seed(app, client)
    await login(client, app)
    page = await client.get(f"/devices/{devices[0].device_id}/installed")
    assert page.status_code == 200
    assert "2 apps" in page.text
    assert 'aria-current="page">Installed</a>' in page.text
    detail = await client.get(f"/devices/{devices[0].device_id}")
    assert f'href="/devices/{devices[0].device_id}/installed"' in detail.text


async def test_csv_exports_stream_iso_times_and_defuse_formulas(app, client):
    devices = await seed(app, client)
    await login(client, app)
    fleet = await client.get("/software.csv", params={"q": f"{NOTEPAD} < 8.8"})
    assert fleet.status_code == 200
    assert fleet.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(fleet.text)))
    assert rows[0] == ["package_identifier", "name", "devices", "versions", "devices_in_range"]
    assert rows[1] == [NOTEPAD, "Notepad++ (64-bit x64)", "4", "4", "3"]
    app_devices = list(
        csv.reader(io.StringIO((await client.get(f"/software/{NOTEPAD}/devices.csv")).text))
    )
    assert [row[2] for row in app_devices[1:]] == ["Unknown", "8.6.2", "8.7.9", "8.8"]
    assert app_devices[1][5].endswith("Z")
    device = list(
        csv.reader(
            io.StringIO((await client.get(f"/devices/{devices[0].device_id}/installed.csv")).text)
        )
    )
    names = [row[1] for row in device[1:]]
    assert '\'=HYPERLINK("x")' in names  # shown as text, never run as a formula


async def test_the_pages_need_a_login(client):
    for path in ("/software", "/software.csv", f"/software/{NOTEPAD}"):
        response = await client.get(path)
        assert response.status_code in (302, 303, 401), path


async def test_the_device_history_shows_what_was_installed_and_removed(app, client):
    [first, *_] = await seed(app, client)
    await report_list(
        client,
        first,
        [
            installed(NOTEPAD, "8.8", "Notepad++ (64-bit x64)", source="winget"),
            installed("Git.Git", "2.47.1", "Git", source="winget"),
        ],
    )
    await login(client, app)
    history = (await client.get(f"/devices/{first.device_id}/fragments/history")).text
    assert "Software installed" in history
    assert "version 2.47.1" in history
    assert "Software version changed" in history
    assert "8.6.2 → 8.8" in history
    assert "Software removed" in history


async def test_the_software_page_counts_up_to_a_limit(app, client, monkeypatch):
    from lunaris_server.software import views

    monkeypatch.setattr(views, "COUNTED_UP_TO", 2)
    await seed(app, client)  # three titles: Notepad++, the formula one, and none more
    device = await register_device(client, await create_secret(app, name="more"))
    await report_list(client, device, [installed("Git.Git", "2.47.1")])
    await login(client, app)
    page = await client.get("/software")
    assert "More than 2 apps" in page.text
    api = await client.get("/api/software")
    assert api.json()["total"] == 3  # the API counts every one
