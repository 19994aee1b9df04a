"""Scheduler scenario: the database time of one scheduler tick with a large fleet.

The pages scenario's fleet (``devices`` devices with a few waiting updates each, their tags
and twenty groups) gets twenty policies, one ring each on one of the groups (the first by
priority wins, so a device takes the first of its groups' policies), always open, and
package rules that make a few common packages ``auto``. Then ticks run in this process
against the database, as the server's task runs them:

- the first tick of the new policies, which queues as many installs as a tick may
  (``LUNARIS_SCHEDULER_MAX_INSTALLS_PER_TICK``, ``..._MAX_DEVICES_PER_TICK``);
- then the next ticks (``--steady``), one a minute: each queues the next part of the
  backlog (about 150,000 installs in all), and once everything is queued they find nothing
  due, which is what a tick costs on most minutes of the day.

Database time is read server-side from pg_stat_statements (the execution time of the
bench database's statements during the tick, bench/pg_statements.py) when the server has it
preloaded; the bench also times each statement on the connection, from being sent until its
results were read ("client ms": the database time plus the round trips and the reading of
the rows). Each tick's most expensive statements are logged.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select

from bench._common import BenchDatabase, Result, log, print_table, save_plot
from bench.fleet_groups import GROUPS, seed_groups
from bench.pages import seed_fleet
from bench.pg_statements import StatementStats
from lunaris_server.app import create_app
from lunaris_server.audit.service import CLI_ACTOR
from lunaris_server.core.settings import Settings
from lunaris_server.db.engine import Database
from lunaris_server.db.migrate import upgrade_to_head
from lunaris_server.devices.models import Device
from lunaris_server.policies import scheduler
from lunaris_server.policies import service as policies
from lunaris_server.policies.models import Policy
from lunaris_server.policies.service import PolicySpec, RingSpec
from lunaris_server.updates import rule_store
from lunaris_server.updates.rules import RuleAction, RuleSpec

AUTO = ["Mozilla.Firefox", "Google.Chrome", "7zip.7zip", "Zoom.Zoom", "Notepad++.Notepad++"]


async def _define(url: str, groups: dict[str, int]) -> None:
    database = Database(url)
    now = datetime.now(UTC)
    try:
        async with database.session() as session:
            if await session.scalar(select(func.count()).select_from(Policy)):
                return
            for package in AUTO:
                spec = RuleSpec(package=package, action=RuleAction.AUTO)
                await rule_store.create_rule(session, spec=spec, actor=CLI_ACTOR, now=now)
            for priority, name in enumerate(spec["name"] for spec in GROUPS):
                policy = PolicySpec(
                    name=f"Policy {name}",
                    priority=priority,
                    rings=[RingSpec(group_id=groups[name])],
                )
                await policies.create_policy(session, spec=policy, actor=CLI_ACTOR, now=now)
            await session.commit()
    finally:
        await database.dispose()


class _StatementClock:
    """Time spent in statements on the engine's connections, and how many ran."""

    def __init__(self, engine: Any) -> None:
        self.seconds = 0.0
        self.statements = 0
        self._started: dict[int, float] = {}
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, _conn: Any, cursor: Any, *_args: Any) -> None:
        self._started[id(cursor)] = time.perf_counter()

    def _after(self, _conn: Any, cursor: Any, *_args: Any) -> None:
        self.seconds += time.perf_counter() - self._started.pop(id(cursor), time.perf_counter())
        self.statements += 1

    def take(self) -> tuple[float, int]:
        taken = (self.seconds, self.statements)
        self.seconds, self.statements = 0.0, 0
        return taken


async def _ticks(url: str, steady: int) -> list[dict[str, Any]]:
    settings = Settings(
        database_url=url,
        data_dir=Path("/tmp") / f"lunaris-bench-{uuid.uuid4().hex[:8]}",  # noqa: S108
        secret_key="bench",
        scheduler_enabled=False,
    )
    app = create_app(settings)
    state = app.state.lunaris
    clock = _StatementClock(state.database.engine.sync_engine)
    server = await StatementStats.open(url) if url.startswith("postgresql") else None
    if server is None:
        log("no pg_stat_statements: database time is timed on the connection only")
    rows = []
    moment = datetime.now(UTC)
    for n in range(1 + steady):
        state.clock = lambda at=moment: at  # one tick a minute
        if server is not None:
            await server.start()
        started = time.perf_counter()
        queued = await scheduler.tick_once(state)
        wall = time.perf_counter() - started
        client_s, statements = clock.take()
        measured = await server.take() if server is not None else None
        name = "first" if n == 0 else f"next {n}"
        rows.append(
            {
                "tick": name,
                "queued": queued,
                "db_ms": round(measured.ms if measured else client_s * 1000, 1),
                "client_ms": round(client_s * 1000, 1),
                "wall_ms": round(wall * 1000, 1),
                "statements": statements,
            }
        )
        if measured is not None:
            for top in measured.top(5):
                query = " ".join(top.query.split())[:160]
                log(f"  {name}: {top.ms:9.1f} ms {top.calls:6} calls {top.rows:8} rows  {query}")
        moment = moment.replace(second=0, microsecond=0)
        moment = datetime.fromtimestamp(moment.timestamp() + settings.scheduler_interval_s, UTC)
    await state.database.dispose()
    if server is not None:
        await server.close()
    return rows


def run(
    *, backend: str, devices: int, steady: int, plot: Path | None, seeded_url: str | None = None
) -> Result:
    database = (
        BenchDatabase(seeded_url) if seeded_url else asyncio.run(BenchDatabase.create(backend))
    )
    try:
        if seeded_url is None:
            log(f"seeding {devices} devices with updates on {backend}")
            asyncio.run(seed_fleet(database.url, devices))
            groups = asyncio.run(seed_groups(database.url))
        else:
            upgrade_to_head(database.url)  # as a server starting on it would
            groups = asyncio.run(_group_ids(database.url))
        asyncio.run(_define(database.url, groups))
        log("running ticks")
        rows = asyncio.run(_ticks(database.url, steady))
    finally:
        if seeded_url is None:
            asyncio.run(database.drop())
    count = asyncio.run(_count(database.url)) if seeded_url else devices
    print_table(
        f"scheduler ticks on {backend}, {count} devices, 20 policies: "
        "queued / database ms / client ms / wall ms / statements",
        [
            (
                r["tick"],
                f"{r['queued']} / {r['db_ms']} / {r['client_ms']} / {r['wall_ms']}"
                f" / {r['statements']}",
            )
            for r in rows
        ],
    )
    result = Result("scheduler")
    result.figures = {"backend": backend, "devices": count, "policies": 20, "ticks": rows}
    if plot is not None:
        _plot(plot, rows, count, backend)
    return result


async def _group_ids(url: str) -> dict[str, int]:
    from lunaris_server.devices.models import DeviceGroup

    database = Database(url)
    try:
        async with database.session() as session:
            return {
                name: group_id
                for group_id, name in await session.execute(
                    select(DeviceGroup.id, DeviceGroup.name)
                )
            }
    finally:
        await database.dispose()


async def _count(url: str) -> int:
    database = Database(url)
    try:
        async with database.session() as session:
            return int(await session.scalar(select(func.count()).select_from(Device)) or 0)
    finally:
        await database.dispose()


def _plot(path: Path, rows: list[dict[str, Any]], devices: int, backend: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    figure, axis = plt.subplots(figsize=(9, 4))
    numbers = list(range(len(rows)))
    colors = ["tab:blue" if r["queued"] else "tab:green" for r in rows]
    axis.bar(numbers, [r["db_ms"] for r in rows], color=colors)
    goal = axis.axhline(1000, color="grey", linestyle="--", linewidth=1, label="goal: 1 s")
    kinds = [
        Patch(color="tab:blue", label="a tick that queued installs"),
        Patch(color="tab:green", label="a tick with nothing due"),
    ]
    axis.set_ylim(0, max(1300, 1.3 * max(r["db_ms"] for r in rows)))  # room for the legend
    axis.set_xlabel("tick (the first of the new policies, then one a minute)")
    axis.set_ylabel("database ms per tick")
    axis.set_title(f"scheduler ticks, {devices:,} devices, 20 policies, {backend}")
    axis.legend(handles=[*kinds, goal], loc="upper right")
    save_plot(figure, path)
