"""Deployments in the console's pages (in-process): "Run updates" in the device list's bulk
bar (asks first, then one deployment), the list and a deployment's page with their live
fragments, "Retry the failed ones", and viewers refused."""

import re
from html import unescape
from urllib.parse import urlencode

import httpx

from lunaris_server.commands.sweeper import sweep_once
from tests.commands.helpers import Tokens, enrolled, finish
from tests.commands.test_console_pages import (
    HTMX,
    admin,
    audit_actions,
    console_client,
    token_for,
    viewer,
)
from tests.support import FakeClock, app_state

__all__ = ["admin", "viewer"]  # fixtures


async def deployments(client: httpx.AsyncClient, tokens: Tokens) -> list[dict]:
    response = await client.get("/api/deployments", headers=tokens.viewer)
    assert response.status_code == 200, response.text
    items: list[dict] = response.json()["items"]
    return items


async def post_fields(
    http: httpx.AsyncClient, path: str, fields: list[tuple[str, str]]
) -> httpx.Response:
    """A form with a name given more than once (ticked checkboxes), as a browser sends it."""
    return await http.post(
        path,
        content=urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def hidden_fields(html: str) -> list[tuple[str, str]]:
    return [
        (unescape(name), unescape(value))
        for name, value in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', html)
    ]


async def test_run_updates_on_the_ticked_devices_asks_first_then_shows_the_deployment(
    client, admin, viewer, tokens, secret
):
    first = await enrolled(client, secret, ["Git.Git"], hostname="PC-A")
    second = await enrolled(client, secret, ["7zip.7zip"], hostname="PC-B")
    idle = await enrolled(client, secret, [], hostname="PC-C")
    listed = (await admin.get("/devices")).text
    assert 'formaction="/deployments"' in listed
    assert 'id="bulk-run-updates"' in listed
    assert 'id="bulk-run-updates"' not in (await viewer.get("/devices")).text

    token = await token_for(admin, "/devices")
    ticked = [("device_id", d.device_id) for d in (first, second, idle)]
    # The bulk bar's form sends its other fields too (the tags box): they are left out.
    form = [*ticked, ("tags", ""), ("csrf_token", token)]
    ask = await post_fields(admin, "/deployments", form)
    assert ask.status_code == 200, ask.text
    assert "Run updates on 2 devices?" in ask.text
    assert "3 devices selected, 2 with updates waiting" in ask.text
    confirm = hidden_fields(ask.text)
    assert [f for f in confirm if f[0] == "device_id"] == ticked
    assert ("confirmed", "yes") in confirm
    assert not any(name == "tags" for name, _ in confirm)
    assert await deployments(client, tokens) == []

    done = await post_fields(admin, "/deployments", [*confirm, ("csrf_token", token)])
    assert done.status_code == 303, done.text
    (made,) = await deployments(client, tokens)
    assert done.headers["location"] == f"/deployments/{made['id']}"
    assert (made["summary"]["total"], made["skipped_up_to_date"]) == (2, 1)
    assert "deployment.create" in await audit_actions(client, tokens)

    page = (await admin.get(done.headers["location"])).text
    assert "Every waiting update on 3 selected devices" in page
    assert "0 of 2 succeeded, 2 waiting" in page
    assert f'data-live="deployment:{made["id"]} fleet"' in page
    assert f'data-live="deployment-commands:{made["id"]}"' in page
    assert page.count('data-live="command:') == 2
    assert "1 selected device reporting nothing waiting" in page
    assert 'id="retry-failed"' not in page  # nothing failed


async def test_run_updates_on_all_matching_devices(client, admin, tokens, secret):
    await enrolled(client, secret, ["Git.Git"], hostname="PC-BER-1")
    await enrolled(client, secret, ["Git.Git"], hostname="PC-BER-2")
    await enrolled(client, secret, ["Git.Git"], hostname="PC-PAR-1")
    token = await token_for(admin, "/devices?q=ber")
    form = {"scope": "matching", "filter_q": "ber", "csrf_token": token}
    ask = await admin.post("/deployments", data=form)
    assert "Run updates on 2 devices?" in ask.text
    assert 'href="/devices?q=ber"' in ask.text  # back to the same list
    done = await admin.post("/deployments", data={**form, "confirmed": "yes"})
    assert done.status_code == 303
    (made,) = await deployments(client, tokens)
    assert made["selection"] == {"matching": {"q": "ber"}}
    assert made["summary"]["total"] == 2


async def test_nothing_to_run_and_bad_selections_change_nothing(client, admin, tokens, secret):
    idle = await enrolled(client, secret, [], hostname="PC-IDLE")
    token = await token_for(admin, "/devices")
    ask = await admin.post("/deployments", data={"device_id": idle.device_id, "csrf_token": token})
    assert ask.status_code == 200
    assert "No update waits on the 1 selected device" in ask.text
    assert 'id="confirm-run-updates"' not in ask.text
    refused = await admin.post(
        "/deployments",
        data={"device_id": idle.device_id, "confirmed": "yes", "csrf_token": token},
    )
    assert refused.status_code == 409
    for form in (
        {},  # nothing ticked
        {"device_id": "not-a-device"},
        {"device_id": "00000000-0000-4000-8000-000000000000"},
        {"scope": "matching", "filter_group_id": "x"},
    ):
        response = await admin.post("/deployments", data={**form, "csrf_token": token})
        assert response.status_code in (404, 422), (form, response.status_code)
    without_token = await admin.post("/deployments", data={"device_id": idle.device_id})
    assert without_token.status_code == 403
    assert await deployments(client, tokens) == []


async def test_viewers_are_refused(client, admin, viewer, tokens, secret):
    device = await enrolled(client, secret, ["Git.Git"])
    token = await token_for(viewer, "/devices")
    for headers in ({}, HTMX):
        response = await viewer.post(
            "/deployments",
            data={"device_id": device.device_id, "confirmed": "yes", "csrf_token": token},
            headers=headers,
        )
        assert response.status_code == 403
    ran = await client.post("/api/updates/Git.Git/run", headers=tokens.admin)
    deployment_id = ran.json()["deployment_id"]
    for headers in ({}, HTMX):
        response = await viewer.post(
            f"/deployments/{deployment_id}/retry", data={"csrf_token": token}, headers=headers
        )
        assert response.status_code == 403
    assert len(await deployments(client, tokens)) == 1
    page = (await viewer.get(f"/deployments/{deployment_id}")).text
    assert "0 of 1 succeeded, 1 waiting" in page
    assert "/retry" not in page


async def test_retry_the_failed_ones_from_the_summary(
    app, client, admin, tokens, secret, clock: FakeClock
):
    good = await enrolled(client, secret, ["Git.Git"], hostname="PC-GOOD")
    bad = await enrolled(client, secret, ["Git.Git"], hostname="PC-BAD")
    ran = await client.post("/api/updates/Git.Git/run", headers=tokens.admin)
    deployment_id = ran.json()["deployment_id"]
    ids = {c["device_id"]: c["id"] for c in ran.json()["items"]}
    token = await token_for(admin, f"/deployments/{deployment_id}")
    retry = f"/deployments/{deployment_id}/retry"

    # Nothing failed yet: the summary comes back saying so (htmx swaps only 2xx answers).
    early = await admin.post(retry, data={"csrf_token": token}, headers=HTMX)
    assert early.status_code == 200
    assert 'id="deployment-summary"' in early.text
    assert "nothing to retry" in early.text
    plain = await admin.post(retry, data={"csrf_token": token})
    assert plain.status_code == 409

    await finish(client, good, ids[good.device_id], [("Git.Git", True)])
    await finish(client, bad, ids[bad.device_id], [("Git.Git", False)])
    summary = (await admin.get(f"/deployments/{deployment_id}/summary")).text
    assert "1 of 2 succeeded, 1 failed" in summary
    # Nothing waits: a device going offline can no longer change it.
    assert f'data-live="deployment:{deployment_id}" ' in summary
    assert 'id="retry-failed"' in summary
    assert "Retry the failed ones (1)" in summary
    assert 'data-retryable="1"' in summary
    clock.advance(seconds=1)

    again = await admin.post(retry, data={"csrf_token": token}, headers=HTMX)
    assert again.status_code == 200
    assert "1 of 2 succeeded, 1 waiting" in again.text
    assert 'id="retry-failed"' not in again.text
    assert "1 earlier attempt replaced by a retry." in again.text
    assert "deployment.retry" in await audit_actions(client, tokens)

    # A retry that expires can be retried again, from a plain form (no script), in a new
    # session (the first one has expired too).
    clock.advance(hours=25)
    await sweep_once(app_state(app))
    admin = await console_client(app, "admin", "correct horse")
    token = await token_for(admin, f"/deployments/{deployment_id}")
    redirected = await admin.post(retry, data={"csrf_token": token})
    assert (redirected.status_code, redirected.headers["location"]) == (
        303,
        f"/deployments/{deployment_id}",
    )
    page = (await admin.get(f"/deployments/{deployment_id}")).text
    assert page.count('data-live="command:') == 4
    assert "2 earlier attempts replaced by a retry." in page
    await admin.aclose()


async def test_the_list_and_its_fragments(client, admin, tokens, secret, clock: FakeClock):
    assert "No deployments yet" in (await admin.get("/deployments")).text
    await enrolled(client, secret, ["Git.Git"], hostname="PC-1")
    await enrolled(client, secret, ["7zip.7zip"], hostname="PC-2")
    made = []
    for package in ("Git.Git", "7zip.7zip"):
        ran = await client.post(f"/api/updates/{package}/run", headers=tokens.admin)
        made.append(ran.json()["deployment_id"])
        clock.advance(seconds=1)
    page = (await admin.get("/deployments")).text
    assert 'data-live="deployments"' in page
    rows = re.findall(r'<tr id="deployment-([0-9a-f-]+)" data-live="deployment:\1"', page)
    assert rows == made[::-1]
    assert "7zip.7zip on every device waiting for it" in page
    assert 'aria-current="page">Deployments' in page

    fragment = await admin.get("/deployments?active=yes", headers=HTMX)
    assert fragment.text.lstrip().startswith('<section id="deployments-table"')
    assert (await admin.get("/deployments?active=no")).text.count('<tr id="deployment-') == 0
    assert "No deployments match" in (await admin.get("/deployments?kind=policy")).text
    assert (await admin.get("/deployments?kind=other")).status_code == 400
    row = await admin.get(f"/deployments/{made[0]}/row")
    assert row.text.lstrip().startswith(f'<tr id="deployment-{made[0]}"')
    assert "0 of 1 succeeded, 1 waiting" in row.text
    commands = await admin.get(f"/deployments/{made[0]}", headers=HTMX)
    assert commands.text.lstrip().startswith('<section id="deployment-commands"')
    for missing in ("/deployments/nope", "/deployments/00000000-0000-4000-8000-000000000000"):
        assert (await admin.get(missing)).status_code == 404
        assert (await admin.get(f"{missing}/summary")).status_code == 404


async def test_the_commands_page_links_the_deployment_a_package_run_made(
    client, admin, tokens, secret
):
    await enrolled(client, secret, ["Git.Git"])
    token = await token_for(admin, "/updates")
    ran = await admin.post(
        "/updates/run", data={"package": "Git.Git", "confirmed": "yes", "csrf_token": token}
    )
    (made,) = await deployments(client, tokens)
    assert ran.headers["location"] == f"/commands?deployment={made['id']}"
    page = (await admin.get(ran.headers["location"])).text
    assert f'<a class="strong" href="/deployments/{made["id"]}" id="deployment-link">' in page
    assert (await admin.get("/commands?deployment=nope")).status_code == 400
