"""The session cookie, set and cleared alike by the console's login form and the JSON API."""

from starlette.responses import Response

from lunaris_server.accounts.sessions import COOKIE_NAME
from lunaris_server.core.settings import Settings


def set_session_cookie(response: Response, settings: Settings, cookie: str) -> None:
    response.set_cookie(
        COOKIE_NAME,
        cookie,
        max_age=settings.session_max_age_s,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
        path="/",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        COOKIE_NAME, httponly=True, secure=settings.cookie_secure, samesite="lax", path="/"
    )
