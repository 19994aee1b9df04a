"""Whatever a device or a user sends is data, never markup.

The same fleet is built twice, through the real agent and console APIs: once with plain
values, once with hostile ones (quotes, angle brackets, backticks, ``hx-*`` and ``on*``
attributes) in every field a device, an agent or a user supplies. Every console page and
fragment is then rendered in both, and their parsed trees must have the same elements with
the same attribute names: nothing in the data may add an element or an attribute. The routes
come from the app itself, so a new page that this test does not render fails it.
"""

import csv
import difflib
import html
import io
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import quote

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from fastapi.routing import APIRoute

from lunaris_server.app import create_app
from lunaris_server.console.web import TEMPLATES_DIR
from lunaris_server.core.settings import Settings
from lunaris_server.devices.last_seen import LastSeenWriter
from tests.console.helpers import login, page_token
from tests.support import (
    FakeClock,
    app_state,
    create_api_token,
    create_secret,
    create_user,
    update_row,
)

DEVICE_IDS = ("6f1c0a52-3c1e-4e55-9a51-0d4c1f6a0b01", "6f1c0a52-3c1e-4e55-9a51-0d4c1f6a0b02")

# What a hostile value carries after its field's name. Text fields may hold spaces; package
# ids and other identifiers cannot (winget ids have none), so theirs packs the same attacks
# without them.
TEXT_ATTACK = (
    "\"'<b>`x</td></tr><img src=x onerror=alert(1)> hx-get=/settings hx-trigger=load "
    'onmouseover=alert(1) x="'
)
ID_ATTACK = '"\'<b>`hx-post="/x"onclick="y"<i>'

# GET routes that show no data a device or user supplied, with the reason.
NOT_CONSOLE_PAGES = {
    "/healthz": "a fixed JSON body",
    "/readyz": "a fixed JSON body",
    "/metrics": "Prometheus text, counters only",
    "/downloads/{name}": "the agent installer file",
    "/api/docs": "the API explorer's fixed page",
    "/docs/oauth2-redirect": "the API explorer's fixed page",
}


@dataclass
class Values:
    """The value of every outside field, plain or hostile."""

    hostile: bool
    used: set[str] = field(default_factory=set)

    def text(self, name: str) -> str:
        self.used.add(name)
        return f"{name}{TEXT_ATTACK}" if self.hostile else f"{name} plain text"

    def ident(self, name: str, limit: int = 256) -> str:
        self.used.add(name)
        value = f"{name}{ID_ATTACK}" if self.hostile else f"{name}.Plain"
        assert len(value) <= limit
        return value


@dataclass
class World:
    """What a seeded fleet is made of: the ids the page URLs need."""

    package: str
    source: str
    command_ids: list[str]
    search: str
    deployment_ids: list[str]


async def seed(app: FastAPI, http: httpx.AsyncClient, v: Values, clock: FakeClock) -> World:
    """A second passes between steps, so that every list has one order in both worlds."""
    await create_user(app)
    api = {"Authorization": f"Bearer {await create_api_token(app, 'admin', v.text('token'))}"}
    secret = await create_secret(app, name=v.text("secret name"))
    tokens = []
    for device_id in DEVICE_IDS:
        body = {
            "device_id": device_id,
            "hostname": v.text(f"host {device_id[-1]}"),
            "os_version": v.text("os version"),
            "agent_version": v.ident("agent-version", 128),
            "enrollment_secret": secret,
        }
        response = await http.post("/api/agent/register", json=body)
        assert response.status_code == 200, response.text
        tokens.append({"Authorization": f"Bearer {response.json()['device_token']}"})
    first, second = tokens
    facts = {
        "hostname": v.text("renamed host"),
        "logged_on_user": v.ident("logged-on user"),
        "ip_addresses": ["10.20.30.41", "2001:db8::41"],
        "model": v.text("model"),
        "manufacturer": v.text("manufacturer"),
        "serial_number": v.ident("serial", 128),
        "reboot_pending": True,
    }
    renamed = await http.post("/api/agent/heartbeat", json=facts, headers=first)
    assert renamed.status_code == 200, renamed.text

    # The second device's identity is shared by a clone: its hostnames alternate.
    for hostname in (v.text("clone host"), v.text(f"host {DEVICE_IDS[1][-1]}")):
        flip = await http.post("/api/agent/heartbeat", json={"hostname": hostname}, headers=second)
        assert flip.status_code == 200, flip.text

    package, source = v.ident("Vendor.Package"), v.ident("source", 64)
    rows = [
        update_row(package, v.ident("installed", 128), v.ident("available", 128)),
        update_row(v.ident("Other.Package"), "1.0", "2.0", source=source),
    ]
    rows[0]["name"] = v.text("package name")
    rows[1]["name"] = v.text("other name")
    for token, report in (
        (first, {"updates": rows}),
        (second, {"updates": rows[:1]}),
        (second, {"scan_error": {"code": v.ident("error-code", 64), "message": v.text("scan")}}),
    ):
        response = await http.post("/api/agent/update-report", json=report, headers=token)
        assert response.status_code == 200, response.text

    # Inventories: a baseline, then a version moved, so the history shows software events.
    app_row = {
        "package_identifier": package,
        "name": v.text("app name"),
        "version": v.ident("app-version", 128),
        "source": source,
    }
    moved = {**app_row, "version": v.ident("app-version-2", 128)}
    for token, software in ((first, [app_row]), (second, [app_row]), (first, [moved])):
        response = await http.post(
            "/api/agent/inventory", json={"software": software}, headers=token
        )
        assert response.status_code == 200, response.text
    failed = {"scan_error": {"code": None, "message": v.text("inventory failure")}}
    response = await http.post("/api/agent/inventory", json=failed, headers=second)
    assert response.status_code == 200, response.text

    command_ids = []
    for device_id, packages in ((DEVICE_IDS[0], [package]), (DEVICE_IDS[1], None)):
        response = await http.post(
            f"/api/devices/{device_id}/commands",
            json={"kind": "RUN_UPDATES", "packages": packages},
            headers=api,
        )
        assert response.status_code == 201, response.text
        command_ids.append(response.json()["id"])
        clock.advance(seconds=1)
    handed = await http.post("/api/agent/heartbeat", json={}, headers=first)
    assert [c["command_id"] for c in handed.json()["commands"]] == command_ids[:1]
    result = {
        "package_identifier": package,
        "outcome": v.ident("outcome", 64),
        "succeeded": False,
        "hresult": v.ident("hresult", 64),
        "message": v.text("install message"),
    }
    for step in (
        {"sequence": 1, "status": "running", "package_started": package},
        {"sequence": 2, "status": "running", "result": result},
        {"sequence": 3, "status": "failed", "message": v.text("command message")},
    ):
        response = await http.post(
            f"/api/agent/commands/{command_ids[0]}/progress", json=step, headers=first
        )
        assert response.status_code == 200, response.text

    # Two deployments: the package on every device waiting for it (the second device has an
    # open command already: left out), and the other package on a selection.
    deployment_ids = []
    run = await http.post(f"/api/updates/{quote(package, safe='')}/run", headers=api)
    assert run.status_code == 201, run.text
    deployment_ids.append(run.json()["deployment_id"])
    clock.advance(seconds=1)
    selection = {
        "selection": {"device_ids": [DEVICE_IDS[0]]},
        "packages": [rows[1]["package_identifier"]],
    }
    run = await http.post("/api/deployments", json=selection, headers=api)
    assert run.status_code == 201, run.text
    deployment_ids.append(run.json()["deployment"]["id"])
    clock.advance(seconds=1)

    # The clone is to be split: the other PC is named on the device's page.
    split = await http.post(
        f"/api/devices/{DEVICE_IDS[1]}/split", json={"hostname": v.text("clone host")}, headers=api
    )
    assert split.status_code == 201, split.text
    # An old, revoked record of the first PC is offered for merging on its page.
    old = {**body, "device_id": str(uuid.UUID(int=7)), "hostname": v.text("renamed host")}
    assert (await http.post("/api/agent/register", json=old)).status_code == 200
    revoked = await http.post(f"/api/devices/{old['device_id']}/revoke", headers=api)
    assert revoked.status_code == 200, revoked.text

    # A group with outside text in every field it shows, and tags on the devices.
    group = await http.post(
        "/api/groups",
        json={
            "name": v.text("group name"),
            "description": v.text("group description"),
            "hostname_glob": v.text("glob"),
            "os_contains": v.text("os contains"),
            "tags": ["berlin"],
            "device_ids": [DEVICE_IDS[0]],
        },
        headers=api,
    )
    assert group.status_code == 201, group.text
    rule = await http.post(
        "/api/package-rules",
        json={
            "package": package,
            "group_id": 1,
            "action": "ignore",
            "version_constraint": "<3",
            "skip_version": v.ident("skipped", 128),
            "note": v.text("rule note"),
        },
        headers=api,
    )
    assert rule.status_code == 201, rule.text
    policy = await http.post(
        "/api/policies",
        json={
            "name": v.text("policy name"),
            "description": v.text("policy description"),
            "window": {"days": ["mon"], "start": "22:00", "duration_minutes": 240},
            "time_zone": "Europe/Berlin",
            "rings": [{"group_id": 1}],
        },
        headers=api,
    )
    assert policy.status_code == 201, policy.text
    # A version of the device's package halted, with outside text as its reason: its
    # rollout shows on the policy's page and its live fragment.
    halted = await http.post(
        "/api/policies/1/rollouts/halt",
        json={
            "package_identifier": package,
            "version": v.ident("halted version", 128),
            "reason": v.text("halt reason"),
        },
        headers=api,
    )
    assert halted.status_code == 200, halted.text
    tagged = await http.put(
        f"/api/devices/{DEVICE_IDS[0]}/tags", json={"tags": ["berlin", "kiosk"]}, headers=api
    )
    assert tagged.status_code == 200, tagged.text

    # Another PC asks to enroll the first device again (shown on its page for an admin).
    asking = {**body, "device_id": DEVICE_IDS[0], "hostname": v.text("asking host")}
    asked = await http.post("/api/agent/register", json={**asking, "registration_key": "k"})
    assert asked.status_code == 409, asked.text
    await app_state(app).part(LastSeenWriter).flush()  # the plain heartbeat's time, written now
    # The login form keeps 64 characters of a username.
    failed = await login(http, username=v.ident("failed-login", 64), password="not a password")
    assert failed.status_code == 401
    http.headers["User-Agent"] = v.text("user agent")  # shown in Settings > Sessions
    assert (await login(http)).status_code == 303
    return World(package, source, command_ids, v.text("search"), deployment_ids)


def page_urls(world: World) -> dict[str, list[str]]:
    """Every console GET route, with the URLs that render it for ``world``."""
    package = f"package={quote(world.package)}"
    search = quote(world.search)
    devices = [f"/devices/{device_id}" for device_id in DEVICE_IDS]
    return {
        "/": ["/"],
        "/dashboard/{fragment}": [
            f"/dashboard/{f}" for f in ("stats", "compliance", "charts", "recent")
        ],
        "/compliance": ["/compliance", "/compliance?group_id=1"],
        "/devices": [
            "/devices",
            f"/devices?q={search}",
            "/devices?sort=-updates_count",
            "/devices?group_id=1",
            "/devices?tag=berlin",
        ],
        "/groups": ["/groups"],
        "/groups/fragments/table": ["/groups/fragments/table"],
        "/updates/rules": ["/updates/rules"],
        "/policies": ["/policies"],
        "/policies/{policy_id}": ["/policies/1"],
        "/policies/fragments/table": ["/policies/fragments/table"],
        "/policies/{policy_id}/live": ["/policies/1/live"],
        "/updates/rules/{rule_id}": ["/updates/rules/1"],
        "/groups/{group_id}": ["/groups/1"],
        "/devices.csv": ["/devices.csv", f"/devices.csv?q={search}"],
        "/devices/{device_id}": devices,
        "/devices/{device_id}/fragments/{fragment}": [
            f"{device}/fragments/{fragment}"
            for device in devices
            for fragment in ("row", "overview", "updates", "history")
        ],
        "/devices/{device_id}/commands": [f"{device}/commands" for device in devices],
        "/updates": ["/updates", f"/updates?q={search}"],
        "/software": [
            "/software",
            # A search that cannot be read shows what is wrong with it, and so the text.
            f"/software?q={quote(world.search + ' <')}",
            f"/software?q={quote(world.package.split('<')[0])}",
            f"/software?q={quote(world.package.split('<')[0] + ' < 9')}",
        ],
        "/software.csv": ["/software.csv", f"/software.csv?q={quote(world.package[:8])}"],
        "/software/{package:path}": [
            f"/software/{quote(world.package)}",
            f"/software/{quote(world.package)}?version_lt=9",
        ],
        "/software/{package:path}/devices.csv": [f"/software/{quote(world.package)}/devices.csv"],
        "/devices/{device_id}/installed": [f"{device}/installed" for device in devices],
        "/devices/{device_id}/installed.csv": [f"{device}/installed.csv" for device in devices],
        "/updates.csv": ["/updates.csv"],
        "/updates/devices": [
            f"/updates/devices?{package}",
            f"/updates/devices?{package}&source={quote(world.source)}",
        ],
        "/commands": ["/commands", f"/commands?device={DEVICE_IDS[0]}"],
        "/commands/{command_id}/row": [f"/commands/{c}/row" for c in world.command_ids],
        "/deployments": ["/deployments", "/deployments?active=yes"],
        "/deployments/{deployment_id}": [f"/deployments/{d}" for d in world.deployment_ids],
        "/deployments/{deployment_id}/{fragment}": [
            f"/deployments/{d}/{fragment}"
            for d in world.deployment_ids
            for fragment in ("summary", "row")
        ],
        "/settings": ["/settings"],
        "/settings/users": ["/settings/users"],
        "/settings/tokens": ["/settings/tokens"],
        "/settings/sessions": ["/settings/sessions"],
        "/settings/audit": ["/settings/audit"],
        "/settings/agent-versions": ["/settings/agent-versions"],
        "/login": [f"/login?next={quote('/devices?q=' + world.search)}"],
    }


VOID_ELEMENTS = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
}
MARKER = "\"'<b>`"
"""In every hostile value (both attacks), and in no template."""
# Where outside data may stand outside an hx-disable region: the head (the page's title) is
# not processed by htmx, and hx-confirm is the text of a confirmation dialog.
TEXT_ATTRIBUTES = {"hx-confirm"}


class Skeleton(HTMLParser):
    """The tags and attribute names of a page, in document order (text left out), and the
    elements that show a hostile value outside an ``hx-disable`` region."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.shape: list[str] = []
        self.text: list[str] = []
        self.exposed: list[str] = []
        self._open: list[tuple[str, bool]] = []  # (tag, in an hx-disable region)

    def _disabled(self) -> bool:
        return bool(self._open) and self._open[-1][1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.shape.append(f"<{tag} {' '.join(sorted(name for name, _ in attrs))}>")
        self.text.extend(value for _, value in attrs if value)
        disabled = self._disabled() or any(name == "hx-disable" for name, _ in attrs)
        shown = [value for name, value in attrs if value and name not in TEXT_ATTRIBUTES]
        if not disabled and any(MARKER in value for value in shown):
            self.exposed.append(f"<{tag}> attribute")
        if tag not in VOID_ELEMENTS:
            self._open.append((tag, disabled))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_ELEMENTS:
            self._open.pop()

    def handle_endtag(self, tag: str) -> None:
        self.shape.append(f"</{tag}>")
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        in_head = any(open_tag == "head" for open_tag, _ in self._open)
        if MARKER in data and not self._disabled() and not in_head:
            self.exposed.append(f"<{self._open[-1][0] if self._open else ''}> text")


@dataclass
class Rendered:
    shapes: dict[str, list[str]] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)
    exposed: dict[str, list[str]] = field(default_factory=dict)
    """Per page: the elements showing outside data that htmx would process."""

    def add(self, key: str, response: httpx.Response) -> None:
        if "text/csv" in response.headers["content-type"]:
            rows = list(csv.reader(io.StringIO(response.text)))
            self.shapes[key] = [f"{len(row)} cells" for row in rows]
            self.texts.extend(cell for row in rows for cell in row)
            return
        parser = Skeleton()
        parser.feed(response.text)
        parser.close()
        self.shapes[key] = parser.shape
        self.texts.extend(parser.text)
        if parser.exposed:
            self.exposed[key] = parser.exposed

    @property
    def text(self) -> str:
        """Every text, cell and attribute value of every page, unescaped."""
        return html.unescape("\n".join(self.texts))


async def render(http: httpx.AsyncClient, urls: dict[str, list[str]], into: Rendered) -> None:
    """Each URL as a whole page and as the fragment htmx asks for, by route and place."""
    for route, group in urls.items():
        for place, url in enumerate(group):
            for how, headers in (("page", {}), ("htmx", {"HX-Request": "true"})):
                response = await http.get(url, headers=headers)
                key = f"{route} [{place}] {how}: {url}"
                assert response.status_code == 200, (key, response.text[:300])
                into.add(key, response)


async def build_and_render(settings: Settings, v: Values) -> tuple[Rendered, dict[str, list[str]]]:
    clock = FakeClock()
    app = create_app(settings, clock=clock)
    rendered = Rendered()
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            world = await seed(app, http, v, clock)
            urls = page_urls(world)
            await render(http, {k: g for k, g in urls.items() if k != "/login"}, rendered)
            # The confirmation page of a fleet-wide run (without JavaScript) shows the package.
            form = {"package": world.package, "source": "winget"}
            confirm = await http.post(
                "/updates/run", data={**form, "csrf_token": await page_token(http)}
            )
            assert confirm.status_code == 200, confirm.text[:300]
            rendered.add("POST /updates/run", confirm)
            # So is the one of "Run updates" on the devices a search matches (its filters are
            # sent again, in the form that confirms).
            form = {"scope": "matching", "filter_q": v.text("renamed host"), "filter_tag": "berlin"}
            confirm = await http.post(
                "/deployments", data={**form, "csrf_token": await page_token(http)}
            )
            assert confirm.status_code == 200, confirm.text[:300]
            assert "Run updates on 1 device?" in confirm.text
            assert 'name="filter_q"' in confirm.text
            rendered.add("POST /deployments", confirm)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as anon:
            await render(anon, {"/login": urls["/login"]}, rendered)
    return rendered, urls


def console_get_routes(app: FastAPI) -> set[str]:
    def walk(routes: list) -> list:  # type: ignore[type-arg]
        found = []
        for route in routes:
            inner = getattr(route, "original_router", None)
            found.extend(walk(inner.routes) if inner is not None else [route])
        return found

    return {
        route.path
        for route in walk(app.routes)
        if "GET" in (getattr(route, "methods", None) or ())
        and not route.path.startswith(("/api/", "/ws/", "/static"))
        and (isinstance(route, APIRoute) or route.path not in ("/api/openapi.json",))
    }


async def test_no_element_or_attribute_comes_from_outside_data(
    settings: Settings, another_database: Callable[[str], Awaitable[str]]
):
    plain_values, hostile_values = Values(hostile=False), Values(hostile=True)
    plain, urls = await build_and_render(settings, plain_values)
    second = settings.model_copy(update={"database_url": await another_database("hostile")})
    hostile, _ = await build_and_render(second, hostile_values)

    app = create_app(settings)
    covered = set(urls) | set(NOT_CONSOLE_PAGES)
    uncovered = console_get_routes(app) - covered
    assert not uncovered, f"console routes this test does not render: {sorted(uncovered)}"

    by_place = {key.split(": ", 1)[0]: key for key in hostile.shapes}
    assert [key.split(": ", 1)[0] for key in plain.shapes] == list(by_place)
    for key, shape in plain.shapes.items():
        hostile_key = by_place[key.split(": ", 1)[0]]
        changed = "\n".join(difflib.unified_diff(shape, hostile.shapes[hostile_key], n=3))
        assert not changed, f"{hostile_key}: the data changed the page's tree:\n{changed}"
    assert plain.exposed == {}
    assert hostile.exposed == {}, "outside data shown where htmx would process it"
    # Every hostile value is shown somewhere, whole: the comparison above saw them all.
    shown = hostile.text
    unshown = [
        name
        for name in sorted(hostile_values.used)
        if f"{name}{TEXT_ATTACK}" not in shown and f"{name}{ID_ATTACK}" not in shown
    ]
    assert unshown == [], "hostile values that no page shows"


def test_route_walk_finds_the_console_pages(settings: Settings):
    """The coverage check above reads the app's routes: it must find the pages at all."""
    routes = console_get_routes(create_app(settings))
    assert {"/", "/devices/{device_id}", "/settings/audit", "/login"} <= routes


def test_no_template_marks_data_safe_or_puts_json_in_markup():
    """Autoescaping is the only way data reaches a page: no ``|safe``, no ``tojson`` (which
    does not escape ``"`` for an attribute), no autoescape turned off."""
    offending = [
        f"{path.relative_to(TEMPLATES_DIR)}:{number}"
        for path in sorted(TEMPLATES_DIR.rglob("*.html"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\|\s*(safe|tojson)\b|autoescape\s+false", line)
    ]
    assert offending == []


async def test_htmx_is_locked_down(client: httpx.AsyncClient):
    page = (await client.get("/login")).text
    match = re.search(r'<meta name="htmx-config" content=\'([^\']*)\'>', page)
    assert match
    config = json.loads(match.group(1))
    assert config["selfRequestsOnly"] is True
    assert config["allowEval"] is False
    assert config["allowScriptTags"] is False
