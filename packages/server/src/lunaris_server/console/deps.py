"""The console every page renders with, and the CSRF check every console POST goes through."""

from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, Request

from lunaris_server.console.csrf import FORM_FIELD, HEADER
from lunaris_server.console.web import Console, get_console
from lunaris_server.core.errors import Forbidden, InvalidInput

ConsoleDep = Annotated[Console, Depends(get_console)]

MAX_FORM_FIELDS = 120
"""A page of devices selected by checkbox (50) and the form's own fields fit."""


async def read_checked_fields(request: Request, console: ConsoleDep) -> list[tuple[str, str]]:
    """The POSTed form's fields in order (a name can repeat: checkboxes), once its CSRF
    token matched the session; 403 otherwise."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    body = await request.body()
    if body and content_type != "application/x-www-form-urlencoded":
        raise InvalidInput("console forms are sent as application/x-www-form-urlencoded")
    try:
        fields = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("the form could not be read") from None
    tokens = [value for name, value in fields if name == FORM_FIELD]
    token = tokens[-1] if tokens else request.headers.get(HEADER)
    if not console.csrf.is_valid(console.csrf_binding(request), token):
        raise Forbidden("the form has expired or did not come from this console; reload the page")
    return [(name, value) for name, value in fields if name != FORM_FIELD]


async def read_checked_form(
    fields: Annotated[list[tuple[str, str]], Depends(read_checked_fields)],
) -> dict[str, str]:
    """The checked form's fields by name (the last value of a repeated one)."""
    return dict(fields)


CheckedForm = Annotated[dict[str, str], Depends(read_checked_form)]
CheckedFields = Annotated[list[tuple[str, str]], Depends(read_checked_fields)]
