"""Request dependencies: the database session, the clock, and who is calling."""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from lunaris_server.accounts import service as accounts
from lunaris_server.accounts import sessions
from lunaris_server.accounts.models import User
from lunaris_server.audit.service import Actor
from lunaris_server.console.csrf import HEADER as CSRF_HEADER
from lunaris_server.console.web import get_console
from lunaris_server.core.errors import Forbidden, NotAuthenticated
from lunaris_server.state import AppState

# Dependencies are ``async def`` even when they do not await: FastAPI runs plain ``def``
# dependencies in a thread pool, a thread hop per request that the hot paths cannot afford.


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.lunaris
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    """One session per request; routes commit, anything uncommitted is rolled back."""
    async with state.database.session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_now(state: StateDep) -> datetime:
    return state.clock()


NowDep = Annotated[datetime, Depends(get_now)]


def bearer_token(connection: HTTPConnection) -> str | None:
    header = connection.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def device_token(request: Request) -> str:
    token = bearer_token(request)
    if token is None:
        raise NotAuthenticated("a device token is required (Authorization: Bearer <token>)")
    return token


async def authenticate_user(
    connection: HTTPConnection, session: AsyncSession, state: AppState, now: datetime
) -> User:
    """An API token in the Authorization header, or else the console's session cookie (its
    row is then ``connection.state.user_session``)."""
    token = bearer_token(connection)
    if token is not None:
        return await accounts.authenticate_api_token(session, plaintext=token, now=now)
    cookie = connection.cookies.get(sessions.COOKIE_NAME)
    if cookie:
        user, user_session = await sessions.authenticate(session, cookie=cookie, now=now)
        if await sessions.touch(session, user_session=user_session, now=now):
            # Its own short transaction, before the route's: read-only pages never commit.
            await session.commit()
        connection.state.user_session = user_session
        return user
    raise NotAuthenticated("log in, or send an API token (Authorization: Bearer <token>)")


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def same_origin(connection: HTTPConnection) -> bool:
    """Whether a browser says this request comes from a page of this server. Cookies go along
    with requests from any page, a sibling subdomain's (same-site) included. A client that
    sends neither Origin nor Sec-Fetch-Site is not a browser page: it cannot hold the cookie
    of a user who did not give it to it."""
    site = connection.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = connection.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == connection.headers.get("host", "").lower()


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


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def user_actor(request: Request, user: User) -> Actor:
    return Actor(f"user:{user.username}", client_ip(request))


RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
"""A path id of a row with an integer key (users, API tokens, enrollment secrets): larger
ones cannot exist, and the database drivers refuse integers beyond their column's range."""
