"""Who is calling: the user behind an API token or the console's session cookie, with the
checks a write made with the cookie must pass, for the JSON API and the console alike."""

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from lunaris_server.accounts import service as accounts
from lunaris_server.accounts import sessions
from lunaris_server.accounts.models import User
from lunaris_server.audit.service import Actor
from lunaris_server.console.csrf import HEADER as CSRF_HEADER
from lunaris_server.console.csrf import SESSION_COOKIE
from lunaris_server.console.web import get_console
from lunaris_server.core.errors import Forbidden, NotAuthenticated
from lunaris_server.realtime import outbox
from lunaris_server.web.deps import (
    SAFE_METHODS,
    NowDep,
    SessionDep,
    StateDep,
    bearer_token,
    client_ip,
    same_origin,
)
from lunaris_server.web.state import AppState


async def authenticate_user(
    connection: HTTPConnection, session: AsyncSession, state: AppState, now: datetime
) -> User:
    """An API token in the Authorization header, or else the console's session cookie (its
    row is then ``connection.state.user_session``)."""
    token = bearer_token(connection)
    if token is not None:
        return await accounts.authenticate_api_token(session, plaintext=token, now=now)
    cookie = connection.cookies.get(SESSION_COOKIE)
    if cookie:
        user, user_session = await sessions.authenticate(session, cookie=cookie, now=now)
        if await sessions.touch(session, user_session=user_session, now=now):
            # Its own short transaction, before the route's: read-only pages never commit.
            await outbox.commit(session, state)
        connection.state.user_session = user_session
        return user
    raise NotAuthenticated("log in, or send an API token (Authorization: Bearer <token>)")


def check_cookie_write(request: Request) -> None:
    """A write authenticated by the session cookie must come from this server's pages and
    carry the session's CSRF token in ``X-CSRF-Token`` (API tokens need neither)."""
    if not same_origin(request):
        raise Forbidden("cross-origin requests cannot use the session cookie to make changes")
    console = get_console(request)
    if not console.csrf.is_valid(console.csrf_binding(request), request.headers.get(CSRF_HEADER)):
        raise Forbidden(
            "a change made with the session cookie needs the X-CSRF-Token header"
            " (GET /api/auth/csrf-token)"
        )


async def get_current_user(
    request: Request, session: SessionDep, state: StateDep, now: NowDep
) -> User:
    user = await authenticate_user(request, session, state, now)
    if request.method not in SAFE_METHODS and bearer_token(request) is None:
        check_cookie_write(request)
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden("this needs the admin role")
    return user


AdminUser = Annotated[User, Depends(get_admin_user)]


def user_actor(request: Request, user: User) -> Actor:
    return Actor(f"user:{user.username}", client_ip(request))


async def get_console_user(
    request: Request, session: SessionDep, state: StateDep, now: NowDep
) -> User:
    """The logged-in user; not logged in ends in a redirect to /login (see ``console.errors``)."""
    user = await authenticate_user(request, session, state, now)
    request.state.console_user = user
    return user


ConsoleUser = Annotated[User, Depends(get_console_user)]


async def get_console_admin(user: ConsoleUser) -> User:
    if not user.is_admin:
        raise Forbidden("this needs the admin role")
    return user


ConsoleAdmin = Annotated[User, Depends(get_console_admin)]
