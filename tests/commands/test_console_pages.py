"""Remote actions in the console's pages (in-process): the buttons admins get and viewers do
not, the forms (CSRF, roles, audit, the same checks as the JSON API), cancel, the package-wide
run with its confirmation, and the commands list's filters and pages."""

import re
from collections.abc import AsyncIterator
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from lunaris_server.console.paging import PER_PAGE
from tests.commands.helpers import Events, Tokens, enrolled, heartbeat, progress, result
from tests.console.helpers import csrf_token, login
from tests.support import FakeClock, update_row

HTMX = {"HX-Request": "true"}


async def console_client(app: FastAPI, username: str, password: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    assert (await login(http, username, password)).status_code == 303
    return http


@pytest.fixture
async def admin(app: FastAPI, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    http = await console_client(app, "admin", "correct horse")
    yield http
    await http.aclose()


@pytest.fixture
async def viewer(app: FastAPI, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    http = await console_client(app, "viewer", "viewer password")
    yield http
    await http.aclose()


async def token_for(http: httpx.AsyncClient, path: str = "/commands") -> str:
    return csrf_token((await http.get(path)).text)


async def api_commands(client: httpx.AsyncClient, tokens: Tokens, **params: str) -> dict:
    response = await client.get("/api/commands", params=params, headers=tokens.admin)
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


async def audit_actions(client: httpx.AsyncClient, tokens: Tokens) -> list[str]:
    response = await client.get("/api/audit", headers=tokens.admin, params={"limit": 500})
    return [entry["action"] for entry in response.json()["items"]]


async def with_truncated_row(client: httpx.AsyncClient, secret: str, hostname: str = "PC-0001"):
    """A device waiting for Git.Git and 7zip.7zip, and one update winget cut short."""
    device = await enrolled(client, secret, [], hostname=hostname)
    report = {
        "updates": [
            update_row("Git.Git"),
            update_row("7zip.7zip"),
            update_row("Microsoft.VisualStudio…", truncated=True),
        ]
    }
    response = await client.post("/api/agent/update-report", json=report, headers=device.headers)
    assert response.status_code == 200, response.text
    return device


def run_forms(html: str) -> list[str]:
    """The packages of the per-package Update buttons on a device's page."""
    return re.findall(r'name="package" value="([^"]+)"[^>]*>\s*<button[^>]*>Update</button>', html)


async def test_admins_get_the_update_buttons_and_viewers_do_not(client, admin, viewer, secret):
    device = await with_truncated_row(client, secret)
    page = f"/devices/{device.device_id}"

    admin_page = (await admin.get(page)).text
    assert 'id="device-commands"' in admin_page
    assert f'data-live="device-commands:{device.device_id}"' in admin_page
    assert ">Update all</button>" in admin_page
    # Not the one winget cut short: it can never be installed by id.
    assert sorted(run_forms(admin_page)) == ["7zip.7zip", "Git.Git"]
    assert "No commands yet." in admin_page

    viewer_page = (await viewer.get(page)).text
    assert 'id="device-commands"' in viewer_page
    assert "Update all" not in viewer_page.replace("<strong>Update all</strong>", "")
    assert run_forms(viewer_page) == []
    assert f'action="/devices/{device.device_id}/commands"' not in viewer_page

    for path in ("/updates", "/updates/devices?package=Git.Git&source=winget"):
        admin_html = (await admin.get(path)).text
        assert 'action="/updates/run"' in admin_html
        assert "Update on 1 device" in admin_html
        # The drill-down asks in the browser, saying what installs where; the fleet's list
        # (no offline count per row) posts to the page that asks the same.
        asks_here = 'hx-confirm="Install Git 2.0 on 1 device."' in admin_html
        assert asks_here == ("package=" in path)
        viewer_html = (await viewer.get(path)).text
        assert 'action="/updates/run"' not in viewer_html
    fleet = (await admin.get("/updates")).text
    assert 'value="Microsoft.VisualStudio…"' not in fleet  # no run button for a cut id


async def test_viewers_are_refused_and_nothing_is_queued(client, admin, viewer, tokens, secret):
    device = await enrolled(client, secret, ["Git.Git"])
    queued = await client.post(
        f"/api/devices/{device.device_id}/commands",
        json={"kind": "RUN_UPDATES", "packages": None},
        headers=tokens.admin,
    )
    command_id = queued.json()["id"]
    token = await token_for(viewer)  # a valid token: the role is what refuses
    attempts = [
        (f"/devices/{device.device_id}/commands", {"all": "yes"}),
        (f"/devices/{device.device_id}/commands", {"package": "Git.Git"}),
        (f"/commands/{command_id}/cancel", {"view": "list"}),
        ("/updates/run", {"package": "Git.Git", "confirmed": "yes"}),
    ]
    for path, form in attempts:
        for headers in ({}, HTMX):
            response = await viewer.post(path, data={**form, "csrf_token": token}, headers=headers)
            assert response.status_code == 403, (path, response.text)
    assert "You are not allowed to do that" in response.text
    listed = await api_commands(client, tokens)
    assert [(c["id"], c["status"]) for c in listed["items"]] == [(command_id, "queued")]
    # Viewers read: the list and the panels.
    assert command_id in (await viewer.get("/commands")).text
    assert command_id in (await viewer.get(f"/devices/{device.device_id}/commands")).text


async def test_a_post_without_the_csrf_token_is_refused(client, admin, viewer, tokens, secret):
    device = await enrolled(client, secret, ["Git.Git"])
    other_session = await token_for(viewer)  # valid, but for another session
    for data in ({"all": "yes"}, {"all": "yes", "csrf_token": other_session}):
        response = await admin.post(f"/devices/{device.device_id}/commands", data=data)
        assert response.status_code == 403
    missing = await admin.post("/updates/run", data={"package": "Git.Git", "confirmed": "yes"})
    assert missing.status_code == 403
    assert (await api_commands(client, tokens))["total"] == 0
    assert "command.create" not in await audit_actions(client, tokens)


async def test_update_all_from_the_device_page_queues_and_audits(
    client, admin, tokens, secret, events: Events
):
    device = await enrolled(client, secret, ["Git.Git", "7zip.7zip"])
    await events.drain()
    token = await token_for(admin, f"/devices/{device.device_id}")
    response = await admin.post(
        f"/devices/{device.device_id}/commands", data={"all": "yes", "csrf_token": token}
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/devices/{device.device_id}#device-commands"

    listed = (await api_commands(client, tokens))["items"]
    assert len(listed) == 1
    command = listed[0]
    assert (command["packages"], command["status"]) == (None, "queued")
    assert command["created_by"] == "user:admin"
    assert await events.commands() == [(command["id"], "queued")]
    audit = await client.get("/api/audit", headers=tokens.admin, params={"limit": 5})
    entry = audit.json()["items"][0]
    assert entry["action"] == "command.create"
    assert entry["details"]["command_id"] == command["id"]
    assert entry["details"]["packages"] is None

    page = (await admin.get(f"/devices/{device.device_id}")).text
    panel = page.split('id="device-commands"')[1]
    assert f'data-command="{command["id"]}" data-status="queued"' in panel
    assert "All updates" in panel
    assert f'action="/commands/{command["id"]}/cancel"' in panel
    # The agent is handed it at its next heartbeat, as one from the JSON API.
    assert [c["command_id"] for c in (await heartbeat(client, device))["commands"]] == [
        command["id"]
    ]


async def test_one_package_from_the_updates_table_answers_htmx_with_the_panel(
    client, admin, tokens, secret
):
    device = await with_truncated_row(client, secret)
    token = await token_for(admin, f"/devices/{device.device_id}")
    path = f"/devices/{device.device_id}/commands"
    response = await admin.post(
        path, data={"package": "7zip.7zip", "csrf_token": token}, headers=HTMX
    )
    assert response.status_code == 200
    assert "<html" not in response.text
    assert response.text.lstrip().startswith('<section id="device-commands"')
    assert "<code hx-disable>7zip.7zip</code>" in response.text
    assert 'data-status="queued"' in response.text
    items = (await api_commands(client, tokens))["items"]
    assert [c["packages"] for c in items] == [["7zip.7zip"]]

    # Refused like the JSON API: the panel tells why (htmx only swaps a 2xx answer) ...
    cut = await admin.post(
        path, data={"package": "Microsoft.VisualStudio…", "csrf_token": token}, headers=HTMX
    )
    assert cut.status_code == 200
    assert 'class="alert error"' in cut.text
    assert "cut short" in unescape(cut.text)
    # ... and a plain form post gets the error page with the status.
    stale = await admin.post(path, data={"package": "Not.Waiting", "csrf_token": token})
    assert stale.status_code == 422
    assert "not updates this device reports" in stale.text
    nothing = await admin.post(path, data={"csrf_token": token})
    assert nothing.status_code == 422
    assert (await api_commands(client, tokens))["total"] == 1


async def test_cancel_from_the_panel_and_from_the_list(client, admin, tokens, secret):
    device = await enrolled(client, secret, ["Git.Git", "7zip.7zip"])
    token = await token_for(admin, f"/devices/{device.device_id}")
    path = f"/devices/{device.device_id}/commands"
    for package in ("Git.Git", "7zip.7zip"):
        await admin.post(path, data={"package": package, "csrf_token": token})
    git, zip_ = sorted(
        (await api_commands(client, tokens))["items"], key=lambda c: c["packages"][0]
    )

    panel = await admin.post(
        f"/commands/{git['id']}/cancel", data={"view": "device", "csrf_token": token}, headers=HTMX
    )
    assert panel.status_code == 200
    assert 'id="device-commands"' in panel.text
    assert f'data-command="{git["id"]}" data-status="cancelled"' in panel.text
    assert "cancelled by user:admin" in panel.text
    assert f'action="/commands/{git["id"]}/cancel"' not in panel.text

    row = await admin.post(
        f"/commands/{zip_['id']}/cancel", data={"view": "list", "csrf_token": token}, headers=HTMX
    )
    assert row.status_code == 200
    assert row.text.lstrip().startswith(f'<tr id="command-{zip_["id"]}"')
    assert 'data-status="cancelled"' in row.text
    statuses = {c["id"]: c["status"] for c in (await api_commands(client, tokens))["items"]}
    assert statuses == {git["id"]: "cancelled", zip_["id"]: "cancelled"}
    assert (await audit_actions(client, tokens)).count("command.cancel") == 2

    # Once handed to the agent it can no longer be withdrawn: said in place, or as a page.
    await admin.post(path, data={"all": "yes", "csrf_token": token})
    await heartbeat(client, device)
    sent = (await api_commands(client, tokens, status="sent"))["items"][0]
    plain = await admin.post(
        f"/commands/{sent['id']}/cancel", data={"view": "device", "csrf_token": token}
    )
    assert plain.status_code == 409
    swapped = await admin.post(
        f"/commands/{sent['id']}/cancel", data={"view": "list", "csrf_token": token}, headers=HTMX
    )
    assert swapped.status_code == 200
    assert 'class="alert error small"' in swapped.text
    assert 'data-status="sent"' in swapped.text
    again = await admin.post(
        f"/commands/{zip_['id']}/cancel", data={"view": "device", "csrf_token": token}
    )
    assert again.status_code == 409  # already cancelled
    unknown = await admin.post(
        "/commands/9b3a3c0e-3f0e-4d55-8a3a-4f3e2b1c0d9e/cancel", data={"csrf_token": token}
    )
    assert unknown.status_code == 404


async def test_update_on_every_device_asks_first_then_queues_one_command_each(
    client, admin, tokens, secret
):
    devices = [
        await enrolled(client, secret, ["Git.Git", "7zip.7zip"], hostname=f"PC-{n}")
        for n in range(3)
    ]
    await enrolled(client, secret, ["7zip.7zip"], hostname="PC-OTHER")
    token = await token_for(admin, "/updates")

    # Posted without the confirmation (no script ran hx-confirm): a page asks first.
    ask = await admin.post("/updates/run", data={"package": "Git.Git", "csrf_token": token})
    assert ask.status_code == 200
    assert "Update <bdi>Git</bdi> <code" in ask.text
    assert "on 3 devices?" in ask.text
    assert '<p id="run-confirmation" hx-disable>Install Git 2.0 on 3 devices.</p>' in ask.text
    assert 'name="confirmed" value="yes"' in ask.text
    assert (await api_commands(client, tokens))["total"] == 0

    done = await admin.post(
        "/updates/run",
        data={"package": "Git.Git", "confirmed": "yes", "csrf_token": token},
        headers=HTMX,
    )
    assert done.status_code == 200
    assert done.headers["HX-Redirect"].startswith("/commands?deployment="), done.headers
    items = (await api_commands(client, tokens))["items"]
    assert sorted(c["device_id"] for c in items) == sorted(d.device_id for d in devices)
    assert {tuple(c["packages"]) for c in items} == {("Git.Git",)}
    assert "command.create_for_package" in await audit_actions(client, tokens)

    plain = await admin.post(
        "/updates/run", data={"package": "7zip.7zip", "confirmed": "yes", "csrf_token": token}
    )
    assert plain.status_code == 303
    assert plain.headers["location"].startswith("/commands?deployment="), plain.headers
    assert (await api_commands(client, tokens))["total"] == 7

    # From one source only, as the Updates pages list a package per source.
    store = await enrolled(client, secret, [], hostname="PC-STORE")
    await client.post(
        "/api/agent/update-report",
        json={"updates": [update_row("Git.Git", source="msstore")]},
        headers=store.headers,
    )
    fleet = (await admin.get("/updates")).text
    assert 'name="source" value="msstore"' in fleet
    form = {"package": "Git.Git", "source": "msstore", "csrf_token": token}
    ask = await admin.post("/updates/run", data=form)
    assert "(msstore) on 1 device?" in ask.text
    assert 'name="source" value="msstore"' in ask.text
    await admin.post("/updates/run", data={**form, "confirmed": "yes"})
    listed = await api_commands(client, tokens)
    assert listed["total"] == 8  # only the device that reports it from the store
    from_store = [c["packages"] for c in listed["items"] if c["device_id"] == store.device_id]
    assert from_store == [["Git.Git"]]
    bad = await admin.post("/updates/run", data={**form, "source": "elsewhere"})
    assert bad.status_code == 422

    none = await admin.post("/updates/run", data={"package": "Nobody.Has", "csrf_token": token})
    assert "No device is waiting for" in none.text
    refused = await admin.post(
        "/updates/run",
        data={"package": "Nobody.Has", "confirmed": "yes", "csrf_token": token},
        headers=HTMX,
    )
    assert refused.status_code == 200
    assert 'class="pill error run-refused"' in refused.text
    assert (
        await admin.post(
            "/updates/run", data={"package": "Nobody.Has", "confirmed": "yes", "csrf_token": token}
        )
    ).status_code == 404
    assert (await api_commands(client, tokens))["total"] == 8


async def test_results_show_in_the_panel_and_the_list(client, admin, viewer, tokens, secret):
    device = await enrolled(client, secret, ["Git.Git", "Vendor.Broken"])
    created = await client.post(
        f"/api/devices/{device.device_id}/commands",
        json={"kind": "RUN_UPDATES", "packages": ["Git.Git", "Vendor.Broken"]},
        headers=tokens.admin,
    )
    command_id = created.json()["id"]
    await heartbeat(client, device)
    await progress(client, device, command_id, 1, package_started="Git.Git")
    running = (await viewer.get(f"/commands/{command_id}/row")).text
    assert 'data-status="running"' in running
    assert "installing <code>Git.Git</code>" in running
    await progress(client, device, command_id, 2, result=result("Git.Git", reboot_required=True))
    await progress(
        client,
        device,
        command_id,
        3,
        result=result(
            "Vendor.Broken",
            succeeded=False,
            installer_exit_code=1603,
            message="Installer failed with exit code: 1603",
            duration_s=75,
        ),
    )
    await progress(client, device, command_id, 4, status="failed", message="1 of 2 failed")

    # One package installed, the other not: partial, with a pill of its own.
    for html in (
        (await viewer.get(f"/commands/{command_id}/row")).text,
        (await viewer.get(f"/devices/{device.device_id}/commands")).text,
        (await admin.get("/commands")).text,
    ):
        assert 'data-status="partial"' in html
        assert 'class="badge status-partial"' in html
        assert 'data-package="Git.Git" data-outcome="success"' in html
        assert "reboot required" in html
        assert 'data-package="Vendor.Broken" data-outcome="installer_failed"' in html
        assert "exit code 1603" in html
        assert "1 min 15 s" in html
        assert "12.5 s" in html
        assert "Installer failed with exit code: 1603" in html
        assert "1 of 2 failed" in html
        assert "/cancel" not in html  # finished: nothing to cancel
    assert (await viewer.get("/commands/not-a-uuid/row")).status_code == 404
    missing = await viewer.get("/commands/9b3a3c0e-3f0e-4d55-8a3a-4f3e2b1c0d9e/row")
    assert missing.status_code == 404


def rows_on(html: str) -> list[str]:
    return re.findall(r'<tr id="command-([0-9a-f-]+)"', html)


def link(html: str, rel: str) -> str:
    match = re.search(rf'rel="{rel}" href="([^"]+)"', html)
    assert match, f"no {rel} link"
    return unescape(match.group(1))


async def test_the_commands_list_filters_and_pages(
    client, admin, viewer, tokens, secret, clock: FakeClock
):
    assert "No commands yet" in (await viewer.get("/commands")).text
    # A package per command: a device gets no second open command for the same package.
    packages = [f"Vendor.App{n}" for n in range(PER_PAGE + 5)]
    berlin = await enrolled(client, secret, packages, hostname="BER-LAPTOP-01")
    munich = await enrolled(client, secret, packages, hostname="MUC-DESK-02")
    created: list[str] = []  # oldest first
    for n in range(PER_PAGE + 5):
        clock.advance(seconds=1)
        device = berlin if n % 2 else munich
        response = await client.post(
            f"/api/devices/{device.device_id}/commands",
            json={"kind": "RUN_UPDATES", "packages": [packages[n]]},
            headers=tokens.admin,
        )
        created.append(response.json()["id"])
    newest_first = created[::-1]
    cancelled = newest_first[3]
    await client.post(f"/api/commands/{cancelled}/cancel", headers=tokens.admin)

    page = (await viewer.get("/commands")).text
    assert 'aria-current="page">Commands</a>' in page
    assert rows_on(page) == newest_first[:PER_PAGE]
    assert "Page 1 of 2" in page
    next_href = link(page, "next")
    assert parse_qs(urlsplit(next_href).query)["page"] == ["2"]
    assert "after" in parse_qs(urlsplit(next_href).query)
    assert f'hx-get="{next_href.replace("&", "&amp;")}"' in page  # a real href, and htmx
    second = (await viewer.get(next_href)).text
    assert rows_on(second) == newest_first[PER_PAGE:]
    back = (await viewer.get(link(second, "prev"))).text
    assert rows_on(back) == newest_first[:PER_PAGE]
    by_number = (await viewer.get("/commands?page=2")).text
    assert rows_on(by_number) == newest_first[PER_PAGE:]

    fragment = await viewer.get("/commands?status=cancelled", headers=HTMX)
    assert "<html" not in fragment.text
    assert 'id="commands-table"' in fragment.text
    assert rows_on(fragment.text) == [cancelled]
    assert fragment.headers["vary"] == "HX-Request"
    queued = (await viewer.get("/commands?status=queued")).text
    assert len(rows_on(queued)) == PER_PAGE
    assert cancelled not in rows_on(queued)

    munich_ids = [c for n, c in enumerate(created) if n % 2 == 0][::-1]
    by_host = (await viewer.get("/commands?device=muc-desk")).text
    assert rows_on(by_host) == munich_ids
    assert "MUC-DESK-02" in by_host
    assert "BER-LAPTOP-01" not in by_host
    assert cancelled not in munich_ids  # a Berlin one
    by_id = (await viewer.get(f"/commands?device={berlin.device_id}&status=cancelled")).text
    assert rows_on(by_id) == [cancelled]
    assert (
        rows_on((await viewer.get(f"/commands?device={munich.device_id}")).text)
        == (munich_ids[:PER_PAGE])
    )
    none = await viewer.get(f"/commands?device={munich.device_id}&status=cancelled")
    assert "No commands match" in none.text
    assert "No commands match" in (await viewer.get("/commands?device=nowhere")).text
    assert (await viewer.get("/commands?status=bogus")).status_code == 422
    assert (await viewer.get("/commands?after=not-a-cursor")).status_code == 422

    # The device page shows its latest ten and links to the rest.
    panel = (await viewer.get(f"/devices/{munich.device_id}")).text
    shown = re.findall(r'data-command="([0-9a-f-]+)"', panel)
    assert shown == munich_ids[:10]
    assert f'href="/commands?device={munich.device_id}">All {len(munich_ids)} commands' in panel
