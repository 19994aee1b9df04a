"""Console sessions: a row per login, behind a random id the browser keeps in its cookie.

Only the id's SHA-256 is stored (like every token here), so a copy of the database opens no
session. Every request checks the row: ended, expired, or its user disabled, it no longer
authenticates. Ending sessions announces them on the bus (after the commit), so each server
process closes their console sockets at once, and deletes what they had left to show once
(``accounts.flash``).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.accounts import flash
from lunaris_server.accounts.models import User, UserSession
from lunaris_server.audit import service as audit
from lunaris_server.core.errors import NotAuthenticated, NotFound
from lunaris_server.core.security import TokenKind, new_token, token_hash
from lunaris_server.realtime import outbox
from lunaris_server.realtime.service import SESSIONS_ENDED

TOUCH_EVERY = timedelta(minutes=1)
"""``last_seen_at`` is written at most this often per session."""
_IDS_PER_MESSAGE = 200
"""Session ids per bus message: well inside a NOTIFY payload."""
MAX_USER_AGENT = 256


@dataclass(frozen=True, slots=True)
class StartedSession:
    row: UserSession
    cookie: str
    """The random id, for the browser's cookie; shown nowhere else."""


async def start(
    session: AsyncSession,
    *,
    user: User,
    now: datetime,
    lifetime: timedelta,
    user_agent: str | None,
    ip: str | None,
) -> StartedSession:
    cookie = new_token(TokenKind.SESSION)
    row = UserSession(
        user_id=user.id,
        token_hash=token_hash(cookie),
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
        user_agent=(user_agent or "")[:MAX_USER_AGENT] or None,
        ip=(ip or "")[:64] or None,
    )
    session.add(row)
    await session.flush()
    return StartedSession(row=row, cookie=cookie)


async def _find(session: AsyncSession, cookie: str) -> tuple[UserSession, User] | None:
    row = (
        await session.execute(
            select(UserSession, User)
            .join(User, User.id == UserSession.user_id)
            .where(UserSession.token_hash == token_hash(cookie))
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def authenticate(
    session: AsyncSession, *, cookie: str, now: datetime
) -> tuple[User, UserSession]:
    """The session's user and row; NotAuthenticated if it is unknown, ended or expired, or
    its user is disabled."""
    found = await _find(session, cookie)
    if found is None:
        raise NotAuthenticated("invalid session")
    user_session, user = found
    if user_session.ended_at is not None or user.disabled:
        raise NotAuthenticated("your session has ended; log in again")
    if user_session.expires_at <= now:
        raise NotAuthenticated("your session has expired; log in again")
    return user, user_session


async def touch(session: AsyncSession, *, user_session: UserSession, now: datetime) -> bool:
    """Records that the session was used, at most once a minute; True if it wrote (the
    caller commits). Conditional, so processes serving the same session write once."""
    due = now - TOUCH_EVERY
    if user_session.last_seen_at > due:
        return False
    result = await session.execute(
        update(UserSession)
        .where(UserSession.id == user_session.id, UserSession.last_seen_at <= due)
        .values(last_seen_at=now)
        .execution_options(synchronize_session=False)
    )
    user_session.last_seen_at = now
    return bool(getattr(result, "rowcount", 0))


def _announce_ended(session: AsyncSession, ids: Sequence[int]) -> None:
    for start_at in range(0, len(ids), _IDS_PER_MESSAGE):
        chunk = list(ids[start_at : start_at + _IDS_PER_MESSAGE])
        outbox.announce_message(session, {"topic": SESSIONS_ENDED, "sessions": chunk})


async def end_all(session: AsyncSession, *, user_id: int, now: datetime) -> list[int]:
    """Ends every open session of the user (a disabled user, a new password, "sign out
    everywhere"); returns their ids."""
    ids = list(
        await session.scalars(
            update(UserSession)
            .where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
            .values(ended_at=now)
            .returning(UserSession.id)
            .execution_options(synchronize_session=False)
        )
    )
    await flash.drop(session, session_ids=ids)
    _announce_ended(session, ids)
    return ids


async def _end(session: AsyncSession, user_session: UserSession, now: datetime) -> None:
    user_session.ended_at = now
    await session.flush()
    await flash.drop(session, session_ids=[user_session.id])
    _announce_ended(session, [user_session.id])


async def logout(
    session: AsyncSession, *, cookie: str | None, now: datetime, ip: str | None
) -> None:
    """Ends the session behind ``cookie``, if it is still open (audited)."""
    found = await _find(session, cookie) if cookie else None
    if found is None or found[0].ended_at is not None:
        return
    user_session, user = found
    await _end(session, user_session, now)
    await audit.record(
        session,
        actor=audit.Actor(f"user:{user.username}", ip),
        action="auth.logout",
        target=f"user:{user.username}",
        details={"session_id": user_session.id},
        now=now,
    )


async def list_open(session: AsyncSession, *, user: User, now: datetime) -> list[UserSession]:
    """The user's sessions that still work, most recently used first."""
    rows = await session.scalars(
        select(UserSession)
        .where(
            UserSession.user_id == user.id,
            UserSession.ended_at.is_(None),
            UserSession.expires_at > now,
        )
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
    )
    return list(rows)


async def end_own(
    session: AsyncSession, *, user: User, session_id: int, now: datetime, actor: audit.Actor
) -> UserSession:
    """Ends one of the user's own sessions; another user's is "not found"."""
    user_session = await session.get(UserSession, session_id)
    if user_session is None or user_session.user_id != user.id:
        raise NotFound(f"you have no session with id {session_id}")
    if user_session.ended_at is None:
        await _end(session, user_session, now)
        await audit.record(
            session,
            actor=actor,
            action="session.end",
            target=f"user:{user.username}",
            details={"session_id": session_id},
            now=now,
        )
    return user_session


async def sign_out_everywhere(
    session: AsyncSession, *, user: User, now: datetime, actor: audit.Actor
) -> list[int]:
    """An admin ends every session of ``user`` (audited, even when there was none)."""
    ids = await end_all(session, user_id=user.id, now=now)
    await audit.record(
        session,
        actor=actor,
        action="user.sign_out_everywhere",
        target=f"user:{user.username}",
        details={"sessions": len(ids)},
        now=now,
    )
    return ids


async def no_longer_valid(session: AsyncSession, *, ids: set[int], now: datetime) -> set[int]:
    """Which of these sessions were ended, expired or lost their user (a process's check of
    the console sockets it holds, for endings no announcement told it of)."""
    if not ids:
        return set()
    alive = await session.scalars(
        select(UserSession.id)
        .join(User, User.id == UserSession.user_id)
        .where(
            UserSession.id.in_(ids),
            UserSession.ended_at.is_(None),
            UserSession.expires_at > now,
            User.disabled.is_(False),
        )
    )
    return ids - set(alive)
