"""The session cookie, set and cleared alike by the console's login form and the JSON API."""

from starlette.responses import Response

from lunaris_server.console.csrf import SESSION_COOKIE
from lunaris_server.core.settings import Settings


def set_session_cookie(response: Response, settings: Settings, cookie: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=settings.session_max_age_s,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
        path="/",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, secure=settings.cookie_secure, samesite="lax", path="/"
    )
