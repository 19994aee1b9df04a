"""Page numbers and URLs that keep the rest of the query string (the URL holds the state)."""

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request

PER_PAGE = 50


@dataclass(frozen=True, slots=True)
class Pager:
    page: int
    per_page: int
    total: int

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

    Changing anything but the page starts again from page 1.
    """
    params = {k: v for k, v in request.query_params.items() if k != "page" or "page" in changes}
    for key, value in changes.items():
        if value is None or value == "" or value is False:
            params.pop(key, None)
        else:
            params[key] = str(value)
    query = urlencode(params)
    return f"{path or request.url.path}{'?' + query if query else ''}"
