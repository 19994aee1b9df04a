"""Reading deployments: the list, newest first, and each one's live summary.

A summary is never stored: it is the deployment's commands counted by status when asked
(one aggregate over the ``(deployment_id, status)`` index for a whole page of deployments),
each device's latest attempt only (a retry replaces the attempt it retries). The waiting
commands (queued or sent) of devices that are offline now are counted apart, with the time
since which all of them have been silent.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import CommandStatus
from lunaris_server.commands.events import WAITING
from lunaris_server.commands.models import Command, Deployment
from lunaris_server.commands.overlap import OPEN_STATUSES
from lunaris_server.commands.queueing import RETRYABLE, DeploymentKind, not_retried
from lunaris_server.core.errors import NotFound
from lunaris_server.core.liveness import Liveness
from lunaris_server.devices.models import Device

_NOTED: Final = (
    (CommandStatus.PARTIAL, "partly succeeded"),
    (CommandStatus.FAILED, "failed"),
    (CommandStatus.EXPIRED, "expired"),
    (CommandStatus.CANCELLED, "cancelled"),
    (CommandStatus.RUNNING, "running"),
)
"""How a summary names the statuses after "N of M succeeded", in this order."""


@dataclass(frozen=True, slots=True)
class DeploymentSummary:
    as_of: datetime
    by_status: dict[CommandStatus, int] = field(default_factory=dict)
    """Each device's latest attempt, by status (every status is a key)."""
    commands: int = 0
    """All its commands, the retried attempts included."""
    waiting_offline: int = 0
    """Waiting commands (queued or sent) of devices that are offline now."""
    offline_since: datetime | None = None
    """The last time any of those devices was seen: all of them have been silent since."""

    def count(self, *statuses: str) -> int:
        return sum(self.by_status.get(CommandStatus(status), 0) for status in statuses)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def waiting(self) -> int:
        return self.count(*WAITING)

    @property
    def open(self) -> int:
        return self.count(*OPEN_STATUSES)

    @property
    def retryable(self) -> int:
        return self.count(*RETRYABLE)

    @property
    def finished(self) -> bool:
        return self.open == 0

    @property
    def text(self) -> str:
        """ "7 of 9 succeeded, 1 failed, 1 waiting (offline since 14:02 UTC)"."""
        parts = [f"{self.count(CommandStatus.SUCCEEDED):,} of {self.total:,} succeeded"]
        parts += [f"{n:,} {label}" for status, label in _NOTED if (n := self.count(status))]
        if self.waiting:
            waiting = f"{self.waiting:,} waiting"
            seen = self.offline_since
            if self.waiting_offline and seen is not None:
                today = seen.date() == self.as_of.date()
                since = seen.strftime("%H:%M UTC" if today else "%b %d %H:%M UTC")
                some = self.waiting_offline != self.waiting
                offline = f"{self.waiting_offline:,} offline" if some else "offline"
                waiting += f" ({offline} since {since})"
            parts.append(waiting)
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class DeploymentQuery:
    kind: DeploymentKind | None = None
    active: bool | None = None
    """Only those with commands still waiting or running (or only those without)."""
    limit: int = 50
    offset: int = 0


async def summaries(
    session: AsyncSession, deployment_ids: list[str], *, liveness: Liveness, now: datetime
) -> dict[str, DeploymentSummary]:
    """The summary of each deployment named: two aggregates over their commands."""
    counts: dict[str, dict[CommandStatus, int]] = defaultdict(
        lambda: dict.fromkeys(CommandStatus, 0)
    )
    commands: dict[str, int] = defaultdict(int)
    offline: dict[str, tuple[int, datetime | None]] = {}
    if deployment_ids:
        current = not_retried()
        rows = await session.execute(
            select(
                Command.deployment_id,
                Command.status,
                func.count(),
                func.count().filter(current),
            )
            .where(Command.deployment_id.in_(deployment_ids))
            .group_by(Command.deployment_id, Command.status)
        )
        for deployment_id, status, every, latest in rows:
            counts[str(deployment_id)][CommandStatus(status)] += latest
            commands[str(deployment_id)] += every
        silent = await session.execute(
            select(Command.deployment_id, func.count(), func.max(Device.last_seen_at))
            .join(Device, Device.id == Command.device_id)
            .where(
                Command.deployment_id.in_(deployment_ids),
                Command.status.in_(WAITING),
                Device.last_seen_at <= liveness.cutoff(now),
                current,
            )
            .group_by(Command.deployment_id)
        )
        offline = {str(deployment_id): (n, since) for deployment_id, n, since in silent}
    return {
        deployment_id: DeploymentSummary(
            as_of=now,
            by_status=counts[deployment_id],
            commands=commands[deployment_id],
            waiting_offline=offline.get(deployment_id, (0, None))[0],
            offline_since=offline.get(deployment_id, (0, None))[1],
        )
        for deployment_id in deployment_ids
    }


def _active() -> ColumnElement[bool]:
    return exists(
        select(Command.id).where(
            Command.deployment_id == Deployment.id, Command.status.in_(OPEN_STATUSES)
        )
    )


async def deployment_page(
    session: AsyncSession, *, query: DeploymentQuery, liveness: Liveness, now: datetime
) -> tuple[list[tuple[Deployment, DeploymentSummary]], int]:
    """A page of deployments, newest first, each with its summary; and how many match."""
    conditions: list[ColumnElement[bool]] = []
    if query.kind is not None:
        conditions.append(Deployment.kind == query.kind)
    if query.active is not None:
        conditions.append(_active() if query.active else ~_active())
    total = await session.scalar(select(func.count()).select_from(Deployment).where(*conditions))
    found = list(
        await session.scalars(
            select(Deployment)
            .where(*conditions)
            .order_by(Deployment.created_at.desc(), Deployment.id.desc())
            .limit(query.limit)
            .offset(query.offset)
        )
    )
    summary = await summaries(session, [d.id for d in found], liveness=liveness, now=now)
    return [(deployment, summary[deployment.id]) for deployment in found], total or 0


async def get_deployment(
    session: AsyncSession, *, deployment_id: str, liveness: Liveness, now: datetime
) -> tuple[Deployment, DeploymentSummary]:
    deployment = await session.get(Deployment, deployment_id)
    if deployment is None:
        raise NotFound(f"no deployment with id {deployment_id}")
    summary = await summaries(session, [deployment.id], liveness=liveness, now=now)
    return deployment, summary[deployment.id]


async def with_updates(
    session: AsyncSession, *, device_ids: list[str], offline_before: datetime
) -> tuple[int, int]:
    """How many of these devices report updates waiting (what a run on them is for), and
    how many of those are offline (last seen before ``offline_before``: theirs waits)."""
    waiting = offline = 0
    for start in range(0, len(device_ids), 1000):
        row = (
            await session.execute(
                select(func.count(), func.count().filter(Device.last_seen_at <= offline_before))
                .select_from(Device)
                .where(Device.id.in_(device_ids[start : start + 1000]), Device.updates_count > 0)
            )
        ).one()
        waiting += row[0] or 0
        offline += row[1] or 0
    return waiting, offline
