"""Console accounts and API tokens (sessions: ``accounts.sessions``)."""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.accounts import sessions
from lunaris_server.accounts.models import ApiToken, Role, User
from lunaris_server.audit import service as audit
from lunaris_server.core.errors import (
    Conflict,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    checked_identifier,
)
from lunaris_server.core.security import (
    TokenKind,
    hash_password,
    new_token,
    token_hash,
    verify_password,
)
from lunaris_server.web.throttle import LoginThrottle

_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


def _check_username(username: str) -> str:
    if not _USERNAME.fullmatch(username):
        raise InvalidInput(
            "a username is 1 to 64 letters, digits or . _ @ - and starts with a letter or digit"
        )
    return username


def _check_password(password: str) -> str:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return password


def _check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput(f"unknown role {role!r}; use admin or viewer") from None


async def add_user(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    role: str,
    now: datetime,
    actor: audit.Actor,
) -> User:
    user = User(
        username=_check_username(username),
        password_hash=hash_password(_check_password(password)),
        role=_check_role(role).value,
        disabled=False,
        created_at=now,
    )
    try:
        # Added inside the savepoint, so a refused duplicate leaves nothing pending behind.
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError:
        raise Conflict(f"a user named {username!r} already exists") from None
    await audit.record(
        session,
        actor=actor,
        action="user.add",
        target=f"user:{username}",
        details={"role": user.role},
        now=now,
    )
    return user


async def get_user_by_name(session: AsyncSession, *, username: str) -> User:
    user = await session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


async def list_users(session: AsyncSession) -> list[User]:
    return list(await session.scalars(select(User).order_by(User.username)))


async def authenticate_password(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    now: datetime,
    actor: audit.Actor,
    throttle: LoginThrottle,
) -> User:
    """The user, or NotAuthenticated (audited); TooManyRequests, without checking anything,
    while ``throttle`` holds this address or username back."""
    trusted = throttle.username_held(username) and await audit.happened_from(
        session,
        action="auth.login",
        target=f"user:{username}",
        ip=actor.ip,
        since=now - TRUSTED_FOR,
    )
    throttle.attempt(address=actor.ip, username=username, trusted=trusted)
    user = await session.scalar(select(User).where(User.username == username))
    # verify_password runs even for an unknown user, so timing does not reveal who exists.
    valid = verify_password(user.password_hash if user else None, password)
    if user is None or not valid or user.disabled:
        await audit.record(
            session,
            actor=actor,
            action="auth.login_failed",
            target=f"user:{username[:64]}",
            now=now,
        )
        raise NotAuthenticated("wrong username or password")  # counted as one already
    throttle.succeeded(address=actor.ip, username=username, trusted=trusted)
    user.last_login_at = now
    await audit.record(
        session, actor=actor, action="auth.login", target=f"user:{username}", now=now
    )
    return user


TRUSTED_FOR = timedelta(days=90)
"""A login from an address makes it the user's own, for the throttle, this long."""


@dataclass(frozen=True, slots=True)
class CreatedToken:
    token: ApiToken
    plaintext: str


async def add_api_token(
    session: AsyncSession, *, user: User, name: str, now: datetime, actor: audit.Actor
) -> CreatedToken:
    name = name.strip() or "api token"
    if len(name) > 128:
        raise InvalidInput("a token name has at most 128 characters")
    checked_identifier(name, "a token name")
    plaintext = new_token(TokenKind.API)
    token = ApiToken(user_id=user.id, name=name, token_hash=token_hash(plaintext), created_at=now)
    session.add(token)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="api_token.add",
        target=f"user:{user.username}",
        details={"token_id": token.id, "name": name},
        now=now,
    )
    return CreatedToken(token=token, plaintext=plaintext)


async def authenticate_api_token(session: AsyncSession, *, plaintext: str, now: datetime) -> User:
    row = (
        await session.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == token_hash(plaintext))
        )
    ).first()
    if row is None:
        raise NotAuthenticated("unknown API token")
    token, user = row
    if token.revoked_at is not None or user.disabled:
        raise NotAuthenticated("this API token has been revoked")
    token.last_used_at = now
    return user


async def get_user(session: AsyncSession, *, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    return user


async def set_role(
    session: AsyncSession, *, user_id: int, role: str, now: datetime, actor: audit.Actor
) -> User:
    user = await get_user(session, user_id=user_id)
    new_role = _check_role(role)
    if actor.name == f"user:{user.username}" and new_role is not Role.ADMIN:
        # An admin demoting themselves could leave nobody able to undo it.
        raise Conflict("you cannot take the admin role from yourself")
    if user.role != new_role.value:
        previous, user.role = user.role, new_role.value
        await audit.record(
            session,
            actor=actor,
            action="user.set_role",
            target=f"user:{user.username}",
            details={"from": previous, "to": new_role.value},
            now=now,
        )
    return user


async def set_disabled(
    session: AsyncSession, *, user_id: int, disabled: bool, now: datetime, actor: audit.Actor
) -> User:
    """A disabled user's sessions end and API tokens stop working at once."""
    user = await get_user(session, user_id=user_id)
    if disabled and actor.name == f"user:{user.username}":
        raise Conflict("you cannot disable your own account")
    if user.disabled != disabled:
        user.disabled = disabled
        if disabled:
            await sessions.end_all(session, user_id=user.id, now=now)
        await audit.record(
            session,
            actor=actor,
            action="user.disable" if disabled else "user.enable",
            target=f"user:{user.username}",
            now=now,
        )
    return user


async def set_password(
    session: AsyncSession, *, user_id: int, password: str, now: datetime, actor: audit.Actor
) -> User:
    """A new password ends every session of the user (one stolen with the old password too)."""
    user = await get_user(session, user_id=user_id)
    user.password_hash = hash_password(_check_password(password))
    await sessions.end_all(session, user_id=user.id, now=now)
    await audit.record(
        session, actor=actor, action="user.set_password", target=f"user:{user.username}", now=now
    )
    return user


async def list_api_tokens(session: AsyncSession, *, user: User) -> list[ApiToken]:
    """The user's tokens that still work, newest first."""
    rows = await session.scalars(
        select(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    )
    return list(rows)


async def revoke_api_token(
    session: AsyncSession, *, user: User, token_id: int, now: datetime, actor: audit.Actor
) -> ApiToken:
    """Revokes one of the user's own tokens; another user's token is "not found"."""
    token = await session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound(f"you have no API token with id {token_id}")
    if token.revoked_at is None:
        token.revoked_at = now
        await audit.record(
            session,
            actor=actor,
            action="api_token.revoke",
            target=f"user:{user.username}",
            details={"token_id": token.id, "name": token.name},
            now=now,
        )
    return token
