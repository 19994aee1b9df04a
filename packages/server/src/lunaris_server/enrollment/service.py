"""Enrollment secrets: created by an admin, given to installers, consumed by registration."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.audit import service as audit
from lunaris_server.core.errors import (
    Conflict,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    checked_identifier,
)
from lunaris_server.core.security import TokenKind, new_token, token_hash
from lunaris_server.enrollment.models import EnrollmentSecret


@dataclass(frozen=True, slots=True)
class CreatedSecret:
    secret: EnrollmentSecret
    plaintext: str
    """Shown once, never stored."""


async def create_secret(
    session: AsyncSession,
    *,
    name: str,
    now: datetime,
    actor: audit.Actor,
    expires_in: timedelta | None = None,
    max_uses: int | None = None,
) -> CreatedSecret:
    name = name.strip()
    if not name or len(name) > 128:
        raise InvalidInput("an enrollment secret needs a name of 1 to 128 characters")
    checked_identifier(name, "an enrollment secret's name")
    if expires_in is not None and expires_in <= timedelta(0):
        raise InvalidInput("expiry must be in the future")
    if max_uses is not None and max_uses < 1:
        raise InvalidInput("max uses must be at least 1")
    plaintext = new_token(TokenKind.ENROLLMENT)
    secret = EnrollmentSecret(
        name=name,
        secret_hash=token_hash(plaintext),
        created_at=now,
        created_by=actor.name,
        expires_at=now + expires_in if expires_in else None,
        max_uses=max_uses,
        uses=0,
    )
    session.add(secret)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="enrollment_secret.create",
        target=f"enrollment_secret:{secret.id}",
        details={"name": name, "expires_at": _iso(secret.expires_at), "max_uses": max_uses},
        now=now,
    )
    return CreatedSecret(secret=secret, plaintext=plaintext)


async def list_secrets(session: AsyncSession) -> list[EnrollmentSecret]:
    rows = await session.scalars(select(EnrollmentSecret).order_by(EnrollmentSecret.id))
    return list(rows)


async def revoke_secret(
    session: AsyncSession, *, secret_id: int, now: datetime, actor: audit.Actor
) -> EnrollmentSecret:
    secret = await session.get(EnrollmentSecret, secret_id)
    if secret is None:
        raise NotFound(f"no enrollment secret with id {secret_id}")
    if secret.revoked_at is None:
        secret.revoked_at = now
        await audit.record(
            session,
            actor=actor,
            action="enrollment_secret.revoke",
            target=f"enrollment_secret:{secret.id}",
            details={"name": secret.name},
            now=now,
        )
    return secret


async def rotate_secret(
    session: AsyncSession,
    *,
    secret_id: int,
    now: datetime,
    actor: audit.Actor,
    grace: timedelta = timedelta(0),
) -> CreatedSecret:
    """Replaces a secret with a new one of the same name and limits (a fresh use count, the
    same lifetime from now). The old one stops working after ``grace`` (at once by default),
    so installers already sent out with it can be given time to finish."""
    if grace < timedelta(0):
        raise InvalidInput("the grace period cannot be negative")
    old = await session.get(EnrollmentSecret, secret_id, with_for_update=True)
    if old is None:
        raise NotFound(f"no enrollment secret with id {secret_id}")
    if old.revoked_at is not None:
        raise Conflict("a revoked enrollment secret cannot be rotated; create a new one")
    lifetime = old.expires_at - old.created_at if old.expires_at else None
    created = await create_secret(
        session,
        name=old.name,
        now=now,
        actor=actor,
        expires_in=lifetime,
        max_uses=old.max_uses,
    )
    if grace:
        ends = now + grace
        old.expires_at = min(old.expires_at, ends) if old.expires_at else ends
    else:
        old.revoked_at = now
    await audit.record(
        session,
        actor=actor,
        action="enrollment_secret.rotate",
        target=f"enrollment_secret:{old.id}",
        details={
            "name": old.name,
            "replaced_by": created.secret.id,
            "old_valid_until": _iso(old.revoked_at or old.expires_at),
        },
        now=now,
    )
    return created


async def consume_secret(session: AsyncSession, *, plaintext: str, now: datetime) -> int:
    """Spends one use of a valid secret and returns its id; refuses any other.

    The use is counted by one conditional UPDATE, so two agents racing for the last use of a
    limited secret cannot both win.
    """
    table = EnrollmentSecret.__table__
    consumed = await session.execute(
        update(EnrollmentSecret)
        .where(
            table.c.secret_hash == token_hash(plaintext),
            table.c.revoked_at.is_(None),
            (table.c.expires_at.is_(None)) | (table.c.expires_at > now),
            (table.c.max_uses.is_(None)) | (table.c.uses < table.c.max_uses),
        )
        .values(uses=table.c.uses + 1, last_used_at=now)
        .returning(table.c.id)
        .execution_options(synchronize_session=False)
    )
    secret_id: int | None = consumed.scalar_one_or_none()
    if secret_id is not None:
        return secret_id
    raise NotAuthenticated(await _why_refused(session, plaintext=plaintext, now=now))


async def _why_refused(session: AsyncSession, *, plaintext: str, now: datetime) -> str:
    secret = await session.scalar(
        select(EnrollmentSecret).where(EnrollmentSecret.secret_hash == token_hash(plaintext))
    )
    if secret is None:
        return "unknown enrollment secret"
    if secret.revoked_at is not None:
        return "this enrollment secret has been revoked"
    if secret.expires_at is not None and secret.expires_at <= now:
        return "this enrollment secret has expired"
    return "this enrollment secret has reached its use limit"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
