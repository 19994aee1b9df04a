"""Deployments an admin starts: updates on a selection of devices, and a retry of what failed.

A run on a selection queues one RUN_UPDATES per selected device that reports something
waiting (every update its package rules offer, or those of the listed packages it waits
for) and has no open
command installing the same; the devices left out are counted on the deployment. A retry
queues, in the same deployment, a command for each device whose latest attempt failed,
partly succeeded or expired, installing what it did not: the retry replaces that attempt in
the deployment's summary. Both lock the devices' rows as every way of queueing does
(``overlap.py``), so they never queue a package twice on a device.
"""

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.audit import service as audit
from lunaris_server.commands import overlap
from lunaris_server.commands.models import Command, CommandResult, Deployment
from lunaris_server.commands.queueing import (
    ALL_TRUNCATED,
    RETRYABLE,
    check_expiry,
    checked_packages,
    new_command,
    new_deployment,
    not_retried,
    queue,
)
from lunaris_server.core.errors import Conflict, NotFound
from lunaris_server.updates import rule_store
from lunaris_server.updates.models import DeviceUpdate

Wanted = Mapping[str, list[str] | None]
"""Per device, the packages to install (``None``: every update it reports)."""


@dataclass(frozen=True, slots=True)
class DeploymentRun:
    deployment: Deployment
    created: list[Command]
    skipped_busy: int
    """Devices left out: an open command of theirs installs the same already."""
    skipped_up_to_date: int
    """Devices left out: they report nothing (of what was asked) waiting."""
    skipped_revoked: int = 0
    """Devices left out of a retry: revoked since."""


def _title(packages: list[str] | None, devices: int) -> str:
    what = "Every waiting update" if packages is None else ", ".join(packages[:3])
    if packages is not None and len(packages) > 3:
        what += f" and {len(packages) - 3} more"
    return f"{what} on {devices:,} selected device{'s' if devices != 1 else ''}"


async def run_on_devices(
    session: AsyncSession,
    *,
    device_ids: list[str],
    packages: list[str] | None,
    selection: dict[str, Any],
    actor: audit.Actor,
    now: datetime,
    expires_in: timedelta,
) -> DeploymentRun:
    """One deployment of RUN_UPDATES for the selected devices (``selection`` says how they
    were chosen, for the record): ``packages`` (each device gets those it reports waiting),
    or every update each reports that its package rules offer (``None``). 409 when no
    device gets a command."""
    check_expiry(expires_in)
    packages = checked_packages(packages)
    locked = await overlap.lock_devices(session, device_ids)
    wanted: dict[str, list[str] | None] = dict.fromkeys(sorted(locked), packages)
    if packages is None:
        # Every update means every update its package rules offer (not ignored, held by a
        # pin or skipped), as the device page's "Update all" does.
        offered = await rule_store.offered_updates(session, sorted(locked))
        wanted = {device_id: p for device_id, p in offered.items() if p != []}
    waiting = await _waiting(session, wanted)
    covered = await overlap.open_overlaps_each(session, waiting)
    targets = {device_id: p for device_id, p in waiting.items() if device_id not in covered}
    up_to_date = len(locked) - len(waiting)
    if not targets:
        raise Conflict(
            f"none of the {len(device_ids):,} selected devices gets a command: "
            f"{up_to_date:,} report nothing waiting"
            + ("" if packages is None else " of these packages")
            + f", {len(covered):,} have an open command that installs it already",
            details={"skipped_busy": len(covered), "skipped_up_to_date": up_to_date},
        )
    deployment = new_deployment(
        title=_title(packages, len(device_ids)),
        packages=packages,
        selection=selection,
        actor=actor,
        now=now,
    )
    deployment.skipped_busy = len(covered)
    deployment.skipped_up_to_date = up_to_date
    session.add(deployment)
    created = await _queue_into(
        session, deployment, targets, actor=actor, now=now, expires_in=expires_in
    )
    await audit.record(
        session,
        actor=actor,
        action="deployment.create",
        target=f"deployment:{deployment.id}",
        details={
            "title": deployment.title,
            "selection": selection,
            "packages": packages[:100] if packages is not None else None,
            "commands": len(created),
            "skipped_busy": len(covered),
            "skipped_up_to_date": up_to_date,
        },
        now=now,
    )
    return DeploymentRun(deployment, created, len(covered), up_to_date)


async def retry_failed(
    session: AsyncSession,
    *,
    deployment_id: str,
    actor: audit.Actor,
    now: datetime,
    expires_in: timedelta,
) -> DeploymentRun:
    """New commands, in the deployment, for each device whose latest attempt in it failed,
    partly succeeded or expired: the packages it did not install, that the device still
    reports waiting (every update again when the attempt was for every update and no
    package of it failed: it never ran, or stopped midway). 409 when nothing failed, or
    when no failed device can get a command now."""
    check_expiry(expires_in)
    deployment = await session.scalar(
        # Retries of one deployment take turns: the second sees the first's commands.
        select(Deployment).where(Deployment.id == deployment_id).with_for_update()
    )
    if deployment is None:
        raise NotFound(f"no deployment with id {deployment_id}")
    failed = list(
        await session.scalars(
            select(Command)
            .where(
                Command.deployment_id == deployment.id,
                Command.status.in_(RETRYABLE),
                not_retried(),
            )
            .order_by(Command.device_id, Command.created_at.desc())
        )
    )
    if not failed:
        raise Conflict("nothing to retry: no command of this deployment failed or expired")
    latest = {command.device_id: command for command in reversed(failed)}
    locked = await overlap.lock_devices(session, latest)
    installed = await _results(session, [latest[device_id].id for device_id in locked])
    wanted: dict[str, list[str] | None] = {}
    for device_id in sorted(locked):
        command = latest[device_id]
        results = installed[command.id]
        if command.packages is not None:
            wanted[device_id] = [p for p in command.packages if not results.get(p, False)]
        else:
            wanted[device_id] = [p for p, ok in results.items() if not ok] or None
    waiting = await _waiting(session, {d: p for d, p in wanted.items() if p != []})
    covered = await overlap.open_overlaps_each(session, waiting)
    revoked = len(latest) - len(locked)
    up_to_date = len(locked) - len(waiting)
    targets = {device_id: p for device_id, p in waiting.items() if device_id not in covered}
    if not targets:
        raise Conflict(
            f"no failed device of this deployment gets a command: {len(covered):,} have an "
            f"open command that installs it already, {up_to_date:,} report nothing of it "
            f"waiting, {revoked:,} were revoked",
            details={
                "skipped_busy": len(covered),
                "skipped_up_to_date": up_to_date,
                "skipped_revoked": revoked,
            },
        )
    created = await _queue_into(
        session,
        deployment,
        targets,
        actor=actor,
        now=now,
        expires_in=expires_in,
        retries={device_id: latest[device_id].id for device_id in targets},
    )
    await audit.record(
        session,
        actor=actor,
        action="deployment.retry",
        target=f"deployment:{deployment.id}",
        details={
            "title": deployment.title,
            "failed": len(latest),
            "commands": len(created),
            "skipped_busy": len(covered),
            "skipped_up_to_date": up_to_date,
            "skipped_revoked": revoked,
        },
        now=now,
    )
    return DeploymentRun(deployment, created, len(covered), up_to_date, revoked)


async def _queue_into(
    session: AsyncSession,
    deployment: Deployment,
    targets: Wanted,
    *,
    actor: audit.Actor,
    now: datetime,
    expires_in: timedelta,
    retries: Mapping[str, str] | None = None,
) -> list[Command]:
    """A command in the deployment for each device of ``targets`` (retrying, per device, the
    command ``retries`` names)."""
    created = [
        new_command(
            device_id=device_id,
            packages=packages,
            actor=actor,
            now=now,
            expires_in=expires_in,
            deployment_id=deployment.id,
            retry_of=(retries or {}).get(device_id),
        )
        for device_id, packages in targets.items()
    ]
    deployment.updated_at = now
    await queue(session, created, now=now)
    return created


async def _results(session: AsyncSession, command_ids: list[str]) -> dict[str, dict[str, bool]]:
    """Per command, each package's result: installed or not."""
    found: dict[str, dict[str, bool]] = defaultdict(dict)
    for start in range(0, len(command_ids), 1000):
        rows = await session.execute(
            select(
                CommandResult.command_id,
                CommandResult.package_identifier,
                CommandResult.succeeded,
            ).where(CommandResult.command_id.in_(command_ids[start : start + 1000]))
        )
        for command_id, package, succeeded in rows:
            found[command_id][package] = succeeded
    return found


async def _waiting(session: AsyncSession, wanted: Wanted) -> dict[str, list[str] | None]:
    """What of ``wanted`` each device reports waiting now, leaving out ids winget cut short
    (a truncated id cannot be installed by id); devices with nothing of it waiting are left
    out. ``None`` stays ``None`` for a device with any update that can be installed."""
    device_ids = list(wanted)
    found: dict[str, list[str] | None] = {}
    for start in range(0, len(device_ids), 1000):
        chunk = device_ids[start : start + 1000]
        everything = [d for d in chunk if wanted[d] is None]
        if everything:
            found.update(
                dict.fromkeys(
                    await session.scalars(
                        select(DeviceUpdate.device_id)
                        .where(
                            DeviceUpdate.device_id.in_(everything),
                            DeviceUpdate.truncated.is_(False),
                        )
                        .distinct()
                    )
                )
            )
        listed = {d: p for d in chunk if (p := wanted[d]) is not None}
        if not listed:
            continue
        packages = sorted({package for chosen in listed.values() for package in chosen})
        rows = await session.execute(
            select(DeviceUpdate.device_id, DeviceUpdate.package_identifier, ALL_TRUNCATED)
            .where(
                DeviceUpdate.device_id.in_(list(listed)),
                DeviceUpdate.package_identifier.in_(packages),
            )
            .group_by(DeviceUpdate.device_id, DeviceUpdate.package_identifier)
        )
        reported: dict[str, set[str]] = defaultdict(set)
        for device_id, package, truncated in rows:
            if not truncated:
                reported[device_id].add(package)
        for device_id, chosen in listed.items():
            if kept := [package for package in chosen if package in reported[device_id]]:
                found[device_id] = kept
    return {device_id: found[device_id] for device_id in device_ids if device_id in found}
