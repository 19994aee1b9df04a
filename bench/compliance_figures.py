"""Compliance scenario: what the compliance figures cost with a large fleet.

The pages scenario's fleet (``devices`` devices with 0 to 12 waiting updates each, their tags
and twenty groups), package rules that ignore a few packages (the fleet's exact id and glob,
and one group's), and twenty policies with SLAs (one ring each on one of the groups, as in
the scheduler scenario). Then, timed in this process against the database: the fleet's
figures, one group's, the daily snapshot (the fleet and all twenty groups), and the CSV of
one figure.

    bench/run compliance --devices 100000
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from bench._common import BenchDatabase, Result, log, print_table
from bench.fleet_groups import GROUPS, seed_groups
from bench.pages import seed_fleet
from lunaris_server.audit.service import CLI_ACTOR
from lunaris_server.compliance import export, history
from lunaris_server.compliance import service as compliance
from lunaris_server.db.engine import Database
from lunaris_server.policies import service as policies
from lunaris_server.policies.service import PolicySpec, RingSpec
from lunaris_server.updates import rule_store
from lunaris_server.updates.rules import RuleAction, RuleSpec


async def _define(url: str, groups: dict[str, int]) -> None:
    database = Database(url)
    now = datetime.now(UTC)
    try:
        async with database.session() as session:
            for spec in (
                RuleSpec(package="Git.Git", action=RuleAction.IGNORE),
                RuleSpec(package="Microsoft.VisualStudio*", action=RuleAction.IGNORE),
                RuleSpec(
                    package="Zoom.Zoom", action=RuleAction.IGNORE, group_id=groups["Site berlin"]
                ),
                RuleSpec(package="Zoom.Zoom", action=RuleAction.AUTO),
            ):
                await rule_store.create_rule(session, spec=spec, actor=CLI_ACTOR, now=now)
            for priority, name in enumerate(spec["name"] for spec in GROUPS):
                policy = PolicySpec(
                    name=f"Policy {name}",
                    priority=priority,
                    sla_days=(7, 14, 30)[priority % 3],
                    rings=[RingSpec(group_id=groups[name])],
                )
                await policies.create_policy(session, spec=policy, actor=CLI_ACTOR, now=now)
            await session.commit()
    finally:
        await database.dispose()


async def _timed(url: str, groups: dict[str, int]) -> list[tuple[str, float, str]]:
    database = Database(url)
    found: list[tuple[str, float, str]] = []
    try:
        for what, group_id in (("fleet", None), ("group Site berlin", groups["Site berlin"])):
            async with database.session() as session:
                start = time.perf_counter()
                scope = await compliance.scope(session, group_id=group_id, now=datetime.now(UTC))
                figures = await compliance.figures(session, scope)
                found.append((f"figures, {what}", time.perf_counter() - start, str(figures)))
        async with database.session() as session:
            start = time.perf_counter()
            scope = await compliance.scope(
                session, group_id=groups["Site berlin"], now=datetime.now(UTC)
            )
            body = await export.figure_csv(session, scope, "missing")
            found.append(
                (
                    "CSV missing, Site berlin",
                    time.perf_counter() - start,
                    f"{body.count(chr(10))} lines",
                )
            )
        async with database.session() as session:
            start = time.perf_counter()
            written = await history.snapshot(session, now=datetime.now(UTC))
            await session.commit()
            found.append(("snapshot, fleet + 20 groups", time.perf_counter() - start, str(written)))
    finally:
        await database.dispose()
    return found


def run(*, backend: str, devices: int, keep: bool = False) -> Result:
    database = asyncio.run(BenchDatabase.create(backend))
    rounds: list[list[tuple[str, float, str]]] = []
    try:
        log(f"seeding {devices} devices on {backend}")
        asyncio.run(seed_fleet(database.url, devices))
        groups = asyncio.run(seed_groups(database.url))
        asyncio.run(_define(database.url, groups))
        log("timing")
        for _ in range(2):  # the second round runs warm (its snapshot finds the day written)
            rounds.append(asyncio.run(_timed(database.url, groups)))
    finally:
        if keep:
            log(f"kept {database.url}")
        else:
            asyncio.run(database.drop())
    print_table(
        f"compliance on {backend}, {devices} devices, 20 groups and policies: ms (cold, warm)",
        [
            (what, f"{first * 1000:.0f}, {second * 1000:.0f}  {detail}")
            for (what, first, detail), (_, second, _) in zip(*rounds, strict=True)
        ],
    )
    result = Result("compliance")
    result.figures = {
        "backend": backend,
        "devices": devices,
        "ms": {
            what: [round(r[i][1] * 1000) for r in rounds]
            for i, (what, _, _) in enumerate(rounds[0])
        },
    }
    return result
