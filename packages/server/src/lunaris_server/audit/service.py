"""The audit log: every console action and enrollment, written in the acting transaction."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.audit.models import AuditEntry


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a console user (``user:NAME``), a device, or the CLI on the server host."""

    name: str
    ip: str | None = None


CLI_ACTOR = Actor("cli")


async def record(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    now: datetime,
    target: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            at=now, actor=actor.name, action=action, target=target, details=details, ip=actor.ip
        )
    )


async def list_entries(
    session: AsyncSession, *, limit: int, offset: int, action: str | None = None
) -> tuple[list[AuditEntry], int]:
    query = select(AuditEntry)
    if action:
        query = query.where(AuditEntry.action == action)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), total or 0


async def happened_from(
    session: AsyncSession, *, action: str, target: str, ip: str | None, since: datetime
) -> bool:
    """Was ``action`` on ``target`` done from ``ip`` since then (e.g. a user's login from
    this address)? Uses the (target, at) index."""
    if ip is None:
        return False
    found = await session.scalar(
        select(AuditEntry.id)
        .where(
            AuditEntry.target == target,
            AuditEntry.at >= since,
            AuditEntry.action == action,
            AuditEntry.ip == ip,
        )
        .limit(1)
    )
    return found is not None
