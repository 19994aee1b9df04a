"""The inventory's API: the fleet's apps, a version range evaluated by the database in
winget's order, the devices behind each figure, one device's list; bad input refused."""

import itertools

import pytest

from lunaris_server.core.versions import sort_key
from tests.server.test_versions import EQUAL, LESS
from tests.software.helpers import installed, report_list
from tests.support import api_login, create_secret, create_user, register_device

NOTEPAD = "Notepad++.Notepad++"


async def viewer(app, client):
    await create_user(app, "viewer", "viewer-password-1", role="viewer")
    await api_login(client, "viewer", "viewer-password-1")


async def fleet(app, client, versions):
    """One device per version of Notepad++, each with 7-Zip too."""
    secret = await create_secret(app)
    devices = []
    for n, version in enumerate(versions):
        device = await register_device(client, secret, hostname=f"PC-{n:03d}")
        await report_list(
            client,
            device,
            [
                installed(NOTEPAD, version, "Notepad++ (64-bit x64)", source="winget"),
                installed("7zip.7zip", "23.01", "7-Zip", source="winget"),
            ],
        )
        devices.append(device)
    return devices


async def test_the_fleet_list_counts_devices_and_versions(app, client):
    await fleet(app, client, ["8.6.2", "8.8", "8.8"])
    await viewer(app, client)
    response = await client.get("/api/software")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 2
    assert [(i["package_identifier"], i["devices"], i["versions"]) for i in body["items"]] == [
        ("7zip.7zip", 3, 1),
        (NOTEPAD, 3, 2),
    ]
    assert body["items"][0]["matching"] is None
    named = (await client.get("/api/software", params={"q": "notepad"})).json()
    assert [i["package_identifier"] for i in named["items"]] == [NOTEPAD]


async def test_a_range_counts_the_devices_inside_it(app, client):
    await fleet(app, client, ["8.6.2", "8.7.9", "Unknown", "< 8.6", "8.8", "8.8.0", "8.10"])
    await viewer(app, client)
    body = (await client.get("/api/software", params={"q": f"{NOTEPAD} < 8.8"})).json()
    assert [(i["package_identifier"], i["matching"], i["devices"]) for i in body["items"]] == [
        (NOTEPAD, 4, 7)
    ]
    devices = (
        await client.get(f"/api/software/{NOTEPAD}/devices", params={"version_lt": "8.8"})
    ).json()
    # Oldest first: winget calls Unknown older than any version, and "< 8.6" below 8.6.
    assert [d["version"] for d in devices["items"]] == ["Unknown", "< 8.6", "8.6.2", "8.7.9"]
    assert devices["total"] == 4
    at_most = (await client.get("/api/software", params={"q": "7zip.7zip <= 23.1"})).json()
    assert at_most["items"][0]["matching"] == 7  # 23.01 is 23.1 to winget


async def test_the_database_orders_versions_as_winget_does(app, client):
    versions = sorted({v for pair in LESS + EQUAL for v in pair if v.strip()})
    await fleet(app, client, versions)
    await viewer(app, client)
    for bound, comparison in itertools.product(["8.8", "1.0", "22.0.0", "latest"], ["lt", "gte"]):
        response = await client.get(
            f"/api/software/{NOTEPAD}/devices",
            params={f"version_{comparison}": bound, "limit": 500},
        )
        assert response.status_code == 200, response.text
        got = sorted(d["version"] for d in response.json()["items"])
        key = sort_key(bound)
        inside = [v for v in versions if (sort_key(v) < key) == (comparison == "lt")]
        assert got == sorted(inside), (bound, comparison)
    listed = (await client.get(f"/api/software/{NOTEPAD}/devices", params={"limit": 500})).json()[
        "items"
    ]
    assert [sort_key(d["version"]) for d in listed] == sorted(sort_key(v) for v in versions)


async def test_the_package_path_may_hold_spaces_and_slashes(app, client):
    device = await register_device(client, await create_secret(app))
    await report_list(client, device, [installed("ARP/Machine/X64/Adobe AIR", "32.0")])
    await viewer(app, client)
    response = await client.get("/api/software/ARP/Machine/X64/Adobe AIR/devices")
    assert response.status_code == 200, response.text
    assert response.json()["items"][0]["device_id"] == device.device_id


async def test_one_devices_installed_list(app, client):
    [device] = await fleet(app, client, ["8.6.2"])
    await viewer(app, client)
    body = (await client.get(f"/api/devices/{device.device_id}/software")).json()
    assert [i["package_identifier"] for i in body["items"]] == ["7zip.7zip", NOTEPAD]
    assert body["reported_at"] is not None
    missing = await client.get("/api/devices/00000000-0000-4000-8000-000000000000/software")
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": "< 8.8"}, "name a package"),
        ({"q": "Notepad++ < 8.8 and more"}, "not a version comparison"),
        ({"q": "Notepad++ ~ 8"}, None),
        ({"q": "x" * 257}, None),
        ({"limit": 0}, None),
        ({"colour": "red"}, None),
    ],
)
async def test_bad_searches_are_refused_clearly(app, client, params, message):
    await fleet(app, client, ["8.6.2"])
    await viewer(app, client)
    response = await client.get("/api/software", params=params)
    if params == {"q": "Notepad++ ~ 8"}:
        # No comparison at all: a plain search for a name containing it, not an error.
        assert response.status_code == 200
        assert response.json()["items"] == []
        return
    assert response.status_code == 422, response.text
    if message:
        assert message in response.text


async def test_an_unknown_package_and_bad_bounds(app, client):
    await fleet(app, client, ["8.6.2"])
    await viewer(app, client)
    assert (await client.get("/api/software/Nobody.Nothing/devices")).status_code == 404
    bad = await client.get(f"/api/software/{NOTEPAD}/devices", params={"version_lt": ""})
    assert bad.status_code == 422
    unknown = await client.get(f"/api/software/{NOTEPAD}/devices", params={"version_below": "8"})
    assert unknown.status_code == 422


async def test_the_api_needs_a_login(client):
    assert (await client.get("/api/software")).status_code == 401
