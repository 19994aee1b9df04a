"""Compliance scenario: what the compliance figures cost with a large fleet.

The pages scenario's fleet (``devices`` devices with 0 to 12 waiting updates each, their tags
and twenty groups), package rules that ignore a few packages (the fleet's exact id and glob,
and one group's), and twenty policies with SLAs (one ring each on one of the groups, as in
the scheduler scenario). Then, timed in this process against the database: the fleet's
figures, one group's, the daily snapshot (the fleet and all twenty groups), and the CSV of
one figure.

    .venv/bin/python -m bench.compliance_figures --devices 100000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime

from bench._common import BenchDatabase, log
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--db", default="postgresql", choices=("postgresql", "sqlite"))
    parser.add_argument("--keep", action="store_true", help="keep the database (its URL is logged)")
    options = parser.parse_args()
    database = asyncio.run(BenchDatabase.create(options.db))
    try:
        log(f"seeding {options.devices} devices on {options.db}")
        asyncio.run(seed_fleet(database.url, options.devices))
        groups = asyncio.run(seed_groups(database.url))
        asyncio.run(_define(database.url, groups))
        log("timing")
        for _ in range(1 if options.keep else 2):  # the second round runs warm
            for what, seconds, detail in asyncio.run(_timed(database.url, groups)):
                print(f"{what:32} {seconds * 1000:8.0f} ms  {detail}", flush=True)
    finally:
        if options.keep:
            log(f"kept {database.url}")
        else:
            asyncio.run(database.drop())


if __name__ == "__main__":
    main()
