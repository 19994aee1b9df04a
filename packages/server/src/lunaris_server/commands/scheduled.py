"""Commands a scheduler queues for many devices at once (a policy's installs), expiring when
the window closes (agents that can start no install after the window's end are told it too),
each in the deployment of what it installs.

A policy's deployment is one package version in one ring of the policy: every command the
policy queues for that version on that ring's devices joins it, tick after tick, so its
summary is the version's progress in the ring and "retry the failed ones" retries them.
Its id is derived from what it is (a UUID 5 of the policy, ring, package, source and
version), and it is created with ``INSERT ... ON CONFLICT DO NOTHING`` on first need: two
processes creating it at once both find the one row.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.audit import service as audit
from lunaris_server.commands import overlap, queueing
from lunaris_server.commands.models import Command, Deployment
from lunaris_server.commands.queueing import new_command
from lunaris_server.db.queries import insert_missing

POLICY: Final = "policy"
_NAMESPACE: Final = uuid.UUID("6f1c1d3e-58f4-4a52-9a57-8d7e0f0c2b61")
"""Of the policy deployments' UUIDs (fixed: ids made by any process, at any time, agree)."""


@dataclass(frozen=True, slots=True)
class PolicyDeployment:
    """One package version in one ring of a policy."""

    policy_id: int
    ring_position: int
    package: str
    source: str | None
    version: str

    @property
    def id(self) -> str:
        key = "\x1f".join(
            (
                str(self.policy_id),
                str(self.ring_position),
                self.package,
                self.source or "",
                self.version,
            )
        )
        return str(uuid.uuid5(_NAMESPACE, key))

    def row(self, *, title: str, actor: audit.Actor, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": POLICY,
            "title": title[:300],
            "packages": [self.package],
            "source": self.source,
            "selection": {
                "policy_id": self.policy_id,
                "ring": self.ring_position + 1,
                "package": self.package,
                "source": self.source,
                "version": self.version,
            },
            "created_by": actor.name,
            "created_at": now,
            "updated_at": now,
            "skipped_busy": 0,
            "skipped_up_to_date": 0,
        }


@dataclass(frozen=True, slots=True)
class Wanted:
    """A command to queue: its device, what it installs and its deployment."""

    device_id: str
    packages: list[str]
    deployment: PolicyDeployment


async def join_deployments(
    session: AsyncSession,
    titles: dict[PolicyDeployment, str],
    *,
    actor: audit.Actor,
    now: datetime,
) -> None:
    """Creates the deployments that do not exist yet (their titles), and marks all of them
    as joined ``now``."""
    if not titles:
        return
    rows = [d.row(title=title, actor=actor, now=now) for d, title in titles.items()]
    await insert_missing(session, Deployment.__table__, rows)  # type: ignore[arg-type]
    await session.execute(
        update(Deployment)
        .where(Deployment.id.in_(sorted(d.id for d in titles)))
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    )


async def queue(
    session: AsyncSession,
    wanted: Sequence[Wanted],
    *,
    actor: audit.Actor,
    now: datetime,
    expires_at: datetime,
    window_ends_at: datetime | None = None,
) -> dict[tuple[str, str], Command]:
    """A command for each of ``wanted``, for the devices still enrolled once locked, and
    unless an open command of the device installs one of its packages already (a person may
    have queued one since the plan was read). Returns them by (device, deployment id)."""
    locked = await overlap.lock_devices(session, (w.device_id for w in wanted))
    devices = sorted(locked)
    by_device: dict[str, list[Wanted]] = {}
    for item in wanted:
        if item.device_id in locked:
            by_device.setdefault(item.device_id, []).append(item)
    created: dict[tuple[str, str], Command] = {}
    for start in range(0, len(devices), 1000):
        chunk = devices[start : start + 1000]
        open_commands = await overlap.open_commands(session, chunk)
        for device_id in chunk:
            open_ones = open_commands.get(device_id, [])
            for item in by_device[device_id]:
                if any(overlap.covers(c, item.packages) for c in open_ones):
                    continue  # (two installs of one package id: the second waits its turn)
                command = new_command(
                    device_id=device_id,
                    packages=item.packages,
                    actor=actor,
                    now=now,
                    expires_in=expires_at - now,
                    deployment_id=item.deployment.id,
                    window_ends_at=window_ends_at,
                )
                created[(device_id, item.deployment.id)] = command
                open_ones.append(command)
    await queueing.queue(session, list(created.values()), now=now)
    return created
