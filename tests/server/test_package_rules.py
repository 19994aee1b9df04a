"""Package rules: which rule decides (the precedence table, as a table), version constraints
in winget's order, the states shown for each update, and the API that keeps the rules."""

from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from lunaris_server.audit.models import AuditEntry
from lunaris_server.commands.models import Command
from lunaris_server.updates.constraints import BadConstraint, parse
from lunaris_server.updates.models import PackageRule
from lunaris_server.updates.rules import RuleBook, UpdateState
from tests.support import (
    api_login,
    app_state,
    create_secret,
    create_user,
    register_device,
    update_row,
)

NOW = datetime(2026, 12, 3, tzinfo=UTC)


def rule(
    rule_id: int,
    package: str,
    *,
    group: int | None = None,
    source: str | None = None,
    action: str = "manual",
    pin: str | None = None,
    skip: str | None = None,
) -> PackageRule:
    return PackageRule(
        id=rule_id,
        package=package,
        group_id=group,
        source=source,
        action=action,
        version_constraint=pin,
        skip_version=skip,
        note="",
        created_at=NOW,
        created_by="t",
        updated_at=NOW,
        updated_by="t",
    )


# Every rank of the order against the one below it, and the ties within a rank: the rules
# that exist (ids give their age), and which one decides for Microsoft.VisualStudio.Code from
# winget on a device in groups 1 and 2.
PRECEDENCE = [
    (
        "group exact id beats group glob",
        [rule(1, "Microsoft.*", group=1), rule(2, "Microsoft.VisualStudio.Code", group=1)],
        2,
    ),
    (
        "group glob beats fleet exact id",
        [rule(1, "Microsoft.VisualStudio.Code"), rule(2, "Microsoft.*", group=2)],
        2,
    ),
    (
        "fleet exact id beats fleet glob",
        [rule(1, "Microsoft.*"), rule(2, "microsoft.visualstudio.code")],
        2,
    ),
    ("fleet glob beats the default", [rule(1, "*")], 1),
    (
        "a group the device is not in does not count",
        [rule(1, "Microsoft.*"), rule(2, "Microsoft.VisualStudio.Code", group=3)],
        1,
    ),
    (
        "a named source beats any source",
        [
            rule(1, "Microsoft.VisualStudio.Code"),
            rule(2, "Microsoft.VisualStudio.Code", source="winget"),
        ],
        2,
    ),
    (
        "another source does not count",
        [rule(1, "Microsoft.*"), rule(2, "Microsoft.VisualStudio.Code", source="msstore")],
        1,
    ),
    ("the longer glob wins", [rule(1, "Microsoft.*"), rule(2, "Microsoft.VisualStudio.*")], 2),
    (
        "a tie between groups: the older rule",
        [
            rule(1, "Microsoft.VisualStudio.Code", group=2),
            rule(2, "Microsoft.VisualStudio.Code", group=1),
        ],
        1,
    ),
    (
        "a glob that does not match does not count",
        [rule(1, "Microsoft.Visual*.Studio"), rule(2, "*Code")],
        2,
    ),
    ("no rule: the default", [rule(1, "Mozilla.*")], None),
]


@pytest.mark.parametrize(("case", "rules", "decides"), PRECEDENCE, ids=[c[0] for c in PRECEDENCE])
def test_the_most_specific_rule_decides(case: str, rules: list[PackageRule], decides: int | None):
    book = RuleBook(rules=rules, group_names={1: "pilot", 2: "berlin", 3: "other"})
    decision = book.decide(
        package="Microsoft.VisualStudio.Code",
        source="winget",
        available_version="1.96.0",
        group_ids=frozenset({1, 2}),
    )
    assert (decision.rule.id if decision.rule else None) == decides, case


STATES = [
    (
        {"action": "ignore", "pin": "<3", "skip": "3.1"},
        "3.1",
        UpdateState.IGNORED,
        "ignored by rule #1",
    ),
    (
        {"action": "auto", "skip": "3.1"},
        "3.1",
        UpdateState.SKIPPED,
        "version 3.1 skipped by rule #1",
    ),
    (
        {"action": "auto", "skip": "3.1"},
        "3.2",
        UpdateState.AUTO,
        "installed automatically by rule #1",
    ),
    (
        {"action": "auto", "pin": "<3"},
        "3.1",
        UpdateState.HELD,
        "held by pin <3 (rule #1 (the fleet: Oracle.*)); available 3.1",
    ),
    ({"action": "auto", "pin": "<3"}, "2.9", UpdateState.AUTO, "installed automatically"),
    (
        {"action": "manual", "pin": "8.*"},
        "8.0.431",
        UpdateState.MANUAL,
        "installed when an admin asks",
    ),
    ({"action": "manual", "pin": "8.*"}, "80.1", UpdateState.HELD, "held by pin 8.*"),
]


@pytest.mark.parametrize(("fields", "available", "state", "reason"), STATES)
def test_the_deciding_rule_gives_the_state(fields, available, state, reason):
    book = RuleBook(rules=[rule(1, "Oracle.*", **fields)], group_names={})
    decision = book.decide(
        package="Oracle.JavaRuntime", source="winget", available_version=available
    )
    assert decision.state is state
    assert reason in decision.reason


@pytest.mark.parametrize(
    ("constraint", "allowed", "held"),
    [
        ("<3", ["2.9", "2.10.1", "1"], ["3", "3.0", "3.0.0", "3.1", "10"]),
        ("<=3.1", ["3.1", "3.1.0", "3.0.9"], ["3.1.1", "3.2"]),
        (">=8,<9", ["8", "8.0.431", "8.99"], ["7.9", "9", "9.0.1"]),
        ("8.*", ["8", "8.0.431", "8.5"], ["80.1", "9.0", "7.8"]),
        ("==1.2", ["1.2", "1.2.0"], ["1.2.1", "1.3"]),
        ("!=2.0", ["2.1", "1.9"], ["2", "2.0"]),
        (">1.10", ["1.11", "2"], ["1.9", "1.10"]),
    ],
)
def test_constraints_order_versions_as_winget_does(constraint, allowed, held):
    parsed = parse(constraint)
    assert [v for v in allowed if not parsed.allows(v)] == []
    assert [v for v in held if parsed.allows(v)] == []


@pytest.mark.parametrize("bad", ["", " ", "<", "abc def", ">=*", "<3.*", "3,,4", "~3", "x" * 200])
def test_a_bad_constraint_is_refused(bad):
    with pytest.raises(BadConstraint):
        parse(bad)


@pytest.fixture
async def admin(app: FastAPI, client: httpx.AsyncClient) -> httpx.AsyncClient:
    await create_user(app)
    await api_login(client)
    return client


async def add_rule(client: httpx.AsyncClient, **spec: object) -> dict:
    response = await client.post("/api/package-rules", json=spec)
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_device_page_says_why_each_update_is_or_is_not_offered(app, admin):
    secret = await create_secret(app)
    device = await register_device(admin, secret, hostname="PC-PILOT-1")
    await register_device(admin, secret, hostname="PC-OTHER")
    rows = [
        update_row("Oracle.JavaRuntime", "8.0.401", "21.0.1"),
        update_row("Zoom.Zoom", "6.2", "6.3"),
        update_row("Microsoft.Edge", "130", "131"),
        update_row("Git.Git", "2.46", "2.47"),
    ]
    sent = await admin.post(
        "/api/agent/update-report", json={"updates": rows}, headers=device.headers
    )
    assert sent.status_code == 200, sent.text
    pilot = await admin.post("/api/groups", json={"name": "Pilot", "hostname_glob": "PC-PILOT-*"})
    await add_rule(admin, package="Oracle.*", version_constraint="8.*", note="payroll")
    await add_rule(admin, package="Zoom.Zoom", action="auto")
    await add_rule(admin, package="Zoom.Zoom", group_id=pilot.json()["id"], skip_version="6.3")
    await add_rule(admin, package="Microsoft.Edge", action="ignore")

    decisions = await admin.get(f"/api/devices/{device.device_id}/update-decisions")
    assert decisions.status_code == 200, decisions.text
    states = {d["package_identifier"]: (d["state"], d["rule_id"]) for d in decisions.json()}
    assert states == {
        "Oracle.JavaRuntime": ("held", 1),
        "Zoom.Zoom": ("skipped", 3),  # the pilot group's rule beats the fleet's
        "Microsoft.Edge": ("ignored", 4),
        "Git.Git": ("manual", None),
    }
    page = (await admin.get(f"/devices/{device.device_id}")).text
    assert "held by pin 8.* (rule #1 (the fleet: Oracle.*)); available 21.0.1" in page
    assert 'data-not-offered="ignored"' in page
    assert 'data-package="Git.Git"' in page
    assert 'data-package="Microsoft.Edge"' not in page

    # "Update all" installs only what the rules offer.
    from tests.console.helpers import page_token

    token = await page_token(admin, f"/devices/{device.device_id}")
    ran = await admin.post(
        f"/devices/{device.device_id}/commands", data={"all": "yes", "csrf_token": token}
    )
    assert ran.status_code == 303, ran.text
    async with app_state(app).database.session() as session:
        command = (await session.scalars(select(Command))).one()
    assert command.packages == ["Git.Git"]

    # The fleet's updates page shows the fleet rules, and that a group decides otherwise.
    fleet = (await admin.get("/updates")).text
    assert "1 group rule decide" in fleet


async def test_rules_are_kept_through_the_api_and_audited(app, admin):
    created = await add_rule(
        admin, package="Oracle.*", action="manual", version_constraint=" <9 ", note="Java 8"
    )
    assert created["version_constraint"] == "<9"
    listed = await admin.get("/api/package-rules")
    assert [r["id"] for r in listed.json()["items"]] == [created["id"]]
    assert listed.json()["order"][0] == "group exact id"
    changed = await admin.put(
        f"/api/package-rules/{created['id']}", json={"package": "Oracle.*", "action": "ignore"}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["action"], changed.json()["version_constraint"]) == ("ignore", None)
    again = await admin.post("/api/package-rules", json={"package": "oracle.*"})
    assert again.status_code == 409, again.text
    gone = await admin.delete(f"/api/package-rules/{created['id']}")
    assert gone.status_code == 204
    assert (await admin.get(f"/api/package-rules/{created['id']}")).status_code == 404
    async with app_state(app).database.session() as session:
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert [a for a in actions if a.startswith("package_rule.")] == [
        "package_rule.create",
        "package_rule.update",
        "package_rule.delete",
    ]


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ({"package": ""}, "package"),
        ({"package": "has space"}, "no spaces"),
        ({"package": "X", "action": "sometimes"}, "action"),
        ({"package": "X", "source": "chocolatey"}, "source"),
        ({"package": "X", "version_constraint": "~3"}, "not a version constraint"),
        ({"package": "X", "group_id": 99}, "no group"),
        ({"package": "X", "colour": "red"}, "colour"),
    ],
)
async def test_a_bad_rule_is_refused_and_changes_nothing(admin, spec, why):
    response = await admin.post("/api/package-rules", json=spec)
    assert response.status_code == 422, response.text
    assert why in response.text
    assert (await admin.get("/api/package-rules")).json()["items"] == []


async def test_a_group_with_rules_cannot_be_deleted(admin):
    group = (await admin.post("/api/groups", json={"name": "Pilot"})).json()
    made = await add_rule(admin, package="Zoom.Zoom", group_id=group["id"], action="auto")
    refused = await admin.delete(f"/api/groups/{group['id']}")
    assert refused.status_code == 409, refused.text
    assert "in use" in refused.text
    assert (await admin.get(f"/api/groups/{group['id']}")).status_code == 200
    assert (await admin.delete(f"/api/package-rules/{made['id']}")).status_code == 204
    assert (await admin.delete(f"/api/groups/{group['id']}")).status_code == 204


async def test_viewers_read_rules_and_cannot_change_them(app, admin, client):
    made = await add_rule(admin, package="Zoom.Zoom")
    await create_user(app, "vera", "viewer password", role="viewer")
    await api_login(client, "vera", "viewer password")
    assert (await client.get("/api/package-rules")).status_code == 200
    assert (await client.post("/api/package-rules", json={"package": "A"})).status_code == 403
    put = await client.put(f"/api/package-rules/{made['id']}", json={"package": "A"})
    assert put.status_code == 403
    assert (await client.delete(f"/api/package-rules/{made['id']}")).status_code == 403
