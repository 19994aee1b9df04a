"""Who may see a console page, and the CSRF check every console POST goes through."""

from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, Request

from lunaris_server.accounts.models import User
from lunaris_server.console.csrf import FORM_FIELD, HEADER
from lunaris_server.console.web import Console, get_console
from lunaris_server.core.errors import Forbidden, InvalidInput
from lunaris_server.deps import NowDep, SessionDep, StateDep, authenticate_user

ConsoleDep = Annotated[Console, Depends(get_console)]

MAX_FORM_FIELDS = 50


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


async def read_checked_form(request: Request, console: ConsoleDep) -> dict[str, str]:
    """The POSTed form's fields, once its CSRF token matched the session; 403 otherwise."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    body = await request.body()
    if body and content_type != "application/x-www-form-urlencoded":
        raise InvalidInput("console forms are sent as application/x-www-form-urlencoded")
    try:
        fields = dict(
            parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("the form could not be read") from None
    token = fields.pop(FORM_FIELD, None) or request.headers.get(HEADER)
    if not console.csrf.is_valid(console.csrf_binding(request), token):
        raise Forbidden("the form has expired or did not come from this console; reload the page")
    return fields


CheckedForm = Annotated[dict[str, str], Depends(read_checked_form)]
