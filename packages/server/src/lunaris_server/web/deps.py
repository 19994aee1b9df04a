"""Request dependencies every route may use: the process's state, the database session, the
clock, and what the request says about itself (bearer token, origin, address)."""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from lunaris_server.core.errors import NotAuthenticated
from lunaris_server.web.state import AppState

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


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
"""A path id of a row with an integer key (users, API tokens, enrollment secrets): larger
ones cannot exist, and the database drivers refuse integers beyond their column's range."""
