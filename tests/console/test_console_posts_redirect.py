"""Every console form POST that succeeds answers 303 See Other to a page (post/redirect/get),
so that reloading what the browser shows next asks for that page again and changes nothing.

The rule, for every POST outside ``/api`` and ``/ws``:

- a plain form submission (no ``HX-Request``) that did what it asked answers 303 to a GET
  page on this site; the page it lands on answers 200, and asking for it again creates
  nothing;
- a refused one (bad input, a conflict) may answer the form's page again with a 4xx: it
  changed nothing, so sending it again changes nothing either;
- a request from htmx (``HX-Request: true``) may answer the fragment it swaps in, or an
  ``HX-Redirect``: htmx's requests never become a history entry, so a reload reloads the
  page's own GET address;
- the one form that asks before acting without a script (``/updates/run`` without
  ``confirmed=yes``) answers the question as a page: it changes nothing until confirmed.

The routes come from the app itself: a new console POST that this table does not submit
fails ``test_every_console_post_route_is_submitted_here``.
"""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import select

from lunaris_server.accounts.models import UserSession
from lunaris_server.app import create_app
from lunaris_server.commands.models import Command, Deployment
from lunaris_server.core.settings import Settings
from lunaris_server.devices.models import DeviceReenrollment
from tests.console.helpers import login, page_token
from tests.support import (
    app_state,
    create_api_token,
    create_secret,
    create_user,
    register_body,
    update_row,
)


@dataclass
class Console:
    app: FastAPI
    http: httpx.AsyncClient
    """Logged in as the admin "admin"."""
    token: str
    """Its CSRF token."""


Form = dict[str, str]
Submission = tuple[str, Form]
Prepare = Callable[[Console], Awaitable[Submission]]


async def _one_id(console: Console, column: object) -> int | str:
    async with app_state(console.app).database.session() as session:
        ids = list(await session.scalars(select(column)))  # type: ignore[call-overload]
    assert len(ids) == 1, ids
    return ids[0]  # type: ignore[no-any-return]


async def _device(console: Console, *, updates: bool = False) -> tuple[str, dict[str, str], dict]:
    secret = await create_secret(console.app)
    body = register_body(secret, hostname="PC-0001")
    registered = await console.http.post("/api/agent/register", json=body)
    assert registered.status_code == 200, registered.text
    headers = {"Authorization": f"Bearer {registered.json()['device_token']}"}
    if updates:
        report = {"updates": [update_row("Git.Git", "2.46.2", "2.47.1")]}
        sent = await console.http.post("/api/agent/update-report", json=report, headers=headers)
        assert sent.status_code == 200, sent.text
    return body["device_id"], headers, body


async def _viewer(console: Console) -> int:
    await create_user(console.app, "vera", "viewer password", role="viewer")
    return 2


async def add_user(_c: Console) -> Submission:
    return "/settings/users", {"username": "bob", "password": "bob's password", "role": "viewer"}


async def change_role(c: Console) -> Submission:
    return f"/settings/users/{await _viewer(c)}/role", {"role": "admin"}


async def disable_user(c: Console) -> Submission:
    return f"/settings/users/{await _viewer(c)}/disable", {}


async def enable_user(c: Console) -> Submission:
    user_id = await _viewer(c)
    disabled = await c.http.post(f"/settings/users/{user_id}/disable", data={"csrf_token": c.token})
    assert disabled.status_code == 303
    return f"/settings/users/{user_id}/enable", {}


async def sign_out_user(c: Console) -> Submission:
    return f"/settings/users/{await _viewer(c)}/sign-out", {}


async def create_token(_c: Console) -> Submission:
    return "/settings/tokens", {"name": "report"}


async def revoke_token(c: Console) -> Submission:
    await create_api_token(c.app, "admin")
    return "/settings/tokens/1/revoke", {}


async def end_session(c: Console) -> Submission:
    current = await _one_id(c, UserSession.id)
    transport = httpx.ASGITransport(app=c.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        assert (await login(other)).status_code == 303
    async with app_state(c.app).database.session() as session:
        ids = set(await session.scalars(select(UserSession.id)))
    (other_id,) = ids - {current}
    return f"/settings/sessions/{other_id}/end", {}


async def create_secret_form(_c: Console) -> Submission:
    return "/settings/enrollment-secrets", {"name": "Berlin", "max_uses": "10"}


async def revoke_secret(c: Console) -> Submission:
    await create_secret(c.app)
    return "/settings/enrollment-secrets/1/revoke", {}


async def rotate_secret(c: Console) -> Submission:
    await create_secret(c.app)
    return "/settings/enrollment-secrets/1/rotate", {}


async def revoke_device(c: Console) -> Submission:
    device_id, _, _ = await _device(c)
    return f"/devices/{device_id}/revoke", {"reenrollment": "allow"}


async def clear_clone_flag(c: Console) -> Submission:
    device_id = await _flagged(c)
    page = (await c.http.get(f"/devices/{device_id}")).text
    assert f"/devices/{device_id}/clone-flag/clear" in page
    return f"/devices/{device_id}/clone-flag/clear", {}


async def _flagged(c: Console) -> str:
    device_id, headers, _ = await _device(c)
    for hostname in ("PC-COPY", "PC-0001"):
        beat = await c.http.post(
            "/api/agent/heartbeat", json={"hostname": hostname}, headers=headers
        )
        assert beat.status_code == 200, beat.text
    return device_id


async def split_device(c: Console) -> Submission:
    device_id = await _flagged(c)
    page = (await c.http.get(f"/devices/{device_id}")).text
    assert f"/devices/{device_id}/split" in page
    return f"/devices/{device_id}/split", {"hostname": "PC-COPY"}


async def cancel_split(c: Console) -> Submission:
    device_id = await _flagged(c)
    split = await c.http.post(
        f"/devices/{device_id}/split", data={"hostname": "PC-COPY", "csrf_token": c.token}
    )
    assert split.status_code == 303, split.text
    return f"/devices/{device_id}/split/cancel", {}


async def merge_device(c: Console) -> Submission:
    old_id, _, _ = await _device(c)
    app_state(c.app).clock.advance(hours=6)  # type: ignore[attr-defined]
    new_id, _, _ = await _device(c)
    return f"/devices/{new_id}/merge", {"device_id": old_id}


async def decide_reenrollment(c: Console) -> Submission:
    device_id, headers, body = await _device(c)
    assert (await c.http.post("/api/agent/heartbeat", json={}, headers=headers)).is_success
    asking = {**body, "hostname": "PC-REIMAGED", "registration_key": "new-pc"}
    asked = await c.http.post("/api/agent/register", json=asking)
    assert asked.status_code == 409, asked.text
    request_id = await _one_id(c, DeviceReenrollment.id)
    return f"/devices/{device_id}/reenrollments/{request_id}/approve", {}


async def run_on_device(c: Console) -> Submission:
    device_id, _, _ = await _device(c, updates=True)
    return f"/devices/{device_id}/commands", {"package": "Git.Git"}


async def cancel_command(c: Console) -> Submission:
    device_id, _, _ = await _device(c, updates=True)
    created = await c.http.post(
        f"/devices/{device_id}/commands", data={"all": "yes", "csrf_token": c.token}
    )
    assert created.status_code == 303, created.text
    return f"/commands/{await _one_id(c, Command.id)}/cancel", {}


async def run_package(c: Console) -> Submission:
    await _device(c, updates=True)
    return "/updates/run", {"package": "Git.Git", "source": "winget", "confirmed": "yes"}


async def run_on_selection(c: Console) -> Submission:
    device_id, _, _ = await _device(c, updates=True)
    return "/deployments", {"device_id": device_id, "confirmed": "yes"}


async def retry_deployment(c: Console) -> Submission:
    _, headers, _ = await _device(c, updates=True)
    ran = await c.http.post(
        "/updates/run", data={"package": "Git.Git", "confirmed": "yes", "csrf_token": c.token}
    )
    assert ran.status_code == 303, ran.text
    command_id = await _one_id(c, Command.id)
    step = {"sequence": 1, "status": "failed", "message": "winget not found"}
    failed = await c.http.post(
        f"/api/agent/commands/{command_id}/progress", json=step, headers=headers
    )
    assert failed.status_code == 200, failed.text
    return f"/deployments/{await _one_id(c, Deployment.id)}/retry", {}


async def set_device_tags(c: Console) -> Submission:
    device_id, _, _ = await _device(c)
    return f"/devices/{device_id}/tags", {"tags": "berlin, kiosk"}


async def bulk_tags(c: Console) -> Submission:
    await _device(c)
    return "/devices/bulk-tags", {"scope": "matching", "tags": "berlin", "change": "add"}


async def create_group(_c: Console) -> Submission:
    return "/groups", {"name": "Berlin", "hostname_glob": "PC-BER-*"}


async def _group(c: Console) -> int:
    created = await c.http.post("/groups", data={"name": "Pilot", "csrf_token": c.token})
    assert created.status_code == 303, created.text
    return int(created.headers["location"].rsplit("/", 1)[1])


async def update_group(c: Console) -> Submission:
    return f"/groups/{await _group(c)}", {"name": "Pilot ring", "tags": "it"}


async def delete_group(c: Console) -> Submission:
    return f"/groups/{await _group(c)}/delete", {}


async def create_rule(_c: Console) -> Submission:
    return "/updates/rules", {"package": "Oracle.*", "action": "manual", "version_constraint": "<9"}


async def _rule(c: Console) -> int:
    created = await c.http.post(
        "/updates/rules", data={"package": "Zoom.Zoom", "action": "auto", "csrf_token": c.token}
    )
    assert created.status_code == 303, created.text
    return 1


async def update_rule(c: Console) -> Submission:
    return f"/updates/rules/{await _rule(c)}", {"package": "Zoom.Zoom", "action": "ignore"}


async def delete_rule(c: Console) -> Submission:
    return f"/updates/rules/{await _rule(c)}/delete", {}


async def create_policy(c: Console) -> Submission:
    group = await _group(c)
    return "/policies", {
        "name": "Nightly",
        "enabled": "yes",
        "day": "mon",
        "start": "22:00",
        "duration_hours": "4",
        "time_zone": "Europe/Berlin",
        "ring0_group": str(group),
    }


async def _policy(c: Console) -> int:
    url, form = await create_policy(c)
    created = await c.http.post(url, data={**form, "csrf_token": c.token})
    assert created.status_code == 303, created.text
    return int(created.headers["location"].rsplit("/", 1)[1])


async def update_policy(c: Console) -> Submission:
    policy = await _policy(c)
    return f"/policies/{policy}", {"name": "Weekly", "always": "yes", "ring0_group": "1"}


async def delete_policy(c: Console) -> Submission:
    return f"/policies/{await _policy(c)}/delete", {}


async def halt_rollout(c: Console) -> Submission:
    policy = await _policy(c)
    form = {"action": "halt", "package": "Zoom.Zoom", "source": "winget", "version": "6.3"}
    return f"/policies/{policy}/rollouts", {**form, "reason": "crashes"}


async def logout(_c: Console) -> Submission:
    return "/logout", {}


MSI = bytes.fromhex("d0cf11e0a1b11ae1") + b"an agent MSI"
UPLOADS = {"/settings/agent-versions": {"file": ("agent.msi", MSI, "application/x-msi")}}
"""The forms that send a file (multipart), with it."""


def _agent_version(c: Console, version: str = "0.2.0") -> None:
    folder = app_state(c.app).settings.resolved_agent_downloads_dir
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"lunaris-agent-{version}-x64.msi").write_bytes(MSI)


async def add_agent_version(_c: Console) -> Submission:
    return "/settings/agent-versions", {"version": "0.2.0"}


async def remove_agent_version(c: Console) -> Submission:
    _agent_version(c)
    return "/settings/agent-versions/0.2.0/remove", {}


async def set_agent_target(c: Console) -> Submission:
    _agent_version(c)
    return "/settings/agent-targets", {"scope": "fleet", "version": "0.2.0"}


async def remove_agent_target(c: Console) -> Submission:
    url, form = await set_agent_target(c)
    assert (await c.http.post(url, data={**form, "csrf_token": c.token})).status_code == 303
    return "/settings/agent-targets/remove", {"scope": "fleet"}


SUBMISSIONS: dict[str, Prepare] = {
    "/logout": logout,
    "/settings/users": add_user,
    "/settings/users/{user_id}/role": change_role,
    "/settings/users/{user_id}/disable": disable_user,
    "/settings/users/{user_id}/enable": enable_user,
    "/settings/users/{user_id}/sign-out": sign_out_user,
    "/settings/tokens": create_token,
    "/settings/tokens/{token_id}/revoke": revoke_token,
    "/settings/sessions/{session_id}/end": end_session,
    "/settings/enrollment-secrets": create_secret_form,
    "/settings/agent-versions": add_agent_version,
    "/settings/agent-versions/{version}/remove": remove_agent_version,
    "/settings/agent-targets": set_agent_target,
    "/settings/agent-targets/remove": remove_agent_target,
    "/settings/enrollment-secrets/{secret_id}/revoke": revoke_secret,
    "/settings/enrollment-secrets/{secret_id}/rotate": rotate_secret,
    "/devices/{device_id}/revoke": revoke_device,
    "/devices/{device_id}/clone-flag/clear": clear_clone_flag,
    "/devices/{device_id}/reenrollments/{request_id}/{decision}": decide_reenrollment,
    "/devices/{device_id}/split": split_device,
    "/devices/{device_id}/split/cancel": cancel_split,
    "/devices/{device_id}/merge": merge_device,
    "/devices/{device_id}/commands": run_on_device,
    "/commands/{command_id}/cancel": cancel_command,
    "/updates/run": run_package,
    "/deployments": run_on_selection,
    "/deployments/{deployment_id}/retry": retry_deployment,
    "/devices/{device_id}/tags": set_device_tags,
    "/devices/bulk-tags": bulk_tags,
    "/groups": create_group,
    "/groups/{group_id}": update_group,
    "/groups/{group_id}/delete": delete_group,
    "/updates/rules": create_rule,
    "/updates/rules/{rule_id}": update_rule,
    "/updates/rules/{rule_id}/delete": delete_rule,
    "/policies": create_policy,
    "/policies/{policy_id}": update_policy,
    "/policies/{policy_id}/delete": delete_policy,
    "/policies/{policy_id}/rollouts": halt_rollout,
}
LOGIN = "/login"
"""Submitted logged out, by test_logging_in_redirects."""


def console_post_routes(app: FastAPI) -> set[str]:
    return {
        route.path
        for route in iter_route_contexts(app.routes)
        if route.path
        and "POST" in (route.methods or ())
        and not route.path.startswith(("/api/", "/ws/"))
    }


def test_every_console_post_route_is_submitted_here(settings: Settings):
    routes = console_post_routes(create_app(settings))
    assert {"/settings/enrollment-secrets", "/devices/{device_id}/revoke"} <= routes
    assert routes == {*SUBMISSIONS, LOGIN}


@pytest.fixture
async def console(app: FastAPI, client: httpx.AsyncClient) -> Console:
    await create_user(app)
    assert (await login(client)).status_code == 303
    return Console(app, client, await page_token(client))


async def assert_redirects_to_a_page(http: httpx.AsyncClient, response: httpx.Response) -> None:
    assert response.status_code == 303, (response.status_code, response.text[:300])
    assert "hx-redirect" not in response.headers
    location = response.headers["location"]
    assert re.match(r"/(?!/)", location), location
    for _ in range(2):  # the page, then a reload of it
        landed = await http.get(location)
        assert landed.status_code in (200, 303), (location, landed.status_code)
        if landed.status_code == 303:  # logged out (logout, or ending this session): /login
            assert landed.headers["location"].startswith("/login"), landed.headers["location"]


@pytest.mark.parametrize("path", list(SUBMISSIONS))
async def test_a_console_form_that_succeeds_redirects_to_a_page(console: Console, path: str):
    url, form = await SUBMISSIONS[path](console)
    response = await console.http.post(
        url, data={**form, "csrf_token": console.token}, files=UPLOADS.get(path)
    )
    await assert_redirects_to_a_page(console.http, response)


async def test_logging_in_redirects(app: FastAPI, client: httpx.AsyncClient):
    await create_user(app)
    response = await login(client)
    await assert_redirects_to_a_page(client, response)
    assert (await client.get(response.headers["location"])).status_code == 200
