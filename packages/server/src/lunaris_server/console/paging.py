"""Page numbers and URLs that keep the rest of the query string (the URL holds the state)."""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from lunaris_server.core.errors import InvalidInput

PER_PAGE = 50
POSITION = ("page", "after", "before")
"""The query parameters that say where in a list a page is."""


@dataclass(frozen=True, slots=True)
class Pager:
    page: int
    per_page: int
    total: int
    after: str | None = None
    """Where the next page starts (a cursor), when the list can seek to it."""
    before: str | None = None
    """Where the previous page ends (a cursor), when the list can seek to it."""

    @classmethod
    def seeking(
        cls,
        *,
        offset: int,
        total: int,
        first: tuple[Any, str] | None,
        last: tuple[Any, str] | None,
    ) -> "Pager":
        """The pager of a list that seeks: its Next and Previous links carry the places
        (sort value, id) of the page's last and first rows."""
        page = offset // PER_PAGE + 1
        return cls(
            page,
            PER_PAGE,
            total,
            after=encode_cursor(last) if last else None,
            # Page 1 is asked for plainly: nothing can be before it.
            before=encode_cursor(first) if first and page > 2 else None,
        )

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def first_row(self) -> int:
        return min(self.total, self.offset + 1)

    @property
    def last_row(self) -> int:
        return min(self.total, self.offset + self.per_page)

    @property
    def previous(self) -> int | None:
        return self.page - 1 if self.page > 1 else None

    @property
    def next(self) -> int | None:
        return self.page + 1 if self.page < self.pages else None


def url_with(request: Request, path: str | None = None, **changes: object) -> str:
    """This page's URL with some query parameters changed; ``None`` or "" removes one.

    Changing anything but the position (page, cursor) starts again from page 1.
    """
    params = {k: v for k, v in request.query_params.items() if k not in POSITION or k in changes}
    for key, value in changes.items():
        if value is None or value == "" or value is False:
            params.pop(key, None)
        else:
            params[key] = str(value)
    query = urlencode(params)
    return f"{path or request.url.path}{'?' + query if query else ''}"


def encode_cursor(cursor: tuple[Any, str]) -> str:
    """A row's place in a sorted list (sort value, id) as a URL-safe token."""
    value, row_id = cursor
    tagged = ["t", value.isoformat()] if isinstance(value, datetime) else ["v", value]
    return base64.urlsafe_b64encode(json.dumps([*tagged, row_id]).encode()).decode()


def decode_cursor(token: str) -> tuple[Any, str]:
    try:
        tag, value, row_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        if tag == "t":
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise ValueError(value)
        elif tag != "v" or not isinstance(value, str | int) or isinstance(value, bool):
            raise ValueError(tag)
        if not isinstance(row_id, str):
            raise ValueError(row_id)
    except (ValueError, TypeError, binascii.Error):
        raise InvalidInput("this page's position in the list is not valid") from None
    return value, row_id
