"""Errors as pages for people: the JSON API keeps its JSON, a browser gets HTML."""

from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from lunaris_server.console.web import get_console

_TITLES = {
    400: "That request did not make sense",
    403: "You are not allowed to do that",
    404: "Nothing here",
    405: "Not like that",
    409: "That changed meanwhile",
    413: "That was too large",
    422: "Please check what you entered",
}


def wants_html(request: Request) -> bool:
    """API and socket paths always answer JSON; elsewhere, anyone not asking for JSON gets
    a page (browsers ask for text/html, htmx for anything)."""
    path = request.url.path
    if path == "/api" or path.startswith(("/api/", "/ws/")):
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept or "application/json" not in accept


def _path_and_query(path: str, query: str) -> str:
    return path + (f"?{query}" if query else "")


def _page_of(request: Request) -> str:
    """Where to come back to after logging in: the address asked for, or for htmx (a
    fragment the page asked for, say a table row) the page's own address."""
    if not request.headers.get("hx-request"):
        return _path_and_query(request.url.path, request.url.query)
    current = urlsplit(request.headers.get("hx-current-url", ""))
    if current.netloc and current.netloc.lower() != request.headers.get("host", "").lower():
        return "/"
    return _path_and_query(current.path or "/", current.query)


def login_redirect(request: Request) -> Response:
    here = _page_of(request)
    target = "/login" + (f"?{urlencode({'next': here})}" if here not in ("/", "/login") else "")
    if request.headers.get("hx-request"):
        # htmx follows this header with a full page load, instead of swapping a login page in.
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def error_page(request: Request, status: int, message: str) -> Response:
    if status == 401:
        return login_redirect(request)
    return get_console(request).render(
        request,
        "errors/error.html",
        {
            "status": status,
            "title": _TITLES.get(status, "Something went wrong"),
            "message": message,
        },
        status_code=status,
    )
