"""A console page's one-time flash (see ``accounts.flash``), for the session of the request.

A form leaves a flash in the transaction that creates what it tells of, then redirects; the
page it redirects to takes its flashes and commits before it renders.
"""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from lunaris_server.accounts import flash as flashes
from lunaris_server.accounts.flash import Flash
from lunaris_server.accounts.models import UserSession
from lunaris_server.accounts.sessions import COOKIE_NAME
from lunaris_server.console.web import get_console
from lunaris_server.core.errors import Forbidden


def _session_of(request: Request) -> tuple[UserSession, str] | None:
    """The request's console session and its cookie (None for an API token's request)."""
    user_session: UserSession | None = getattr(request.state, "user_session", None)
    cookie = request.cookies.get(COOKIE_NAME)
    return (user_session, cookie) if user_session is not None and cookie else None


async def leave(
    request: Request, session: AsyncSession, *, page: str, flash: Flash, now: datetime
) -> None:
    """Before the commit: a request that has no console session (an API token's) cannot be
    shown the secret after a redirect, so it is refused and creates nothing."""
    found = _session_of(request)
    if found is None:
        raise Forbidden("this form needs a console login; scripts use the API")
    user_session, cookie = found
    await flashes.put(
        session,
        get_console(request).flash_seal,
        user_session=user_session,
        cookie=cookie,
        page=page,
        flash=flash,
        now=now,
    )


async def take(request: Request, session: AsyncSession, *, page: str, now: datetime) -> list[Flash]:
    """This session's flashes for ``page``, deleted and committed: shown once."""
    found = _session_of(request)
    if found is None:
        return []
    user_session, cookie = found
    taken = await flashes.take(
        session,
        get_console(request).flash_seal,
        user_session=user_session,
        cookie=cookie,
        page=page,
        now=now,
    )
    await session.commit()
    return taken
