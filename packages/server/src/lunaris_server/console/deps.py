"""The console every page renders with, and the CSRF check every console POST goes through."""

from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, Request

from lunaris_server.console.csrf import FORM_FIELD, HEADER
from lunaris_server.console.web import Console, get_console
from lunaris_server.core.errors import Forbidden, InvalidInput

ConsoleDep = Annotated[Console, Depends(get_console)]

MAX_FORM_FIELDS = 50


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
